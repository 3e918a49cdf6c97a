"""Logging configured once per process: readable in a terminal, JSON in containers, never a secret."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping

from pythonjsonlogger.json import JsonFormatter

from services.common.redact import SecretRedactingFilter, configured_secrets


def configure_logging(
    level: str = "INFO", fmt: str = "console", service: str = "tubewatch", environ: Mapping[str, str] | None = None
) -> None:
    """One stderr handler for the whole process, its records stripped of every configured secret."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(SecretRedactingFilter(configured_secrets(os.environ if environ is None else environ)))
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"levelname": "level", "asctime": "time"},
                static_fields={"service": service},
            )
        )
    else:
        handler.setFormatter(_ConsoleFormatter(f"%(asctime)s %(levelname)-7s {service} %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Library chatter (connection retries, per-request lines) stays at WARNING unless asked for.
    for noisy in ("aiormq", "aio_pika", "elastic_transport", "pymongo", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


class _ConsoleFormatter(logging.Formatter):
    """Appends structured context passed through ``extra=`` as key=value pairs."""

    _STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = {k: v for k, v in record.__dict__.items() if k not in self._STANDARD}
        if context:
            text += " " + " ".join(f"{k}={v}" for k, v in context.items())
        return text
