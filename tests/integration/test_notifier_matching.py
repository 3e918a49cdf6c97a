"""The notifier's matching against real RabbitMQ, MongoDB and Elasticsearch, videos stored by the real
indexer: exactly the matching (saved search, video) pairs are queued for delivery, whole words only,
never a video first seen before the saved search, never twice for a video stored again, never a video
YouTube deleted (removed_at set)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aio_pika
import pytest
from elasticsearch import AsyncElasticsearch
from pymongo.asynchronous.database import AsyncDatabase

from services.common.catalogue import REMOVED_AT_FIELD, VIDEOS_COLLECTION
from services.common.events import VideoEvent
from services.common.saved_searches import SAVED_SEARCHES_COLLECTION
from services.common.settings import StackSettings
from services.common.stored_events import VideosStored
from services.common.timefmt import utc_now
from services.common.topology import QueueNames, declare_stored_exchange
from services.notifier.deliveries import delivery_id_for
from services.notifier.settings import Settings
from tests.factories import make_event
from tests.integration.api_support import prepare_stores, write
from tests.integration.delivery_support import DeliveryQueues
from tests.integration.indexer_support import bodies, publish, running_indexer, shared_stack_settings
from tests.integration.notifier_support import (
    delete_notifier_queues,
    notifier_settings,
    queued_deliveries,
    running_matcher,
    save_search,
    stored_events_watch,
    take_deliveries,
    wait_matched,
)

Pairs = set[tuple[str, str]]


@pytest.fixture
async def delivery_queues(
    amqp: aio_pika.abc.AbstractRobustConnection, unique_name: str
) -> AsyncIterator[DeliveryQueues]:
    queues = DeliveryQueues(amqp, f"{unique_name}.deliveries")
    yield queues
    await queues.delete()


@pytest.fixture
async def settings(
    stack: StackSettings,
    amqp: aio_pika.abc.AbstractRobustConnection,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es_alias: str,
    delivery_queues: DeliveryQueues,
) -> AsyncIterator[Settings]:
    settings = notifier_settings(stack, queue_names, mongo_db.name, es_alias, delivery_queues)
    yield settings
    await delete_notifier_queues(amqp, settings)


async def test_exactly_the_matching_pairs_are_queued_once_whole_words_and_new_videos_only(
    stack: StackSettings,
    amqp: aio_pika.abc.AbstractRobustConnection,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    es_alias: str,
    delivery_queues: DeliveryQueues,
    settings: Settings,
) -> None:
    rng = random.Random(2020)
    long_ago = utc_now() - timedelta(days=1)
    cat, _ = await save_search(mongo_db, {"q": "cat"}, created_at=long_ago)
    cricket_1, _ = await save_search(mongo_db, {"q": "cricket", "channel_id": [f"UC{1:022d}"]}, created_at=long_ago)
    recent, _ = await save_search(mongo_db, {"q": "cricket", "published_within": "P1D"}, created_at=long_ago)
    # Never matched: no webhook (a feed only), a paused webhook.
    await save_search(mongo_db, {"q": "cat"}, webhook=False, created_at=long_ago)
    await save_search(mongo_db, {"q": "cat"}, paused=True, created_at=long_ago)

    now = utc_now()

    def video(title: str, channel: int, published_ago: timedelta) -> VideoEvent:
        # Found by another query, so the description ("Full clips highlights ...") decides nothing.
        return make_event(
            rng, query="clips", title=title, channel=channel, published_at=now - published_ago, fetched_at=utc_now()
        )

    first = {
        "cat": video("Cat videos to relax", 0, timedelta(hours=1)),
        "category": video("Category theory, lecture 1", 0, timedelta(0)),
        "cricket_1": video("Cricket final", 1, timedelta(days=3)),
        "cricket_2": video("Cricket final", 2, timedelta(hours=2)),
        "both": video("A cat watches cricket", 1, timedelta(hours=3)),
    }
    ids = {name: event.video_id for name, event in first.items()}
    indexer_settings = shared_stack_settings(
        stack, queue_names, mongo_db.name, es_alias, index_batch_size=100, index_batch_max_wait_ms=50
    )
    expected: Pairs = {
        (cat.id, ids["cat"]),
        (cat.id, ids["both"]),
        (cricket_1.id, ids["cricket_1"]),
        (cricket_1.id, ids["both"]),
        # published within a day of being stored: not the three-day-old final
        (recent.id, ids["cricket_2"]),
        (recent.id, ids["both"]),
    }

    async with (
        stored_events_watch(amqp, queue_names) as watch,
        running_indexer(indexer_settings, amqp, mongo_db, es),
        running_matcher(settings, amqp, mongo_db, es) as matcher,
    ):
        await publish(amqp, queue_names, bodies(first.values()))
        await wait_matched(matcher, await watch.wait_announced(set(ids.values())))
        delivered = await take_deliveries(delivery_queues, len(expected))
        assert await queued_deliveries(delivery_queues) == 0, "nothing but the matching pairs"
        assert {(d.saved_search_id, d.video_id) for d in delivered} == expected
        for delivery in delivered:
            assert delivery.delivery_id == delivery_id_for(delivery.saved_search_id, delivery.video_id)
            assert delivery.video["video_id"] == delivery.video_id
            assert delivery.video["title"] == first_title(first, delivery.video_id)

        # A saved search made now: of the videos stored from now on only. The videos stored again
        # (changed) match as before, but were delivered already.
        later, _ = await save_search(mongo_db, {"q": "cat"})
        refetched = utc_now()
        again = [
            first["cat"].model_copy(update={"title": "Cat videos to relax (4K)", "fetched_at": refetched}),
            first["both"].model_copy(update={"view_count": 99, "fetched_at": refetched}),
        ]
        new = video("Cat nap", 3, timedelta(0))
        await publish(amqp, queue_names, bodies([*again, new]))
        watch.announced.clear()
        await wait_matched(matcher, await watch.wait_announced({new.video_id, *(v.video_id for v in again)}))
        delivered = await take_deliveries(delivery_queues, 2)
        assert await queued_deliveries(delivery_queues) == 0
        assert {(d.saved_search_id, d.video_id) for d in delivered} == {
            (cat.id, new.video_id),
            (later.id, new.video_id),
        }
        # cat: both videos again; cricket_1 and recent: "both" again; later: none (older than it)
        assert matcher.metric("tubewatch_notifier_matches_total", outcome="repeated") == 4
        assert matcher.metric("tubewatch_notifier_matches_total", outcome="queued") == len(expected) + 2

    assert await mongo_db[SAVED_SEARCHES_COLLECTION].count_documents({}) == 6


def first_title(events: dict[str, Any], video_id: str) -> str:
    return next(str(event.title) for event in events.values() if event.video_id == video_id)


async def test_a_removed_video_is_never_queued_though_its_stored_event_names_it(
    amqp: aio_pika.abc.AbstractRobustConnection,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    es_alias: str,
    delivery_queues: DeliveryQueues,
    settings: Settings,
) -> None:
    rng = random.Random(2021)
    cat, _ = await save_search(mongo_db, {"q": "cat"}, created_at=utc_now() - timedelta(days=1))
    now = utc_now()
    live, removed = (
        make_event(rng, query="clips", title=title, published_at=now - timedelta(hours=1), fetched_at=now)
        for title in ("Cat videos to relax", "Cat videos, deleted")
    )
    await write(await prepare_stores(mongo_db, es, es_alias), es, es_alias, [live, removed])
    # YouTube deleted the second one; an event naming both (a batch stored before, or one that stored
    # its removal) reaches the notifier.
    await mongo_db[VIDEOS_COLLECTION].update_one({"video_id": removed.video_id}, {"$set": {REMOVED_AT_FIELD: now}})

    async with running_matcher(settings, amqp, mongo_db, es) as matcher:
        channel = await amqp.channel()
        exchange = await declare_stored_exchange(channel, queue_names)
        event = VideosStored(stored_at=utc_now(), video_ids=[removed.video_id, live.video_id])
        await exchange.publish(aio_pika.Message(event.model_dump_json().encode()), routing_key="")
        await channel.close()
        await wait_matched(matcher, 1)
        assert matcher.metric("tubewatch_notifier_videos_percolated_total") == 1, "the removed video is not read"
        [delivery] = await take_deliveries(delivery_queues, 1)
        assert await queued_deliveries(delivery_queues) == 0
        assert (delivery.saved_search_id, delivery.video_id) == (cat.id, live.video_id)
