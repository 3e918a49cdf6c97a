"""The fetcher service: an aiohttp app whose background task is the poller."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import aiohttp
from aio_pika.abc import AbstractRobustConnection
from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CollectorRegistry
from pymongo import AsyncMongoClient

from services.common.service_app import add_readiness_check, add_service_routes
from services.common.topology import QueueNames
from services.fetcher.clock import Clock, SystemClock
from services.fetcher.gateway import YouTubeGateway
from services.fetcher.keys import KeyPool
from services.fetcher.lease import LeaderLease, make_holder_id
from services.fetcher.metrics import FetcherMetrics
from services.fetcher.poller import Poller
from services.fetcher.publisher import VideoPublisher
from services.fetcher.settings import Settings
from services.fetcher.store import FetcherStore
from services.fetcher.youtube_client import YouTubeClient

SETTINGS = web.AppKey("settings", Settings)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
AMQP = web.AppKey("amqp", AbstractRobustConnection)
HTTP = web.AppKey("http", aiohttp.ClientSession)
MONGO = web.AppKey("mongo", AsyncMongoClient)
POLLER = web.AppKey("poller", Poller)

# How long a graceful stop waits for the cycle in hand before cancelling it.
STOP_GRACE_SECONDS = 60


def create_app(settings: Settings, clock: Clock | None = None) -> web.Application:
    app = web.Application(middlewares=[_health_details])
    app[SETTINGS] = settings
    app[CLOCK] = clock or SystemClock()
    registry = CollectorRegistry()
    add_service_routes(app, registry)
    app.cleanup_ctx.extend([_http_ctx, _mongo_ctx, _amqp_ctx, _poller_ctx(registry)])
    add_readiness_check(app, "mongodb", lambda: _ping_mongo(app))
    add_readiness_check(app, "rabbitmq", lambda: _amqp_state(app))
    add_readiness_check(app, "poller", lambda: _poller_state(app))
    return app


async def _http_ctx(app: web.Application) -> AsyncIterator[None]:
    # No proxies from the environment: a proxy would see the key header in the clear.
    async with aiohttp.ClientSession(raise_for_status=False, trust_env=False) as session:
        app[HTTP] = session
        yield


async def _mongo_ctx(app: web.Application) -> AsyncIterator[None]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        app[SETTINGS].mongodb_url, tz_aware=True, serverSelectionTimeoutMS=5000
    )
    app[MONGO] = client
    yield
    await client.close()


async def _amqp_ctx(app: web.Application) -> AsyncIterator[None]:
    connection = await aio_pika.connect_robust(app[SETTINGS].amqp_url, client_properties={"connection_name": "fetcher"})
    app[AMQP] = connection
    yield
    await connection.close()


def _poller_ctx(registry: CollectorRegistry) -> Any:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        clock = app[CLOCK]
        store = FetcherStore(app[MONGO][settings.mongodb_database])
        await store.ensure_indexes()
        channel = await app[AMQP].channel(publisher_confirms=True)
        publisher = await VideoPublisher.declare(channel, QueueNames(settings.amqp_exchange, settings.amqp_queue))
        client = YouTubeClient(app[HTTP], settings.youtube_api_url, settings.youtube_request_timeout_seconds)
        metrics = FetcherMetrics(registry)
        pool = KeyPool(settings.key_entries, settings.youtube_search_calls_per_day)
        lease = LeaderLease(store.lease_collection, make_holder_id(), settings.lease_ttl_seconds)
        gateway = YouTubeGateway(
            settings=settings, client=client, pool=pool, lease=lease, store=store, metrics=metrics, clock=clock
        )
        poller = Poller(
            settings=settings,
            clock=clock,
            gateway=gateway,
            publisher=publisher,
            store=store,
            lease=lease,
            pool=pool,
            metrics=metrics,
        )
        app[POLLER] = poller
        task = asyncio.create_task(poller.run(), name="poller")
        yield
        poller.stop()  # SIGTERM: finish the cycle in hand, release the lease
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=STOP_GRACE_SECONDS)
        except TimeoutError:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await channel.close()

    return ctx


@web.middleware
async def _health_details(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The shared /healthz answer, plus the fetcher's role, quota budget and parked keys."""
    response = await handler(request)
    poller = request.app.get(POLLER)
    if request.path != "/healthz" or response.status != 200 or not isinstance(response, web.Response):
        return response
    body = json.loads(response.body) if isinstance(response.body, bytes) else {}
    body.update(poller.health() if poller is not None else {"role": "starting"})
    return web.json_response(body)


async def _ping_mongo(app: web.Application) -> tuple[bool, str]:
    await app[MONGO].admin.command("ping")
    return True, "ok"


async def _amqp_state(app: web.Application) -> tuple[bool, str]:
    connection = app[AMQP]
    return (not connection.is_closed), ("connected" if not connection.is_closed else "disconnected")


async def _poller_state(app: web.Application) -> tuple[bool, str]:
    poller = app.get(POLLER)
    if poller is None or poller.role == "starting":
        return False, "starting"
    return True, poller.role
