"""A removal (a tombstone's ``VideoRemoved``) through the queue and the indexer to the API, and its rules."""

from __future__ import annotations

import copy
import itertools
import json
import random
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import aio_pika
import pytest
from aiohttp.test_utils import TestClient, TestServer
from elasticsearch import AsyncElasticsearch
from pymongo.asynchronous.database import AsyncDatabase

from services.api.app import create_app
from services.api.models import Video
from services.common.catalogue import (
    SEARCH_INDEX_MAPPINGS,
    SEARCH_INDEX_SETTINGS,
    VIDEOS_COLLECTION,
    versioned_index_name,
)
from services.common.events import VideoEvent, VideoRemoved
from services.common.settings import StackSettings
from services.common.stored_events import VideosStored
from services.common.timefmt import format_rfc3339, parse_rfc3339, truncate_to_ms, utc_now
from services.common.topology import QueueNames, declare_stored_exchange
from services.fetcher.publisher import VideoPublisher
from services.indexer.removal import mark_removed
from services.indexer.settlement import ATTEMPTS_HEADER, DEAD_REASON_HEADER
from services.indexer.store import VideoWriter
from tests.factories import BASE_TIME, make_event
from tests.integration.api_support import Client, api_settings, get_page, prepare_stores, write
from tests.integration.indexer_support import (
    metric,
    publish,
    ready_counts,
    running_indexer,
    shared_stack_settings,
    take_dead_letters,
)
from tests.waiting import wait_until

REMOVED_AT = BASE_TIME + timedelta(hours=1)


def removal(event: VideoEvent, when: datetime = REMOVED_AT) -> VideoRemoved:
    return VideoRemoved(video_id=event.video_id, removed_at=when, observed_at=when)


async def stored_removed_at(db: AsyncDatabase[dict[str, Any]], video_id: str) -> datetime | None:
    doc = await db[VIDEOS_COLLECTION].find_one({"video_id": video_id})
    assert doc is not None
    removed_at = doc.get("removed_at")
    assert removed_at is None or isinstance(removed_at, datetime)
    return removed_at


async def searched_removed_at(es: AsyncElasticsearch, alias: str, video_id: str) -> datetime | None:
    await es.indices.refresh(index=alias)
    value = (await es.get(index=alias, id=video_id))["_source"].get("removed_at")
    return None if value is None else parse_rfc3339(value)


async def listed(client: Client, params: dict[str, str]) -> tuple[dict[str, dict[str, Any]], str]:
    body, served_by = await get_page(client, {"limit": "100"} | params)
    return {item["video_id"]: item for item in body["items"]}, served_by


@pytest.fixture
async def api(stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es_alias: str) -> AsyncIterator[Client]:
    settings = api_settings(
        mongodb_url=stack.mongodb_url,
        mongodb_database=mongo_db.name,
        elasticsearch_url=stack.elasticsearch_url,
        elasticsearch_index=es_alias,
    )
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client


@pytest.fixture
async def stored_events_queue(
    amqp: aio_pika.abc.AbstractRobustConnection, queue_names: QueueNames
) -> AsyncIterator[aio_pika.abc.AbstractQueue]:
    """A queue of this test bound to the "videos stored" exchange, as the notifier's is."""
    channel = await amqp.channel()
    queue = await channel.declare_queue(f"{queue_names.queue}.stored-watch", durable=True)
    await queue.bind(await declare_stored_exchange(channel, queue_names))
    yield queue
    await queue.delete(if_unused=False, if_empty=False)
    await channel.close()


async def announced(queue: aio_pika.abc.AbstractQueue) -> list[str]:
    """The video ids of the "videos stored" events waiting in ``queue`` (taken)."""
    named: list[str] = []
    while (message := await queue.get(no_ack=True, fail=False)) is not None:
        named += VideosStored.model_validate_json(message.body).video_ids
    return named


@pytest.fixture
async def degraded_api(
    stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es_alias: str
) -> AsyncIterator[Client]:
    """The API over the same MongoDB and an alias Elasticsearch does not have: it serves from MongoDB."""
    settings = api_settings(
        mongodb_url=stack.mongodb_url,
        mongodb_database=mongo_db.name,
        elasticsearch_url=stack.elasticsearch_url,
        elasticsearch_index=f"{es_alias}-absent",
    )
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client


async def test_a_removal_through_the_queue_hides_the_video_until_a_later_find(
    stack: StackSettings,
    amqp: aio_pika.abc.AbstractRobustConnection,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    es_alias: str,
    api: Client,
    degraded_api: Client,
    stored_events_queue: aio_pika.abc.AbstractQueue,
) -> None:
    rng = random.Random(3)
    gone, kept = (make_event(rng, title="Quetzal bowling masterclass") for _ in range(2))
    await write(await prepare_stores(mongo_db, es, es_alias), es, es_alias, [gone, kept])
    settings = shared_stack_settings(stack, queue_names, mongo_db.name, es_alias, index_batch_max_wait_ms=20)
    channel = await amqp.channel(publisher_confirms=True)
    publisher = await VideoPublisher.declare(channel, queue_names)
    async with running_indexer(settings, amqp, mongo_db, es) as (_, registry):
        await publisher.publish_removals([removal(gone)], lease_token=1)

        async def removed_in_search() -> bool:
            return await searched_removed_at(es, es_alias, gone.video_id) is not None

        await wait_until(removed_in_search, within=30, what="the removal in Elasticsearch")
        assert await stored_removed_at(mongo_db, gone.video_id) == REMOVED_AT
        assert await searched_removed_at(es, es_alias, gone.video_id) == REMOVED_AT
    # The indexer stopped once its batches were acked: the removal was stored, and announced to nobody
    # (a removal is no new match for a saved search).
    assert metric(registry, "tubewatch_indexer_removals_total") == 1
    assert metric(registry, "tubewatch_indexer_messages_total", outcome="stored") == 1
    assert await ready_counts(amqp, queue_names) == (0, 0)
    assert await announced(stored_events_queue) == []

    for client, store in ((api, "elasticsearch"), (degraded_api, "mongodb")):
        for params in ({}, {"q": "quetzal"}):
            items, served_by = await listed(client, params)
            assert served_by == store
            assert list(items) == [kept.video_id], (store, params)
            items, _ = await listed(client, params | {"include_removed": "true"})
            assert items.keys() == {gone.video_id, kept.video_id}, (store, params)
            assert items[gone.video_id]["removed_at"] == format_rfc3339(REMOVED_AT)
            assert items[kept.video_id]["removed_at"] is None
            Video.model_validate(items[gone.video_id])

    # Found again by a snapshot fetched after the removal: listed again, removed_at gone, and announced
    # like any find.
    found_again = make_event(rng, vid=gone.video_id, title=gone.title, fetched_at=REMOVED_AT + timedelta(minutes=1))
    async with running_indexer(settings, amqp, mongo_db, es):
        await publisher.publish_videos([found_again], lease_token=1)

        async def listed_again() -> bool:
            await es.indices.refresh(index=es_alias)
            return gone.video_id in (await listed(api, {}))[0]

        await wait_until(listed_again, within=30, what="the video found again")
    assert await stored_removed_at(mongo_db, gone.video_id) is None
    assert await searched_removed_at(es, es_alias, gone.video_id) is None
    for client in (api, degraded_api):
        for params in ({}, {"q": "quetzal"}):
            assert (await listed(client, params))[0].keys() == {gone.video_id, kept.video_id}, params
    assert await announced(stored_events_queue) == [gone.video_id]
    await channel.close()


async def test_the_later_of_snapshot_and_removal_wins_whatever_their_order(
    mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    rng = random.Random(5)
    writer = await prepare_stores(mongo_db, es, es_alias)
    video = make_event(rng)
    await write(writer, es, es_alias, [video])

    async def remove(when: datetime) -> None:
        assert await writer.write_removals([removal(video, when)]) == [None]

    await remove(BASE_TIME - timedelta(minutes=1))  # older than the stored snapshot: it was seen after
    assert await stored_removed_at(mongo_db, video.video_id) is None
    await remove(REMOVED_AT)
    await remove(REMOVED_AT - timedelta(minutes=5))  # an older removal keeps the later one
    await remove(REMOVED_AT)  # delivered twice
    assert await stored_removed_at(mongo_db, video.video_id) == REMOVED_AT
    late = make_event(rng, vid=video.video_id, fetched_at=REMOVED_AT - timedelta(minutes=1))
    await write(writer, es, es_alias, [late])  # fetched before the removal: does not undo it
    assert await stored_removed_at(mongo_db, video.video_id) == REMOVED_AT
    source = (await es.get(index=es_alias, id=video.video_id))["_source"]
    assert source["removed_at"] is not None
    # A removal of a video the catalogue does not hold changes nothing.
    assert await writer.write_removals([removal(make_event(rng))]) == [None]
    assert await mongo_db[VIDEOS_COLLECTION].count_documents({}) == 1


async def test_an_index_created_before_removed_at_gets_the_field_without_a_reindex(
    mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    index = versioned_index_name(es_alias)
    properties = {k: v for k, v in SEARCH_INDEX_MAPPINGS["properties"].items() if k != "removed_at"}
    await es.indices.create(
        index=index,
        settings=SEARCH_INDEX_SETTINGS,
        mappings=SEARCH_INDEX_MAPPINGS | {"properties": properties},
        aliases={es_alias: {}},
    )
    writer = VideoWriter(mongo_db, es, es_alias)
    video = make_event(random.Random(7))
    await write(writer, es, es_alias, [video])
    assert await writer.write_removals([removal(video)]) == [None]
    mapping = (await es.indices.get_mapping(index=index))[index]["mappings"]["properties"]
    assert mapping["removed_at"] == {"type": "date"}
    await es.indices.refresh(index=es_alias)
    assert (await es.get(index=es_alias, id=video.video_id))["_source"]["removed_at"] is not None


HOUR = timedelta(hours=1)
Step = tuple[str, datetime]  # ("snapshot", fetched_at) or ("removal", removed_at)


@pytest.mark.parametrize(
    ("steps", "removed_at"),
    [
        # The latest removal (3 h) is after every snapshot: removed, whatever came after it.
        (
            [
                ("removal", BASE_TIME + HOUR),
                ("snapshot", BASE_TIME + 2 * HOUR),
                ("removal", BASE_TIME + 3 * HOUR),
                ("snapshot", BASE_TIME + HOUR / 2),
            ],
            BASE_TIME + 3 * HOUR,
        ),
        # A snapshot (2 h) after every removal: listed, whatever came after it.
        (
            [("removal", BASE_TIME + HOUR), ("snapshot", BASE_TIME + 2 * HOUR), ("snapshot", BASE_TIME + HOUR / 2)],
            None,
        ),
        # A snapshot fetched at the removal's very time does not outlive it, in either order.
        (
            [("snapshot", BASE_TIME + HOUR), ("removal", BASE_TIME + HOUR), ("snapshot", BASE_TIME + HOUR / 2)],
            BASE_TIME + HOUR,
        ),
    ],
    ids=["latest-removal", "latest-snapshot", "tie"],
)
async def test_every_order_of_snapshots_and_removals_ends_in_the_later_ones_state(
    mongo_db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    es_alias: str,
    steps: list[Step],
    removed_at: datetime | None,
) -> None:
    """After a first snapshot (at BASE_TIME), ``steps`` in every order, one video per order, each step
    one batch of all the videos: both stores end removed at ``removed_at`` (None: listed)."""
    rng = random.Random(11)
    writer = await prepare_stores(mongo_db, es, es_alias)
    orders = list(itertools.permutations(steps))
    videos = [make_event(rng) for _ in orders]
    await write(writer, es, es_alias, videos)
    for position in range(len(steps)):
        step = [(video, *order[position]) for video, order in zip(videos, orders, strict=True)]
        finds = [
            make_event(rng, vid=video.video_id, fetched_at=when) for video, kind, when in step if kind == "snapshot"
        ]
        removals = [removal(video, when) for video, kind, when in step if kind == "removal"]
        assert await writer.write_batch(finds) == [None] * len(finds)
        assert await writer.write_removals(removals) == [None] * len(removals)
    for video, order in zip(videos, orders, strict=True):
        assert await stored_removed_at(mongo_db, video.video_id) == removed_at, order
        assert await searched_removed_at(es, es_alias, video.video_id) == removed_at, order


async def test_a_redelivered_removal_completes_one_that_only_mongodb_took(
    mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    writer = await prepare_stores(mongo_db, es, es_alias)
    video = make_event(random.Random(13))
    await write(writer, es, es_alias, [video])
    # MongoDB's half only, as when Elasticsearch failed after it: the index still lists the video.
    await mark_removed(mongo_db, [removal(video)], truncate_to_ms(utc_now()))
    assert await stored_removed_at(mongo_db, video.video_id) == REMOVED_AT
    assert await searched_removed_at(es, es_alias, video.video_id) is None
    # The redelivery changes nothing in MongoDB (removed already) and still brings the index level.
    stored = await mongo_db[VIDEOS_COLLECTION].find_one({"video_id": video.video_id})
    assert stored is not None
    assert await writer.write_removals([removal(video)]) == [None]
    again = await mongo_db[VIDEOS_COLLECTION].find_one({"video_id": video.video_id})
    assert again is not None and again["rev"] == stored["rev"]
    assert await searched_removed_at(es, es_alias, video.video_id) == REMOVED_AT
    assert (await es.get(index=es_alias, id=video.video_id))["_version"] == stored["rev"]


async def test_a_refused_removal_is_retried_then_dead_lettered_and_a_bad_one_at_once(
    stack: StackSettings,
    amqp: aio_pika.abc.AbstractRobustConnection,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    es_alias: str,
) -> None:
    # Durations must fit a byte in this index: it refuses the document of a long video, whose
    # removal's copy is then refused too.
    mappings = copy.deepcopy(SEARCH_INDEX_MAPPINGS)
    mappings["properties"]["duration_seconds"] = {"type": "byte"}
    await es.indices.create(
        index=versioned_index_name(es_alias),
        settings=SEARCH_INDEX_SETTINGS,
        mappings=mappings,
        aliases={es_alias: {"is_write_index": True}},
    )
    rng = random.Random(17)
    long_video = make_event(rng).model_copy(update={"duration_seconds": 3600})
    short_video = make_event(rng).model_copy(update={"duration_seconds": 60})
    writer = await prepare_stores(mongo_db, es, es_alias)
    reasons = await writer.write_batch([long_video, short_video])
    assert reasons[0] is not None and reasons[1] is None
    bad = json.loads(removal(short_video).model_dump_json()) | {"video_id": "not an id"}
    await publish(
        amqp,
        queue_names,
        [
            removal(long_video).model_dump_json().encode(),
            json.dumps(bad).encode(),
            removal(short_video).model_dump_json().encode(),
        ],
    )
    settings = shared_stack_settings(
        stack, queue_names, mongo_db.name, es_alias, index_batch_max_wait_ms=20, index_max_attempts=2
    )
    async with running_indexer(settings, amqp, mongo_db, es) as (_, registry):
        dead = await take_dead_letters(amqp, queue_names, 2)
        assert metric(registry, "tubewatch_indexer_dead_letters_total", cause="invalid") == 1
        assert metric(registry, "tubewatch_indexer_dead_letters_total", cause="rejected") == 1
        assert metric(registry, "tubewatch_indexer_messages_total", outcome="retried") == 1
        assert metric(registry, "tubewatch_indexer_removals_total") == 1
    letters = {json.loads(letter.body)["video_id"]: letter.headers for letter in dead}
    assert letters.keys() == {long_video.video_id, "not an id"}
    refused = letters[long_video.video_id]
    assert refused[ATTEMPTS_HEADER] == 2
    assert str(refused[DEAD_REASON_HEADER]).startswith("elasticsearch 400:"), refused
    invalid = str(letters["not an id"][DEAD_REASON_HEADER])
    assert invalid.startswith("invalid event:") and "video_id" in invalid, invalid
    # MongoDB, the system of record, took both removals; the index holds the one it could.
    assert await stored_removed_at(mongo_db, long_video.video_id) == REMOVED_AT
    assert await stored_removed_at(mongo_db, short_video.video_id) == REMOVED_AT
    assert await searched_removed_at(es, es_alias, short_video.video_id) == REMOVED_AT
    assert await ready_counts(amqp, queue_names) == (0, 0)
