"""What each service reads from its environment: the variables of its Settings, with defaults."""

from __future__ import annotations

import importlib
from typing import Any

from pydantic_settings import BaseSettings

# Every service's package, by its name in docker-compose.yml.
SERVICE_PACKAGES = {
    "fetcher": "services.fetcher",
    "indexer": "services.indexer",
    "api": "services.api",
    "notifier": "services.notifier",
    "youtube-emulator": "services.youtube_emulator",
}


def settings_variables(package: str) -> dict[str, Any]:
    """Environment variable -> default for every field of ``<package>.settings.Settings``."""
    settings_cls = importlib.import_module(f"{package}.settings").Settings
    assert issubclass(settings_cls, BaseSettings)
    variables: dict[str, Any] = {}
    for name, field in settings_cls.model_fields.items():
        default = field.default_factory() if field.default_factory is not None else field.default
        variables[(field.alias or name).upper()] = default
    return variables
