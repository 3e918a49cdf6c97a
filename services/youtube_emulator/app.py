"""The emulator's aiohttp application: YouTube routes, the WebSub hub, admin routes and the service routes.

Every API call goes through ``_serve``: faults, key, quota, the request itself, then a possible
hostile answer, and ends up in the call log (calls.py) and the metrics.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from services.common.service_app import add_service_routes
from services.youtube_emulator import api, errors, uploads_api
from services.youtube_emulator.admin import add_admin_routes
from services.youtube_emulator.clock import Clock
from services.youtube_emulator.metrics import METRICS, EmulatorMetrics
from services.youtube_emulator.quota import Method
from services.youtube_emulator.settings import Settings
from services.youtube_emulator.state import STATE, EmulatorState
from services.youtube_emulator.websub_routes import add_websub_routes

logger = logging.getLogger(__name__)

Build = Callable[[EmulatorState, api.Params, float], dict[str, Any]]


def create_app(settings: Settings, clock: Clock | None = None) -> web.Application:
    app = web.Application()
    app[STATE] = EmulatorState(settings, clock)
    registry = CollectorRegistry()
    app[METRICS] = EmulatorMetrics(registry)
    add_service_routes(app, registry)
    add_admin_routes(app)
    add_websub_routes(app)
    app.router.add_get("/youtube/v3/search", search)
    app.router.add_get("/youtube/v3/videos", videos)
    app.router.add_get("/youtube/v3/channels", channels)
    app.router.add_get("/youtube/v3/playlistItems", playlist_items)
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


async def channels(request: web.Request) -> web.StreamResponse:
    return await _serve(request, "channels", uploads_api.channels)


async def playlist_items(request: web.Request) -> web.StreamResponse:
    return await _serve(request, "playlistItems", uploads_api.playlist_items)


class _Outcome:
    """What the call log and the metrics record of one call, filled in as the call proceeds."""

    def __init__(self, request: web.Request, endpoint: Method) -> None:
        self.request = request
        self.endpoint = endpoint
        self.key = request.query.get("key") or request.headers.get("X-Goog-Api-Key")
        self.project: str | None = None
        self.units = 0

    def done(self, status: int | None, outcome: str) -> None:
        state = self.request.app[STATE]
        self.request.app[METRICS].record(self.endpoint, outcome)
        state.calls.record(
            at=state.now(),
            method=self.endpoint,
            key=self.key,
            project=self.project,
            params=self.request.query,
            status=status,
            outcome=outcome,
            units=self.units,
        )


async def _serve(request: web.Request, endpoint: Method, build: Build) -> web.StreamResponse:
    """Faults, key, quota, then the request itself: the order a real call meets them."""
    state = request.app[STATE]
    metrics = request.app[METRICS]
    params = request.query
    pretty = params.get("prettyPrint", "true").lower() != "false"
    call = _Outcome(request, endpoint)
    decision = state.faults.draw()
    if decision.drop:
        call.done(None, "dropped")
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
        key = call.key
        if not key:
            raise errors.missing_key()
        if key in state.behaviour.invalid_keys:
            raise errors.api_key_invalid()
        call.project = state.ledger.project_of(key)
        if decision.rate_limit is not None:
            raise decision.rate_limit
        now = state.now()
        # Spend before validating: YouTube charges even for requests it then rejects.
        quota_error = state.ledger.charge(key, endpoint, now)
        if quota_error is not None:
            raise quota_error
        call.units = state.ledger.units_of(endpoint)
        payload = build(state, params, now)
    except errors.ApiError as exc:
        call.done(exc.status, exc.outcome)
        # Quota exhaustion is what an operator watches for in a demo; the rest is routine.
        level = logging.INFO if exc.outcome == "quota_exceeded" else logging.DEBUG
        logger.log(level, "answered %s with %s", endpoint, exc.status, extra={"outcome": exc.outcome})
        return errors.error_response(exc, pretty=pretty)
    hostile = state.hostile.pick()
    if hostile is not None:
        answer = state.hostile.answer(hostile, request, payload)
        call.done(answer.status, f"hostile_{hostile}")
        return answer
    call.done(200, "ok")
    return errors.json_response(payload, pretty=pretty)
