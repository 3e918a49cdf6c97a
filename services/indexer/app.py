"""The indexer service: an aiohttp app (health, readiness, metrics) whose background task is the consumer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pymongo
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from aiohttp import web
from elasticsearch import AsyncElasticsearch
from prometheus_client import CollectorRegistry
from pymongo import AsyncMongoClient

from services.common.clients import (
    SERVICE_ES_TIMEOUT_SECONDS,
    SERVICE_MONGO_TIMEOUT_MS,
    open_amqp,
    open_elasticsearch,
    open_mongo,
)
from services.common.service_app import add_readiness_check, add_service_routes
from services.common.topology import QueueNames, declare_at_start, declare_index_queue
from services.indexer.attribution import QueryAttribution
from services.indexer.consumer import BatchIndexer
from services.indexer.metrics import IndexerMetrics
from services.indexer.settings import Settings
from services.indexer.store import VideoWriter
from services.indexer.upgrade import CatalogueUpgrade

logger = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
MONGO = web.AppKey("mongo", AsyncMongoClient)
ELASTICSEARCH = web.AppKey("elasticsearch", AsyncElasticsearch)
AMQP = web.AppKey("amqp", AbstractRobustConnection)
INDEXER = web.AppKey("indexer", BatchIndexer)

# Readiness answers quickly even while a store is down.
_PING_TIMEOUT_SECONDS = 2.0


def create_app(settings: Settings) -> web.Application:
    app = web.Application()
    app[SETTINGS] = settings
    registry = CollectorRegistry()
    add_service_routes(app, registry)
    # RabbitMQ first: its declarations may refuse the start (_amqp_ctx).
    app.cleanup_ctx.extend([_amqp_ctx, _mongo_ctx, _elasticsearch_ctx, _indexer_ctx(registry)])
    add_readiness_check(app, "mongodb", lambda: _ping_mongo(app))
    add_readiness_check(app, "elasticsearch", lambda: _ping_elasticsearch(app))
    add_readiness_check(app, "consumer", lambda: _consumer_state(app))
    return app


async def _mongo_ctx(app: web.Application) -> AsyncIterator[None]:
    async with open_mongo(app[SETTINGS].mongodb_url, SERVICE_MONGO_TIMEOUT_MS) as client:
        app[MONGO] = client
        yield


async def _elasticsearch_ctx(app: web.Application) -> AsyncIterator[None]:
    async with open_elasticsearch(app[SETTINGS].elasticsearch_url, SERVICE_ES_TIMEOUT_SECONDS) as client:
        app[ELASTICSEARCH] = client
        yield


async def _amqp_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    names = QueueNames(settings.amqp_exchange, settings.amqp_queue, settings.amqp_queue_type)
    async with open_amqp(settings.amqp_url, connection_name="indexer") as connection:
        # At start, not only once the stores are ready (the consumer declares again then): a queue
        # RabbitMQ holds with another type (AMQP_QUEUE_TYPE changed) stops the start with one line.
        await declare_at_start(connection, lambda channel: declare_index_queue(channel, names))
        app[AMQP] = connection
        yield


def _indexer_ctx(registry: CollectorRegistry) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        metrics = IndexerMetrics(registry)
        db = app[MONGO][settings.mongodb_database]
        upgrade = CatalogueUpgrade(settings, db, app[ELASTICSEARCH])
        attribution = (
            None
            if not settings.index_attribution
            else QueryAttribution(
                db,
                app[ELASTICSEARCH],
                settings.elasticsearch_index,
                search_queries=settings.search_queries,
                window=timedelta(days=settings.auto_follow_window_days),
                batch_size=settings.index_batch_size,
                replicas=settings.elasticsearch_replica_count,
            )
        )
        writer = VideoWriter(
            db,
            app[ELASTICSEARCH],
            settings.elasticsearch_index,
            timer=metrics.observe_store,
            upgrade=upgrade,
            attribution=attribution,
        )
        indexer = BatchIndexer(settings, writer, metrics)
        app[INDEXER] = indexer
        channel = await app[AMQP].channel()
        task = asyncio.create_task(indexer.run(channel), name="batch-indexer")
        task.add_done_callback(_report_crash)
        depth_task = asyncio.create_task(_watch_queue_depth(app[AMQP], indexer, settings), name="queue-depth")
        sweep_task = asyncio.create_task(upgrade.sweep_forever(), name="found-by-sweep")
        # Beside the consumer, not before it: on a large collection the build takes a while.
        text_index_task = asyncio.create_task(upgrade.build_text_index(), name="text-index")
        reload_task = asyncio.create_task(
            attribution.reload_forever() if attribution else asyncio.Event().wait(), name="queries-reload"
        )
        yield
        # Graceful stop: no new deliveries, finish and ack the batches in hand, then close. If a
        # store is out and the batches cannot finish in time, they stay unacked and are redelivered.
        depth_task.cancel()
        sweep_task.cancel()
        # Stops waiting for a build; the next start builds it (or joins a build MongoDB still runs).
        text_index_task.cancel()
        reload_task.cancel()
        indexer.stop()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=settings.index_shutdown_timeout_seconds)
        except TimeoutError:
            logger.warning("batches not stored in time; leaving them to redelivery")
            task.cancel()
        except Exception:  # already logged by _report_crash
            logger.debug("consumer had failed before shutdown")
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        for background in (depth_task, sweep_task, text_index_task, reload_task):
            with contextlib.suppress(asyncio.CancelledError):
                await background
        await upgrade.close()
        if attribution is not None:
            await attribution.close()
        await channel.close()

    return ctx


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("the consumer stopped unexpectedly", exc_info=task.exception())


async def _watch_queue_depth(connection: AbstractRobustConnection, indexer: BatchIndexer, settings: Settings) -> None:
    channel: AbstractChannel | None = None
    while True:
        await asyncio.sleep(settings.index_queue_depth_interval_seconds)
        if not indexer.consuming:
            continue  # the queues may not be declared yet
        try:
            if channel is None or channel.is_closed:
                channel = await connection.channel()
            await indexer.refresh_queue_depth(channel)
        except Exception as exc:  # a metric must never take the consumer down; next round retries
            logger.debug("could not read the queue depth", extra={"error": str(exc)})
            channel = None


async def _ping_mongo(app: web.Application) -> tuple[bool, str]:
    with pymongo.timeout(_PING_TIMEOUT_SECONDS):
        await app[MONGO].admin.command("ping")
    return True, "ok"


async def _ping_elasticsearch(app: web.Application) -> tuple[bool, str]:
    ok = bool(await app[ELASTICSEARCH].options(request_timeout=_PING_TIMEOUT_SECONDS).ping())
    return ok, "ok" if ok else "no answer"


async def _consumer_state(app: web.Application) -> tuple[bool, str]:
    indexer = app[INDEXER]
    return indexer.consuming and indexer.stores_ready, indexer.state
