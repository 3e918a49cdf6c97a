"""VideoWriter against real MongoDB and Elasticsearch: idempotent, newest snapshot wins."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from elasticsearch import AsyncElasticsearch
from pymongo.asynchronous.database import AsyncDatabase

from services.common.catalogue import VIDEOS_COLLECTION, ensure_mongo_indexes, ensure_search_index
from services.indexer.store import VideoWriter
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
    result = await writer.write_batch(events + events[:10])
    assert result.rejected == {}
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
    await writer.write_batch([event.model_copy(update={"query": "world cup"})])
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
    assert index == f"{es_alias}-v1"
    assert await ensure_search_index(es, es_alias) == index  # idempotent
    mapping = (await es.indices.get_mapping(index=index))[index]["mappings"]
    assert mapping["dynamic"] == "strict"
    assert mapping["properties"]["published_at"]["type"] == "date"
    assert mapping["properties"]["video_id"]["type"] == "keyword"
    assert mapping["properties"]["title"]["type"] == "text"
