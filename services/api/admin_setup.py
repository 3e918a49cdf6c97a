"""The admin API wired into the app: its gate, its stores, the sources' and saved searches' indexes, the seeding.

At start the API (like the fetcher) seeds the sources from SEARCH_QUERIES and FOLLOW_CHANNELS as
SOURCES_FROM_ENV says (services/common/sources.py) and makes the sources' and the audit log's
indexes. MongoDB may be down when the API starts, and the API serves listings without it, so
this runs in the background and is tried again every SETUP_RETRY_SECONDS until it succeeds;
/readyz says ``sources`` not ready until then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web
from pymongo.errors import PyMongoError

from services.api.admin_auth import admin_middleware
from services.api.admin_store import SourcesAdmin
from services.api.appkeys import SAVED_SEARCHES_ADMIN, SETTINGS, SOURCES_ADMIN, STORES
from services.api.saved_search_admin import SavedSearchesAdmin
from services.common.saved_searches import ensure_saved_search_indexes
from services.common.service_app import add_readiness_check
from services.common.sources import SeedRequest, ensure_audit_ttl, ensure_sources_indexes, seed_from_environment
from services.common.timefmt import utc_now

logger = logging.getLogger(__name__)

SETUP_RETRY_SECONDS = 5.0


def add_admin(app: web.Application) -> None:
    """The gate on /api/v1/admin/ and the sources' store; call after the stores (lifecycle.add_stores)."""
    app.middlewares.append(admin_middleware(app[SETTINGS].admin_token_list))
    done = asyncio.Event()
    app.cleanup_ctx.append(lambda app: _admin_ctx(app, done))

    async def sources_ready() -> tuple[bool, str]:
        return done.is_set(), "seeded and indexed" if done.is_set() else "not yet (MongoDB unreachable so far)"

    add_readiness_check(app, "sources", sources_ready)


async def _admin_ctx(app: web.Application, done: asyncio.Event) -> AsyncIterator[None]:

    settings = app[SETTINGS]
    db = app[STORES].mongo.database
    app[SOURCES_ADMIN] = SourcesAdmin(db, settings.sources_from_env)
    app[SAVED_SEARCHES_ADMIN] = SavedSearchesAdmin(db, settings.webhook_allow_hosts)
    request = SeedRequest(
        queries=settings.search_queries,
        channels=settings.follow_channels,
        mode=settings.sources_from_env,
        seeded_by="api",
    )

    stopping = asyncio.Event()

    async def set_up() -> None:
        while not stopping.is_set():
            try:
                await ensure_sources_indexes(db)
                await ensure_audit_ttl(db, settings.admin_audit_days)
                await ensure_saved_search_indexes(db)
                await seed_from_environment(db, request, utc_now())
                done.set()
                return
            except PyMongoError as exc:
                logger.warning(
                    "sources: could not seed or index yet; trying again",
                    extra={"error": f"{type(exc).__name__}: {exc}", "retry_seconds": SETUP_RETRY_SECONDS},
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), SETUP_RETRY_SECONDS)

    task = asyncio.create_task(set_up(), name="sources-setup")
    try:
        yield
    finally:
        # Stopped between attempts, never cancelled inside one: a pymongo call cancelled while it
        # opens a connection leaves that socket unclosed. An attempt ends within the client's
        # timeouts (INTERACTIVE_MONGO_TIMEOUT_MS when MongoDB is unreachable).
        stopping.set()
        await task
