"""Helpers for tests that run the emulator in-process (pytest-aiohttp is not a dependency)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from services.youtube_emulator.app import create_app
from services.youtube_emulator.settings import Settings
from services.youtube_emulator.state import STATE
from services.youtube_emulator.timestamps import parse_rfc3339

# Everything that makes answers vary is off, so tests opt in to exactly the quirk they check.
_QUIET: dict[str, Any] = {
    "search_queries": ["cricket"],
    "emulator_queries": [],
    "emulator_seed": 7,
    "emulator_videos_per_minute": 6.0,
    "emulator_query_videos_per_minute": {},
    "emulator_backfill_seconds": 3600,
    "emulator_late_fraction": 0.0,
    "emulator_live_fraction": 0.0,
    "emulator_scheduled_fraction": 0.0,
    "emulator_private_fraction": 0.0,
    "emulator_deleted_fraction": 0.0,
    "emulator_search_lag_seconds": 0,
    "emulator_duplicate_rate": 0.0,
    "emulator_empty_last_page_rate": 0.0,
    "emulator_quota_model": "search_bucket",
    "emulator_search_calls_per_day": 100,
    "emulator_units_per_day": 10_000,
    "emulator_key_projects": {},
    "emulator_key_budgets": {},
    "emulator_project_budgets": {},
    "emulator_key_unit_budgets": {},
    "emulator_project_unit_budgets": {},
    "emulator_invalid_keys": [],
    "emulator_fault_rate_limit": 0.0,
    "emulator_fault_5xx": 0.0,
    "emulator_fault_slow": 0.0,
    "emulator_fault_drop": 0.0,
    "emulator_websub_lost_fraction": 0.0,
}


def quiet_settings(**overrides: Any) -> Settings:
    """Settings with no quirks, faults or environment surprises; keyword arguments override."""
    return Settings(**{**_QUIET, **overrides})


@asynccontextmanager
async def emulator_client(
    settings: Settings, *, now: str | None = None, frozen: bool = True
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """A client for an emulator on a free loopback port; ``now`` starts the world at that instant."""
    app = create_app(settings)
    if now is not None:
        moment = parse_rfc3339(now)
        if moment is None:
            raise ValueError(f"not an RFC 3339 timestamp: {now}")
        app[STATE].reset(now=moment, frozen=frozen)
    async with TestClient(TestServer(app)) as client:
        yield client
