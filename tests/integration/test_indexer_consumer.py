"""The batch consumer against real RabbitMQ, MongoDB and Elasticsearch."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest
from elasticsearch import AsyncElasticsearch
from prometheus_client import CollectorRegistry
from pymongo.asynchronous.database import AsyncDatabase

from services.common.catalogue import VIDEOS_COLLECTION, ensure_mongo_indexes, ensure_search_index
from services.common.settings import StackSettings
from services.common.topology import ROUTING_KEY_VIDEO_FOUND, QueueNames, declare_index_queue
from services.indexer.consumer import DEAD_REASON_HEADER, BatchIndexer, IndexerMetrics
from services.indexer.settings import Settings
from services.indexer.store import VideoWriter
from tests.factories import make_event
from tests.waiting import wait_until


@pytest.fixture
async def running_indexer(
    stack: StackSettings,
    amqp: aio_pika.abc.AbstractRobustConnection,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    es_alias: str,
) -> AsyncIterator[BatchIndexer]:
    settings = Settings(
        amqp_url=stack.amqp_url,
        amqp_exchange=queue_names.exchange,
        amqp_queue=queue_names.queue,
        mongodb_url=stack.mongodb_url,
        mongodb_database=mongo_db.name,
        elasticsearch_url=stack.elasticsearch_url,
        elasticsearch_index=es_alias,
        index_batch_size=100,
        index_batch_max_wait_ms=50,
    )
    await ensure_mongo_indexes(mongo_db)
    await ensure_search_index(es, es_alias)
    indexer = BatchIndexer(settings, VideoWriter(mongo_db, es, es_alias), IndexerMetrics(CollectorRegistry()))
    channel = await amqp.channel()
    task = asyncio.create_task(indexer.run(channel))
    yield indexer
    indexer.stop()
    await asyncio.wait_for(task, timeout=30)
    with contextlib.suppress(Exception):
        await channel.close()


async def _publish(amqp: aio_pika.abc.AbstractRobustConnection, names: QueueNames, bodies: list[bytes]) -> None:
    channel = await amqp.channel(publisher_confirms=True)
    await declare_index_queue(channel, names)
    exchange = await channel.get_exchange(names.exchange)
    await asyncio.gather(
        *(
            exchange.publish(
                aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT), ROUTING_KEY_VIDEO_FOUND
            )
            for body in bodies
        )
    )
    await channel.close()


async def test_valid_events_are_stored_and_garbage_is_dead_lettered_with_reasons(
    running_indexer: BatchIndexer,
    amqp: aio_pika.abc.AbstractRobustConnection,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    es_alias: str,
) -> None:
    rng = random.Random(7)
    events = [make_event(rng) for _ in range(300)]
    garbage = [b"not json", b"\xff\xfe invalid utf-8", b'{"video_id": "short"}', b"x" * (5 * 1024 * 1024)]
    bodies = [e.model_dump_json().encode() for e in events]
    # Garbage sits in the middle of the stream: it must not block the valid messages around it.
    mixed = bodies[:150] + garbage + bodies[150:]
    await _publish(amqp, queue_names, mixed)

    videos = mongo_db[VIDEOS_COLLECTION]

    async def all_stored() -> bool:
        return await videos.count_documents({}) == len(events)

    await wait_until(all_stored, what="300 videos in MongoDB")
    await es.indices.refresh(index=es_alias)
    assert (await es.count(index=es_alias))["count"] == len(events)

    channel = await amqp.channel()
    dead = await channel.declare_queue(queue_names.dead_queue, durable=True)
    reasons: dict[bytes, str] = {}

    async def all_dead() -> bool:
        message = await dead.get(no_ack=True, fail=False)
        if message is not None:
            reasons[message.body] = str((message.headers or {}).get(DEAD_REASON_HEADER))
        return len(reasons) == len(garbage)

    await wait_until(all_dead, what="4 dead letters")
    assert "not JSON" in reasons[b"not json"]
    assert "not JSON" in reasons[b"\xff\xfe invalid utf-8"]
    assert "schema error" in reasons[b'{"video_id": "short"}']
    assert set(reasons) == set(garbage)
    # Nothing left unacknowledged in the work queue.
    work = await channel.declare_queue(queue_names.queue, durable=True, passive=True)
    assert work.declaration_result.message_count == 0
    await channel.close()
