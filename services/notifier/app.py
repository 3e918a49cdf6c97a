"""The notifier service: an aiohttp app (health, readiness, metrics) whose background tasks keep the
saved searches' percolator index in step, match the indexer's stored events and deliver the webhooks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import pymongo
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from aiohttp import web
from elasticsearch import AsyncElasticsearch
from prometheus_client import CollectorRegistry
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError
from tenacity import AsyncRetrying, retry_if_exception_type, wait_random_exponential

from services.common.clients import (
    SERVICE_ES_TIMEOUT_SECONDS,
    SERVICE_MONGO_TIMEOUT_MS,
    open_amqp,
    open_elasticsearch,
    open_mongo,
)
from services.common.service_app import add_readiness_check, add_service_routes
from services.common.topology import QueueNames, declare_at_start, declare_stored_queue
from services.notifier.deliveries import (
    PUBLISH_CHANNELS,
    DeliveryPublisher,
    DeliveryWorker,
    declare_delivery_topology,
)
from services.notifier.match_store import MatchStore
from services.notifier.matching import StoredEventMatcher
from services.notifier.metrics import DeliveryMetrics, NotifierMetrics
from services.notifier.saved_search_index import SavedSearchPercolator
from services.notifier.saved_search_sync import SavedSearchSync, SyncedSavedSearches
from services.notifier.settings import Settings
from services.notifier.stored_consumer import StoredEventConsumer

logger = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
MONGO = web.AppKey("mongo", AsyncMongoClient)
ELASTICSEARCH = web.AppKey("elasticsearch", AsyncElasticsearch)
AMQP = web.AppKey("amqp", AbstractRobustConnection)
SYNC = web.AppKey("saved_search_sync", SavedSearchSync)
CONSUMER = web.AppKey("stored_event_consumer", StoredEventConsumer)
WORKER = web.AppKey("delivery_worker", DeliveryWorker)

# Readiness answers quickly even while a store is down.
_PING_TIMEOUT_SECONDS = 2.0
# On SIGTERM: how long the stored events in hand get to finish before they are left to redelivery.
STOP_GRACE_SECONDS = 20.0
_QUEUE_DEPTH_INTERVAL_SECONDS = 5.0


def create_app(settings: Settings) -> web.Application:
    app = web.Application()
    app[SETTINGS] = settings
    registry = CollectorRegistry()
    add_service_routes(app, registry)
    # RabbitMQ first: its declarations may refuse the start (_amqp_ctx).
    app.cleanup_ctx.extend([_amqp_ctx, _mongo_ctx, _elasticsearch_ctx, _notifier_ctx(registry)])
    add_readiness_check(app, "mongodb", lambda: _ping_mongo(app))
    add_readiness_check(app, "elasticsearch", lambda: _ping_elasticsearch(app))
    add_readiness_check(app, "saved_searches", lambda: _sync_state(app))
    add_readiness_check(app, "consumer", lambda: _consumer_state(app))
    add_readiness_check(app, "deliveries", lambda: _worker_state(app))
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

    async def declare(channel: AbstractChannel) -> None:
        await declare_stored_queue(channel, names, settings.notifier_queue)
        await declare_delivery_topology(
            channel, settings.delivery_queue_prefix, settings.retry_policy.delays_ms, settings.amqp_queue_type
        )

    async with open_amqp(settings.amqp_url, connection_name="notifier") as connection:
        # Every queue of the notifier, at start, though its consumers declare theirs again when they
        # start: a queue RabbitMQ holds with another type (AMQP_QUEUE_TYPE changed) stops the start
        # with one line.
        await declare_at_start(connection, declare)
        app[AMQP] = connection
        yield


def _notifier_ctx(registry: CollectorRegistry) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        metrics = NotifierMetrics(registry)
        db = app[MONGO][settings.mongodb_database]
        percolator = SavedSearchPercolator(
            app[ELASTICSEARCH], settings.elasticsearch_index, settings.elasticsearch_replica_count
        )
        sync = SavedSearchSync(db, percolator, metrics)
        app[SYNC] = sync
        matches = MatchStore(db)
        # Deliveries are published on a channel of their own (publisher confirms, aio-pika's default).
        publish_channel = await app[AMQP].channel()
        publisher = await DeliveryPublisher.on_channels(
            await declare_delivery_topology(
                publish_channel, settings.delivery_queue_prefix, queue_type=settings.amqp_queue_type
            ),
            [await app[AMQP].channel() for _ in range(PUBLISH_CHANNELS - 1)],
        )
        matcher = StoredEventMatcher(
            db=db, percolator=percolator, sync=sync, matches=matches, deliveries=publisher, metrics=metrics
        )
        consumer = StoredEventConsumer(settings, matcher, metrics)
        app[CONSUMER] = consumer
        consume_channel = await app[AMQP].channel()
        # The webhook deliveries: their own channel, as their prefetch is their own.
        worker_channel = await app[AMQP].channel()
        worker = DeliveryWorker(
            worker_channel,
            db,
            settings,
            settings.webhook_allow_hosts,
            DeliveryMetrics(registry),
            queue_type=settings.amqp_queue_type,
            saved_searches=SyncedSavedSearches(sync, db),
        )
        app[WORKER] = worker
        worker_task = asyncio.create_task(worker.run(), name="deliveries")
        sync_task = asyncio.create_task(sync.run(), name="saved-searches-sync")
        start_task = asyncio.create_task(_start_consuming(matches, consumer, consume_channel), name="stored-events")
        for task in (sync_task, start_task, worker_task):
            task.add_done_callback(_report_crash)
        depth_task = asyncio.create_task(_watch_queue_depth(app[AMQP], consumer), name="queue-depth")
        yield
        depth_task.cancel()
        start_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await start_task
        await consumer.stop(STOP_GRACE_SECONDS)
        await worker.close()
        with contextlib.suppress(Exception):  # a crash of the worker is in its own log lines
            await worker_task
        sync_task.cancel()
        for background in (sync_task, depth_task):
            with contextlib.suppress(asyncio.CancelledError):
                await background
        for channel in (consume_channel, publish_channel, worker_channel):
            with contextlib.suppress(Exception):
                await channel.close()

    return ctx


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error(
            "a background task stopped unexpectedly", extra={"task": task.get_name()}, exc_info=task.exception()
        )


async def _start_consuming(matches: MatchStore, consumer: StoredEventConsumer, channel: AbstractChannel) -> None:
    """Create the matches' index (waiting out MongoDB if it is away), then consume the stored events."""
    retrying = AsyncRetrying(
        retry=retry_if_exception_type(PyMongoError),
        wait=wait_random_exponential(multiplier=0.2, max=10),
        reraise=True,
    )
    await retrying(matches.prepare)
    await consumer.start(channel)


async def _watch_queue_depth(connection: AbstractRobustConnection, consumer: StoredEventConsumer) -> None:
    channel: AbstractChannel | None = None
    while True:
        await asyncio.sleep(_QUEUE_DEPTH_INTERVAL_SECONDS)
        if not consumer.consuming:
            continue  # the queues may not be declared yet
        try:
            if channel is None or channel.is_closed:
                channel = await connection.channel()
            await consumer.refresh_queue_depth(channel)
        except Exception as exc:  # a metric must never take the notifier down; next round retries
            logger.debug("could not read the queue depth", extra={"error": str(exc)})
            channel = None


async def _ping_mongo(app: web.Application) -> tuple[bool, str]:
    with pymongo.timeout(_PING_TIMEOUT_SECONDS):
        await app[MONGO].admin.command("ping")
    return True, "ok"


async def _ping_elasticsearch(app: web.Application) -> tuple[bool, str]:
    ok = bool(await app[ELASTICSEARCH].options(request_timeout=_PING_TIMEOUT_SECONDS).ping())
    return ok, "ok" if ok else "no answer"


async def _sync_state(app: web.Application) -> tuple[bool, str]:
    return app[SYNC].state()


async def _worker_state(app: web.Application) -> tuple[bool, str]:
    consuming = app[WORKER].consuming
    return consuming, "consuming" if consuming else "not consuming"


async def _consumer_state(app: web.Application) -> tuple[bool, str]:
    consumer = app[CONSUMER]
    return consumer.consuming and not consumer.holding, consumer.state
