"""The emulator's aiohttp application: YouTube routes, admin routes and the service routes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from services.common.service_app import add_service_routes
from services.youtube_emulator import api, errors
from services.youtube_emulator.admin import add_admin_routes
from services.youtube_emulator.clock import Clock
from services.youtube_emulator.metrics import METRICS, EmulatorMetrics
from services.youtube_emulator.quota import Method
from services.youtube_emulator.settings import Settings
from services.youtube_emulator.state import STATE, EmulatorState

logger = logging.getLogger(__name__)

Build = Callable[[EmulatorState, api.Params, float], dict[str, Any]]


def create_app(settings: Settings, clock: Clock | None = None) -> web.Application:
    app = web.Application()
    app[STATE] = EmulatorState(settings, clock)
    registry = CollectorRegistry()
    app[METRICS] = EmulatorMetrics(registry)
    add_service_routes(app, registry)
    add_admin_routes(app)
    app.router.add_get("/youtube/v3/search", search)
    app.router.add_get("/youtube/v3/videos", videos)
    world = app[STATE].world
    logger.info(
        "youtube emulator ready",
        extra={"queries": ",".join(world.params.queries), "seed": world.params.seed},
    )
    return app


async def search(request: web.Request) -> web.StreamResponse:
    return await _serve(request, "search", api.search)


async def videos(request: web.Request) -> web.StreamResponse:
    return await _serve(request, "videos", api.videos)


async def _serve(request: web.Request, endpoint: Method, build: Build) -> web.StreamResponse:
    """Faults, key, quota, then the request itself: the order a real call meets them."""
    state = request.app[STATE]
    metrics = request.app[METRICS]
    params = request.query
    pretty = params.get("prettyPrint", "true").lower() != "false"
    decision = state.faults.draw()
    if decision.drop:
        metrics.record(endpoint, "dropped")
        if request.transport is not None:
            request.transport.abort()
        # Nothing reaches the client any more; aiohttp needs a response object all the same.
        return web.Response(status=500)
    if decision.slow:
        metrics.slowed.labels(endpoint=endpoint).inc()
        await asyncio.sleep(state.behaviour.slow_seconds)
    try:
        if decision.server_error is not None:
            raise decision.server_error
        key = params.get("key") or request.headers.get("X-Goog-Api-Key")
        if not key:
            raise errors.missing_key()
        if key in state.behaviour.invalid_keys:
            raise errors.api_key_invalid()
        if decision.rate_limit is not None:
            raise decision.rate_limit
        now = state.now()
        # Spend before validating: YouTube charges even for requests it then rejects.
        quota_error = state.ledger.charge(key, endpoint, now)
        if quota_error is not None:
            raise quota_error
        payload = build(state, params, now)
    except errors.ApiError as exc:
        metrics.record(endpoint, exc.outcome)
        # Quota exhaustion is what an operator watches for in a demo; the rest is routine.
        level = logging.INFO if exc.outcome == "quota_exceeded" else logging.DEBUG
        logger.log(level, "answered %s with %s", endpoint, exc.status, extra={"outcome": exc.outcome})
        return errors.error_response(exc, pretty=pretty)
    hostile = state.hostile.pick()
    if hostile is not None:
        metrics.record(endpoint, f"hostile_{hostile}")
        return state.hostile.answer(hostile, request, payload)
    metrics.record(endpoint, "ok")
    return errors.json_response(payload, pretty=pretty)
