"""The indexer's "videos stored" event against real servers: one per batch naming exactly the stored
videos, and a batch is acknowledged only once RabbitMQ confirmed its event."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest
from elasticsearch import AsyncElasticsearch
from pymongo.asynchronous.database import AsyncDatabase

from services.common.settings import StackSettings
from services.common.stored_events import VideosStored
from services.common.timefmt import utc_now
from services.common.topology import QueueNames, declare_stored_exchange
from tests.factories import make_event
from tests.integration.indexer_support import (
    bodies,
    publish,
    ready_counts,
    running_indexer,
    shared_stack_settings,
    take_dead_letters,
    wait_stored,
)
from tests.waiting import wait_until


@pytest.fixture
async def stored_events_queue(
    amqp: aio_pika.abc.AbstractRobustConnection, queue_names: QueueNames
) -> AsyncIterator[aio_pika.abc.AbstractQueue]:
    """A queue of this test bound to the stored events' exchange, as a notifier's would be."""
    channel = await amqp.channel()
    exchange = await declare_stored_exchange(channel, queue_names)
    queue = await channel.declare_queue(f"{queue_names.queue}.stored-watch", durable=True)
    await queue.bind(exchange)
    yield queue
    await queue.delete(if_unused=False, if_empty=False)
    await channel.close()


async def take_events(queue: aio_pika.abc.AbstractQueue, until: set[str]) -> list[VideosStored]:
    """Read stored events until they have named every video of ``until``."""
    events: list[VideosStored] = []
    named: set[str] = set()

    async def all_named() -> bool:
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            events.append(VideosStored.model_validate_json(message.body))
            named.update(events[-1].video_ids)
        return until <= named

    await wait_until(all_named, within=60, what=f"stored events naming {len(until)} videos")
    return events


async def test_each_batch_announces_exactly_its_stored_videos_once_confirmed(
    stack: StackSettings,
    amqp: aio_pika.abc.AbstractRobustConnection,
    queue_names: QueueNames,
    stored_events_queue: aio_pika.abc.AbstractQueue,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    es_alias: str,
) -> None:
    rng = random.Random(20)
    videos = [make_event(rng) for _ in range(120)]
    started = utc_now()
    # A body that is no event sits in the stream: dead-lettered, never announced.
    await publish(amqp, queue_names, [*bodies(videos[:60]), b"not json", *bodies(videos[60:])])
    settings = shared_stack_settings(
        stack, queue_names, mongo_db.name, es_alias, index_batch_size=50, index_batch_max_wait_ms=50
    )

    async with running_indexer(settings, amqp, mongo_db, es):
        await wait_stored(mongo_db, es, es_alias, len(videos))
        events = await take_events(stored_events_queue, {v.video_id for v in videos})
        await take_dead_letters(amqp, queue_names, 1)

    named = [video_id for event in events for video_id in event.video_ids]
    # Every stored video once (no batch was redelivered), and nothing else.
    assert sorted(named) == sorted(v.video_id for v in videos)
    # One event per batch: 121 messages in batches of at most 50.
    assert 3 <= len(events) <= 10
    assert all(started <= event.stored_at <= utc_now() for event in events)


async def test_a_batch_whose_event_is_refused_is_not_acknowledged_and_announced_once_it_is_confirmed(
    stack: StackSettings,
    amqp: aio_pika.abc.AbstractRobustConnection,
    queue_names: QueueNames,
    stored_events_queue: aio_pika.abc.AbstractQueue,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    es_alias: str,
) -> None:
    rng = random.Random(21)
    videos = [make_event(rng) for _ in range(30)]
    channel = await amqp.channel()
    # A full queue that refuses publishes: RabbitMQ nacks every stored event routed to it, as it
    # would an event it could not take (a crash before the confirm leaves the batch unacked too).
    refusing = await channel.declare_queue(
        f"{queue_names.queue}.stored-full", arguments={"x-max-length": 0, "x-overflow": "reject-publish"}
    )
    await refusing.bind(await declare_stored_exchange(channel, queue_names))
    await publish(amqp, queue_names, bodies(videos))
    settings = shared_stack_settings(
        stack, queue_names, mongo_db.name, es_alias, index_batch_size=100, index_batch_max_wait_ms=50
    )

    async with running_indexer(settings, amqp, mongo_db, es):
        # Stored in both stores, but the event is refused: the batch must stay in RabbitMQ.
        await wait_stored(mongo_db, es, es_alias, len(videos))

    async def all_back_in_the_queue() -> bool:
        return await ready_counts(amqp, queue_names) == (len(videos), 0)

    await wait_until(all_back_in_the_queue, within=15, what="the unconfirmed batch back in the work queue")

    await refusing.delete(if_unused=False, if_empty=False)
    await channel.close()
    # Copies of the refused events may have reached the other bound queue: only new ones count.
    await stored_events_queue.purge()
    async with running_indexer(settings, amqp, mongo_db, es):
        await take_events(stored_events_queue, {v.video_id for v in videos})

        async def work_queue_empty() -> bool:
            return await ready_counts(amqp, queue_names) == (0, 0)

        await wait_until(work_queue_empty, within=30, what="the batch acknowledged")
