"""How a video was found, in both stores: ``found_by`` entries and ``queries``, from events of versions 1 and 2."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from typing import Any

import aio_pika
from elasticsearch import AsyncElasticsearch
from pymongo.asynchronous.database import AsyncDatabase

from services.common.catalogue import VIDEOS_COLLECTION, ensure_mongo_indexes, ensure_search_index
from services.common.events import FoundBy, VideoEvent
from services.common.settings import StackSettings
from services.common.topology import QueueNames
from services.indexer.store import VideoWriter
from tests.factories import make_event
from tests.integration.indexer_support import publish, running_indexer, shared_stack_settings, wait_stored
from tests.waiting import wait_until

CHANNEL = "UCabcdefghijklmnopqrstuv"
OTHER_CHANNEL = "UCzyxwvutsrqponmlkjihgfe"
Entries = list[dict[str, str]]


def search(query: str) -> dict[str, str]:
    return FoundBy.search(query).as_document()


def channel(channel_id: str = CHANNEL) -> dict[str, str]:
    return FoundBy.channel(channel_id).as_document()


def _sorted(entries: Entries | None) -> Entries:
    # A set has no order: compare entries sorted, but keep duplicates so the test would see one.
    return sorted(entries or [], key=lambda entry: json.dumps(entry, sort_keys=True))


async def _writer(db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, alias: str) -> VideoWriter:
    await ensure_mongo_indexes(db)
    await ensure_search_index(es, alias)
    return VideoWriter(db, es, alias)


async def _stored(
    db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, alias: str, video_id: str
) -> tuple[Entries, list[str]]:
    """(found_by, queries) of a video, after checking Elasticsearch holds exactly what MongoDB does."""
    doc = await db[VIDEOS_COLLECTION].find_one({"video_id": video_id})
    assert doc is not None
    source = (await es.get(index=alias, id=video_id))["_source"]
    assert _sorted(source["found_by"]) == _sorted(doc["found_by"])
    assert sorted(source["queries"]) == sorted(doc["queries"])
    # Never a duplicate entry, whatever was written how many times.
    assert len({json.dumps(entry) for entry in doc["found_by"]}) == len(doc["found_by"])
    return _sorted(doc["found_by"]), sorted(doc["queries"])


def _found(event: VideoEvent, how: FoundBy, **update: Any) -> VideoEvent:
    return event.model_copy(update={"found_by": how, "query": how.query, **update})


async def test_a_search_find_records_its_query_and_a_channel_find_no_query(
    mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    rng = random.Random(1)
    writer = await _writer(mongo_db, es, es_alias)
    by_search = make_event(rng, query="golf")
    by_channel = make_event(rng, found_by=FoundBy.channel(CHANNEL))
    assert await writer.write_batch([by_search, by_channel]) == [None, None]

    assert await _stored(mongo_db, es, es_alias, by_search.video_id) == ([search("golf")], ["golf"])
    assert await _stored(mongo_db, es, es_alias, by_channel.video_id) == ([channel()], [])


async def test_a_channel_find_then_a_search_find_records_both(
    mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    rng = random.Random(2)
    writer = await _writer(mongo_db, es, es_alias)
    first = make_event(rng, found_by=FoundBy.channel(CHANNEL))
    # Search shows the video minutes later, with a newer snapshot.
    later = _found(first, FoundBy.search("golf"), fetched_at=first.fetched_at + timedelta(minutes=5))
    await writer.write_batch([first])
    await writer.write_batch([later])

    assert await _stored(mongo_db, es, es_alias, first.video_id) == (_sorted([channel(), search("golf")]), ["golf"])


async def test_two_queries_and_two_channels_give_four_entries_in_one_batch_or_several(
    mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    rng = random.Random(3)
    writer = await _writer(mongo_db, es, es_alias)
    one = make_event(rng, query="golf")
    finds = [FoundBy.search("golf"), FoundBy.search("tennis"), FoundBy.channel(CHANNEL), FoundBy.channel(OTHER_CHANNEL)]
    two = make_event(rng, query="golf")
    # One video: all four finds in one batch. The other: one batch each.
    await writer.write_batch([_found(one, how) for how in finds])
    for how in finds:
        await writer.write_batch([_found(two, how)])

    expected = (_sorted([search("golf"), search("tennis"), channel(), channel(OTHER_CHANNEL)]), ["golf", "tennis"])
    assert await _stored(mongo_db, es, es_alias, one.video_id) == expected
    assert await _stored(mongo_db, es, es_alias, two.video_id) == expected


async def test_replays_duplicates_and_older_snapshots_add_entries_but_never_twice(
    mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    rng = random.Random(4)
    writer = await _writer(mongo_db, es, es_alias)
    newest = make_event(rng, query="golf", title="Newest")
    older_by_channel = _found(
        newest, FoundBy.channel(CHANNEL), title="Older", fetched_at=newest.fetched_at - timedelta(hours=1)
    )
    await writer.write_batch([newest, newest, older_by_channel])
    await writer.write_batch([older_by_channel, newest])  # a replay, in the other order
    await writer.write_batch([older_by_channel] * 3)

    assert await _stored(mongo_db, es, es_alias, newest.video_id) == (_sorted([search("golf"), channel()]), ["golf"])
    doc = await mongo_db[VIDEOS_COLLECTION].find_one({"video_id": newest.video_id})
    assert doc is not None
    assert doc["title"] == "Newest"  # the older snapshot added how it was found, and nothing else


async def test_the_consumer_stores_version_1_and_version_2_messages(
    stack: StackSettings,
    amqp: aio_pika.abc.AbstractRobustConnection,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    es_alias: str,
) -> None:
    rng = random.Random(5)
    # A version 1 message as fetchers before found_by published it: its query, no found_by.
    old = json.loads(make_event(rng, query="golf").model_dump_json()) | {"schema_version": 1}
    del old["found_by"]
    by_channel = make_event(rng, found_by=FoundBy.channel(CHANNEL))
    by_search = make_event(rng, query="tennis")
    # The same video found again by a channel, in a version 2 message.
    again = _found(VideoEvent.model_validate(old), FoundBy.channel(CHANNEL))
    payloads = [json.dumps(old).encode()] + [e.model_dump_json().encode() for e in (by_channel, by_search, again)]
    await publish(amqp, queue_names, payloads)

    settings = shared_stack_settings(stack, queue_names, mongo_db.name, es_alias, index_batch_max_wait_ms=50)
    async with running_indexer(settings, amqp, mongo_db, es):
        await wait_stored(mongo_db, es, es_alias, 3)

        async def both_finds_of_the_old_one_stored() -> bool:
            doc = await mongo_db[VIDEOS_COLLECTION].find_one({"video_id": old["video_id"]})
            source = (await es.get(index=es_alias, id=old["video_id"]))["_source"]
            return doc is not None and len(doc["found_by"]) == len(source["found_by"]) == 2

        await wait_until(both_finds_of_the_old_one_stored, within=30, what="the second find of the version 1 video")

    assert await _stored(mongo_db, es, es_alias, old["video_id"]) == (_sorted([search("golf"), channel()]), ["golf"])
    assert await _stored(mongo_db, es, es_alias, by_channel.video_id) == ([channel()], [])
    assert await _stored(mongo_db, es, es_alias, by_search.video_id) == ([search("tennis")], ["tennis"])
    await es.indices.refresh(index=es_alias)
    # Elasticsearch answers "at least one entry of this source" from the plain object mapping.
    found = await es.search(index=es_alias, query={"term": {"found_by.source": "channel"}}, size=10)
    assert {hit["_id"] for hit in found["hits"]["hits"]} == {old["video_id"], by_channel.video_id}
