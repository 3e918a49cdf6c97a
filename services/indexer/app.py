"""The indexer service: an aiohttp app whose background task is the batch consumer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
from aio_pika.abc import AbstractRobustConnection
from aiohttp import web
from elasticsearch import AsyncElasticsearch
from prometheus_client import CollectorRegistry
from pymongo import AsyncMongoClient

from services.common.catalogue import ensure_mongo_indexes, ensure_search_index
from services.common.service_app import add_readiness_check, add_service_routes
from services.indexer.consumer import BatchIndexer, IndexerMetrics
from services.indexer.settings import Settings
from services.indexer.store import VideoWriter

logger = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
MONGO = web.AppKey("mongo", AsyncMongoClient)
ELASTICSEARCH = web.AppKey("elasticsearch", AsyncElasticsearch)
AMQP = web.AppKey("amqp", AbstractRobustConnection)
INDEXER = web.AppKey("indexer", BatchIndexer)


def create_app(settings: Settings) -> web.Application:
    app = web.Application()
    app[SETTINGS] = settings
    registry = CollectorRegistry()
    add_service_routes(app, registry)
    app.cleanup_ctx.extend([_mongo_ctx, _elasticsearch_ctx, _amqp_ctx, _indexer_ctx(registry)])
    add_readiness_check(app, "mongodb", lambda: _ping_mongo(app))
    add_readiness_check(app, "elasticsearch", lambda: _ping_elasticsearch(app))
    add_readiness_check(app, "consumer", lambda: _consumer_state(app))
    return app


async def _mongo_ctx(app: web.Application) -> AsyncIterator[None]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        app[SETTINGS].mongodb_url, tz_aware=True, serverSelectionTimeoutMS=5000
    )
    app[MONGO] = client
    yield
    await client.close()


async def _elasticsearch_ctx(app: web.Application) -> AsyncIterator[None]:
    client = AsyncElasticsearch(app[SETTINGS].elasticsearch_url, request_timeout=30)
    app[ELASTICSEARCH] = client
    yield
    await client.close()


async def _amqp_ctx(app: web.Application) -> AsyncIterator[None]:
    connection = await aio_pika.connect_robust(app[SETTINGS].amqp_url, client_properties={"connection_name": "indexer"})
    app[AMQP] = connection
    yield
    await connection.close()


def _indexer_ctx(registry: CollectorRegistry) -> Any:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        db = app[MONGO][settings.mongodb_database]
        await ensure_mongo_indexes(db)
        await ensure_search_index(app[ELASTICSEARCH], settings.elasticsearch_index)
        writer = VideoWriter(db, app[ELASTICSEARCH], settings.elasticsearch_index)
        indexer = BatchIndexer(settings, writer, IndexerMetrics(registry))
        app[INDEXER] = indexer
        channel = await app[AMQP].channel()
        task = asyncio.create_task(indexer.run(channel), name="batch-indexer")
        yield
        # Graceful stop: finish and ack the batch in hand, then close (unacked messages requeue).
        indexer.stop()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=30)
        except TimeoutError:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await channel.close()

    return ctx


async def _ping_mongo(app: web.Application) -> tuple[bool, str]:
    await app[MONGO].admin.command("ping")
    return True, "ok"


async def _ping_elasticsearch(app: web.Application) -> tuple[bool, str]:
    ok = bool(await app[ELASTICSEARCH].ping())
    return ok, "ok" if ok else "no answer"


async def _consumer_state(app: web.Application) -> tuple[bool, str]:
    indexer = app[INDEXER]
    if not indexer.consuming:
        return False, "not consuming"
    if not indexer.stores_ready:
        return False, "holding a batch until the stores are back"
    return True, "consuming"
