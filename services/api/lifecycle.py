"""The stores' lifecycle: the clients opened at start and closed at stop, the outage probe, readiness."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from services.api.appkeys import METRICS, QUEUE_PROBE, SETTINGS, STORES
from services.api.es_store import ElasticsearchStore, FastJsonSerializer
from services.api.mongo_store import MongoStore
from services.api.pipeline_status import QueueProbe
from services.api.stores import Stores
from services.common.clients import (
    INTERACTIVE_ES_TIMEOUT_SECONDS,
    INTERACTIVE_MONGO_TIMEOUT_MS,
    open_elasticsearch,
    open_mongo,
)
from services.common.service_app import add_readiness_check
from services.common.topology import QueueNames


def add_stores(app: web.Application) -> None:
    """Open the stores with the app, close them with it, and report them in /readyz."""
    app.cleanup_ctx.append(_stores_ctx)
    add_readiness_check(app, "mongodb", lambda: _ping_mongo(app))
    add_readiness_check(app, "elasticsearch", lambda: _es_readiness(app))


async def _stores_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    async with (
        # How fast a read falls back to MongoDB (stores.py) when Elasticsearch fails: a node that
        # refuses the connection (down) or answers 429/502/503/504 costs one quick retry on another
        # node, up to every node once, so one node of several dying fails no read; with every node
        # down the refusals come back at once and the read falls back without waiting. A timeout
        # (INTERACTIVE_ES_TIMEOUT_SECONDS) is not retried: a node that hangs makes the read fall back
        # rather than wait twice. With one node nothing is retried, as before.
        open_elasticsearch(
            settings.elasticsearch_url,
            INTERACTIVE_ES_TIMEOUT_SECONDS,
            max_retries=len(settings.elasticsearch_hosts) - 1,
            retry_on_timeout=False,
            connections_per_node=64,
            serializer=FastJsonSerializer(),
            # After an outage, try a node again within seconds rather than the default 30 s.
            dead_node_backoff_factor=0.5,
            max_dead_node_backoff=2.0,
        ) as es_client,
        open_mongo(settings.mongodb_url, INTERACTIVE_MONGO_TIMEOUT_MS) as mongo_client,
    ):
        stores = Stores(
            ElasticsearchStore(es_client, settings.elasticsearch_index, settings.api_pit_keep_alive_seconds),
            MongoStore(mongo_client[settings.mongodb_database]),
            app[METRICS],
        )
        app[STORES] = stores
        probe = QueueProbe(settings.amqp_url, QueueNames(exchange=settings.amqp_exchange, queue=settings.amqp_queue))
        app[QUEUE_PROBE] = probe
        es_watch = asyncio.create_task(stores.probe_forever(), name="elasticsearch-probe")
        try:
            yield
        finally:
            es_watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await es_watch
            await probe.close()


async def _es_readiness(app: web.Application) -> tuple[bool, str]:
    return await app[STORES].readiness()


async def _ping_mongo(app: web.Application) -> tuple[bool, str]:
    await app[STORES].mongo.database.client.admin.command("ping")
    return True, "ok"
