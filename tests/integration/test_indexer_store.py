"""VideoWriter against real MongoDB and Elasticsearch: idempotent, newest snapshot wins."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch
from pymongo.asynchronous.database import AsyncDatabase

from services.common.catalogue import (
    SEARCH_PREFIX_FIELDS,
    VIDEOS_COLLECTION,
    ensure_mongo_indexes,
    ensure_search_index,
    versioned_index_name,
)
from services.common.errors import StoreUnavailableError
from services.common.events import FoundBy
from services.common.timefmt import parse_rfc3339
from services.indexer.store import VideoWriter
from tests.conftest import free_port
from tests.factories import make_event


async def _writer(db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, alias: str) -> VideoWriter:
    await ensure_mongo_indexes(db)
    await ensure_search_index(es, alias)
    return VideoWriter(db, es, alias)


async def test_redelivered_events_store_each_video_once(
    mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    rng = random.Random(1)
    writer = await _writer(mongo_db, es, es_alias)
    events = [make_event(rng) for _ in range(50)]
    await writer.write_batch(events)
    first = await mongo_db[VIDEOS_COLLECTION].find_one({"video_id": events[0].video_id})
    assert first is not None

    # The same batch again, plus duplicates inside one batch.
    assert await writer.write_batch(events + events[:10]) == [None] * 60
    await es.indices.refresh(index=es_alias)

    assert await mongo_db[VIDEOS_COLLECTION].count_documents({}) == 50
    assert (await es.count(index=es_alias))["count"] == 50
    again = await mongo_db[VIDEOS_COLLECTION].find_one({"video_id": events[0].video_id})
    assert again is not None
    assert again["first_seen_at"] == first["first_seen_at"]
    assert again["updated_at"] >= first["updated_at"]
    assert again["title"] == events[0].title


async def test_an_older_snapshot_never_overwrites_a_newer_one(
    mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    rng = random.Random(2)
    writer = await _writer(mongo_db, es, es_alias)
    newer = make_event(rng, title="New title")
    older = newer.model_copy(update={"title": "Old title", "fetched_at": newer.fetched_at - timedelta(minutes=5)})
    await writer.write_batch([newer])
    await writer.write_batch([older])
    await es.indices.refresh(index=es_alias)

    stored = await mongo_db[VIDEOS_COLLECTION].find_one({"video_id": newer.video_id})
    assert stored is not None
    assert stored["title"] == "New title"
    indexed = await es.get(index=es_alias, id=newer.video_id)
    assert indexed["_source"]["title"] == "New title"


async def test_queries_that_found_a_video_are_merged(
    mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    rng = random.Random(3)
    writer = await _writer(mongo_db, es, es_alias)
    event = make_event(rng, query="cricket")
    await writer.write_batch([event])
    await writer.write_batch([event.model_copy(update={"query": "world cup", "found_by": FoundBy.search("world cup")})])
    await es.indices.refresh(index=es_alias)

    stored = await mongo_db[VIDEOS_COLLECTION].find_one({"video_id": event.video_id})
    assert stored is not None
    assert sorted(stored["queries"]) == ["cricket", "world cup"]
    indexed = await es.get(index=es_alias, id=event.video_id)
    assert sorted(indexed["_source"]["queries"]) == ["cricket", "world cup"]


async def test_text_is_stored_literally_even_when_it_looks_like_an_expression(
    mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    rng = random.Random(4)
    writer = await _writer(mongo_db, es, es_alias)
    event = make_event(rng, title="$title costs $5 & <b>more</b>")
    await writer.write_batch([event])
    stored = await mongo_db[VIDEOS_COLLECTION].find_one({"video_id": event.video_id})
    assert stored is not None
    assert stored["title"] == "$title costs $5 & <b>more</b>"


async def test_the_alias_points_at_a_versioned_index_with_an_explicit_mapping(
    es: AsyncElasticsearch, es_alias: str
) -> None:
    index = await ensure_search_index(es, es_alias)
    assert index == versioned_index_name(es_alias)
    assert await ensure_search_index(es, es_alias) == index  # idempotent
    mapping = (await es.indices.get_mapping(index=index))[index]["mappings"]
    assert mapping["dynamic"] == "strict"
    assert mapping["properties"]["published_at"]["type"] == "date"
    assert mapping["properties"]["video_id"]["type"] == "keyword"
    assert mapping["properties"]["title"]["type"] == "text"


async def test_within_one_batch_the_newest_snapshot_wins_whatever_the_order(
    mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    rng = random.Random(5)
    writer = await _writer(mongo_db, es, es_alias)
    newest = make_event(rng, title="Newest", query="cricket")
    older = newest.model_copy(update={"title": "Older", "fetched_at": newest.fetched_at - timedelta(hours=1)})
    other = make_event(rng, title="Other")
    # A video's first sighting and a merge of it in one batch: the older copy first, then the newer.
    second = newest.model_copy(update={"query": "world cup", "found_by": FoundBy.search("world cup")})
    assert await writer.write_batch([older, other, second, older, newest]) == [None] * 5
    await es.indices.refresh(index=es_alias)

    stored = await mongo_db[VIDEOS_COLLECTION].find_one({"video_id": newest.video_id})
    assert stored is not None
    assert stored["title"] == "Newest"
    assert sorted(stored["queries"]) == ["cricket", "world cup"]
    indexed = await es.get(index=es_alias, id=newest.video_id)
    assert indexed["_source"]["title"] == "Newest"
    assert indexed["_version"] == stored["rev"]
    assert await mongo_db[VIDEOS_COLLECTION].count_documents({}) == 2


async def test_indexed_at_is_the_time_of_the_mongodb_write_so_a_reindex_can_reproduce_it(
    mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    rng = random.Random(6)
    writer = await _writer(mongo_db, es, es_alias)
    event = make_event(rng)
    await writer.write_batch([event])
    await writer.write_batch([event])  # a merge: read back from MongoDB
    stored = await mongo_db[VIDEOS_COLLECTION].find_one({"video_id": event.video_id})
    assert stored is not None
    indexed = (await es.get(index=es_alias, id=event.video_id))["_source"]
    assert parse_rfc3339(indexed["indexed_at"]) == stored["updated_at"]
    assert parse_rfc3339(indexed["first_seen_at"]) == stored["first_seen_at"]


async def test_a_document_mongodb_refuses_is_reported_and_the_rest_of_the_batch_is_stored(
    mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    # A collection validator stands for any document-level refusal (code 121, DocumentValidationFailure).
    await mongo_db.create_collection(VIDEOS_COLLECTION, validator={"title": {"$not": {"$regex": "^REFUSED"}}})
    rng = random.Random(7)
    writer = await _writer(mongo_db, es, es_alias)
    events = [make_event(rng) for _ in range(5)]
    events.insert(2, make_event(rng, title="REFUSED by the validator"))
    reasons = await writer.write_batch(events)
    assert [r is None for r in reasons] == [True, True, False, True, True, True]
    assert str(reasons[2]).startswith("mongodb 121:")
    await es.indices.refresh(index=es_alias)
    assert await mongo_db[VIDEOS_COLLECTION].count_documents({}) == 5
    assert (await es.count(index=es_alias))["count"] == 5


async def test_a_video_too_large_for_mongodb_is_reported_without_failing_the_batch(
    mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    rng = random.Random(8)
    writer = await _writer(mongo_db, es, es_alias)
    huge = make_event(rng).model_copy(update={"tags": ["t" * 1_000_000] * 17})  # 17 MB > 16 MB BSON limit
    events = [make_event(rng), huge, make_event(rng)]
    reasons = await writer.write_batch(events)
    assert reasons[0] is None and reasons[2] is None
    assert str(reasons[1]).startswith("mongodb 10334 BSONObjectTooLarge:"), reasons[1]
    assert await mongo_db[VIDEOS_COLLECTION].count_documents({}) == 2


async def test_a_closed_index_is_an_outage_not_the_documents_fault(
    mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    rng = random.Random(9)
    writer = await _writer(mongo_db, es, es_alias)
    await es.indices.close(index=es_alias)
    with pytest.raises(StoreUnavailableError, match="index_closed_exception"):
        await writer.write_batch([make_event(rng)])
    await es.indices.open(index=es_alias, wait_for_active_shards="1")
    assert await writer.write_batch([make_event(rng)]) == [None]


async def test_an_unreachable_elasticsearch_is_an_outage(
    mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    rng = random.Random(10)
    closed = free_port()
    nowhere_es = AsyncElasticsearch(f"http://127.0.0.1:{closed}", request_timeout=2, max_retries=0)
    try:
        with pytest.raises(StoreUnavailableError) as raised:
            await VideoWriter(mongo_db, nowhere_es, es_alias).write_batch([make_event(rng)])
        assert raised.value.store == "elasticsearch"
    finally:
        await nowhere_es.close()
    # An unreachable MongoDB is covered with a real process by tests/e2e/test_indexer_outage.py (here,
    # PyMongo's async client would leak the refused socket into this test's warnings).


async def test_a_lost_index_is_recreated_and_never_replaced_by_an_unmapped_one(
    mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    rng = random.Random(11)
    writer = await _writer(mongo_db, es, es_alias)
    assert await writer.write_batch([make_event(rng)]) == [None]
    # Elasticsearch loses its data (here: the index is deleted, and the alias with it).
    await es.indices.delete(index=versioned_index_name(es_alias))
    event = make_event(rng)
    with pytest.raises(StoreUnavailableError, match="index_not_found_exception"):
        await writer.write_batch([event])
    # Nothing auto-created a concrete index named like the alias with a guessed mapping.
    assert not await es.indices.exists(index=es_alias)
    # The retry recreates the versioned index behind the alias, with the real mapping.
    assert await writer.write_batch([event]) == [None]
    assert await es.indices.exists_alias(name=es_alias)
    mapping = await es.indices.get_mapping(index=es_alias)
    assert next(iter(mapping.body.values()))["mappings"]["dynamic"] == "strict"


async def test_indexers_starting_together_share_one_index(es: AsyncElasticsearch, es_alias: str) -> None:
    created = await asyncio.gather(*(ensure_search_index(es, es_alias) for _ in range(5)))
    assert set(created) == {versioned_index_name(es_alias)}
    assert list((await es.indices.get_alias(name=es_alias)).body) == [versioned_index_name(es_alias)]


async def test_a_prefix_of_the_word_being_typed_matches_titles_and_descriptions(
    mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    rng = random.Random(12)
    writer = await _writer(mongo_db, es, es_alias)
    in_title = make_event(rng, title="Quetzalcoatl bowling spell").model_copy(update={"description": "plain words"})
    in_description = make_event(rng, title="plain title").model_copy(update={"description": "Xylophone finale tonight"})
    await writer.write_batch([in_title, in_description])
    await es.indices.refresh(index=es_alias)

    async def matches(text: str) -> set[str]:
        query = {"multi_match": {"type": "bool_prefix", "query": text, "fields": list(SEARCH_PREFIX_FIELDS)}}
        found = await es.search(index=es_alias, query=query)
        return {hit["_id"] for hit in found["hits"]["hits"]}

    assert await matches("quetz") == {in_title.video_id}
    assert await matches("bowling sp") == {in_title.video_id}
    assert await matches("xyloph") == {in_description.video_id}
    assert await matches("xylophone fin") == {in_description.video_id}
    assert await matches("Xylophone") == {in_description.video_id}
    assert await matches("zebra") == set()
