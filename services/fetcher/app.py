"""The fetcher service: an aiohttp app whose background task is the poller."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import aiohttp
from aio_pika.abc import AbstractRobustConnection
from aiohttp import web
from prometheus_client import CollectorRegistry

from services.common.service_app import add_readiness_check, add_service_routes
from services.common.topology import QueueNames
from services.fetcher.poller import FetcherMetrics, Poller
from services.fetcher.publisher import VideoPublisher
from services.fetcher.settings import Settings
from services.fetcher.youtube_client import YouTubeClient

SETTINGS = web.AppKey("settings", Settings)
AMQP = web.AppKey("amqp", AbstractRobustConnection)
HTTP = web.AppKey("http", aiohttp.ClientSession)
POLLER = web.AppKey("poller", Poller)


def create_app(settings: Settings) -> web.Application:
    app = web.Application()
    app[SETTINGS] = settings
    registry = CollectorRegistry()
    add_service_routes(app, registry)
    app.cleanup_ctx.extend([_http_ctx, _amqp_ctx, _poller_ctx(registry)])
    add_readiness_check(app, "rabbitmq", lambda: _amqp_state(app))
    return app


async def _http_ctx(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession(raise_for_status=False) as session:
        app[HTTP] = session
        yield


async def _amqp_ctx(app: web.Application) -> AsyncIterator[None]:
    connection = await aio_pika.connect_robust(app[SETTINGS].amqp_url, client_properties={"connection_name": "fetcher"})
    app[AMQP] = connection
    yield
    await connection.close()


def _poller_ctx(registry: CollectorRegistry) -> Any:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        channel = await app[AMQP].channel(publisher_confirms=True)
        publisher = await VideoPublisher.declare(channel, QueueNames(settings.amqp_exchange, settings.amqp_queue))
        client = YouTubeClient(app[HTTP], settings.youtube_api_url, settings.youtube_request_timeout_seconds)
        poller = Poller(settings, client, publisher, FetcherMetrics(registry))
        app[POLLER] = poller
        task = asyncio.create_task(poller.run(), name="poller")
        yield
        poller.stop()  # SIGTERM: finish the cycle in hand
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=30)
        except TimeoutError:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await channel.close()

    return ctx


async def _amqp_state(app: web.Application) -> tuple[bool, str]:
    connection = app[AMQP]
    return (not connection.is_closed), ("connected" if not connection.is_closed else "disconnected")
