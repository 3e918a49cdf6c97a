"""Attribution of channel-found videos to the configured queries they match, through the percolator index:
text then search, stemming, two queries, a query added later (at start, or in the sources), the
catalogue's analyser followed, and auto-follow not counting text matches."""

from __future__ import annotations

import copy
import random
from datetime import timedelta
from typing import Any

from elasticsearch import AsyncElasticsearch
from pymongo.asynchronous.database import AsyncDatabase

from services.common.catalogue import (
    SEARCH_INDEX_MAPPINGS,
    SEARCH_INDEX_SETTINGS,
    SEARCH_INDEX_VERSION,
    VIDEOS_COLLECTION,
    create_search_index,
    ensure_mongo_indexes,
    ensure_search_index,
    percolator_alias,
    versioned_index_name,
)
from services.common.events import FoundBy, VideoEvent
from services.common.sources import SOURCES_COLLECTION, QuerySource, SeedRequest, new_query_id, seed_from_environment
from services.common.timefmt import utc_now
from services.fetcher.follows import search_counts
from services.indexer.attribution import QueryAttribution
from services.indexer.reindex import swap_alias
from services.indexer.store import VideoWriter
from tests.factories import BASE_TIME, make_event

CHANNEL = "UCabcdefghijklmnopqrstuv"


async def attributing_writer(
    db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    alias: str,
    queries: list[str],
    *,
    window: timedelta = timedelta(days=3650),
) -> tuple[VideoWriter, QueryAttribution]:
    await ensure_mongo_indexes(db)
    await ensure_search_index(es, alias)
    attribution = QueryAttribution(db, es, alias, search_queries=queries, window=window)
    return VideoWriter(db, es, alias, attribution=attribution), attribution


def by_channel(rng: random.Random, title: str, **update: Any) -> VideoEvent:
    event = make_event(rng, found_by=FoundBy.channel(CHANNEL), title=title)
    return event.model_copy(update={"description": "", "channel_title": "Some channel", **update})


async def stored(
    db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, alias: str, video_id: str
) -> dict[str, str]:
    """{query: "search" | "text"} of a video, after checking Elasticsearch has the same queries and finds."""
    doc = await db[VIDEOS_COLLECTION].find_one({"video_id": video_id})
    assert doc is not None
    source = (await es.get(index=alias, id=video_id))["_source"]
    assert sorted(source["queries"]) == sorted(doc["queries"])
    assert len(doc["queries"]) == len(set(doc["queries"]))
    searched = {entry["query"] for entry in source["found_by"] if entry["source"] == "search"}
    assert searched == {entry["query"] for entry in doc["found_by"] if entry["source"] == "search"}
    assert set(doc.get("text_matched_queries") or []) == set(doc["queries"]) - searched
    return {query: "search" if query in searched else "text" for query in doc["queries"]}


async def test_a_channel_video_matching_a_query_by_text_belongs_to_it_until_search_confirms_it(
    mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    rng = random.Random(1)
    writer, _ = await attributing_writer(mongo_db, es, es_alias, ["cricket"])
    matching = by_channel(rng, "Cricket World Cup final, last over")
    other = by_channel(rng, "Tennis at dawn")
    assert await writer.write_batch([matching, other]) == [None, None]

    assert await stored(mongo_db, es, es_alias, matching.video_id) == {"cricket": "text"}
    assert await stored(mongo_db, es, es_alias, other.video_id) == {}

    found = matching.model_copy(
        update={
            "found_by": FoundBy.search("cricket"),
            "query": "cricket",
            "fetched_at": BASE_TIME + timedelta(minutes=5),
        }
    )
    await writer.write_batch([found])
    await writer.write_batch([matching])  # the channel's read again: still search, nothing twice
    assert await stored(mongo_db, es, es_alias, matching.video_id) == {"cricket": "search"}


async def test_stemming_and_two_queries_attribute_independently(
    mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    rng = random.Random(2)
    writer, _ = await attributing_writer(mongo_db, es, es_alias, ["bowl", "spin bowling"])
    bowling = by_channel(rng, "Bowling masterclass")
    spin = by_channel(rng, "Spin bowler's guide", description="How spin bowling works")
    in_description = by_channel(rng, "Batting practice", description="a bowl of rice after the nets")
    partial = by_channel(rng, "Spin class at the gym")  # "spin" without "bowling": not the second query
    await writer.write_batch([bowling, spin, in_description, partial])

    assert await stored(mongo_db, es, es_alias, bowling.video_id) == {"bowl": "text"}
    assert await stored(mongo_db, es, es_alias, spin.video_id) == {"bowl": "text", "spin bowling": "text"}
    assert await stored(mongo_db, es, es_alias, in_description.video_id) == {"bowl": "text"}
    assert await stored(mongo_db, es, es_alias, partial.video_id) == {}


async def test_a_search_find_is_not_percolated_and_keeps_search(
    mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    rng = random.Random(3)
    writer, _ = await attributing_writer(mongo_db, es, es_alias, ["cricket", "golf"])
    searched = make_event(rng, query="cricket", title="Cricket and golf on one day")
    await writer.write_batch([searched])
    assert await stored(mongo_db, es, es_alias, searched.video_id) == {"cricket": "search"}


async def test_text_matches_are_written_with_the_event_itself_new_or_merged(
    mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    """One write per event: a matched channel video's first write holds its matches (rev 1), and a
    channel read of a video search found for one query adds the other query as text only."""
    rng = random.Random(4)
    writer, _ = await attributing_writer(mongo_db, es, es_alias, ["cricket", "golf"])
    fresh = by_channel(rng, "Golf at sunrise")
    searched = make_event(rng, query="cricket", title="Cricket and golf on one day")
    in_one_batch = make_event(rng, query="golf", title="Golf and cricket, the sequel")
    await writer.write_batch([fresh, searched, in_one_batch])

    by_channel_later = searched.model_copy(
        update={"found_by": FoundBy.channel(CHANNEL), "query": None, "fetched_at": BASE_TIME + timedelta(minutes=5)}
    )
    same_video_by_channel = in_one_batch.model_copy(update={"found_by": FoundBy.channel(CHANNEL), "query": None})
    await writer.write_batch([by_channel_later, same_video_by_channel, same_video_by_channel])

    assert await stored(mongo_db, es, es_alias, fresh.video_id) == {"golf": "text"}
    assert await stored(mongo_db, es, es_alias, searched.video_id) == {"cricket": "search", "golf": "text"}
    assert await stored(mongo_db, es, es_alias, in_one_batch.video_id) == {"golf": "search", "cricket": "text"}
    revs = {
        doc["video_id"]: doc["rev"]
        async for doc in mongo_db[VIDEOS_COLLECTION].find({}, {"video_id": 1, "rev": 1, "_id": 0})
    }
    assert revs == {fresh.video_id: 1, searched.video_id: 2, in_one_batch.video_id: 3}


async def test_a_query_added_later_is_attributed_to_older_channel_videos_of_the_window(
    mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    rng = random.Random(4)
    week = timedelta(days=7)
    writer, _ = await attributing_writer(mongo_db, es, es_alias, ["cricket"], window=week)
    now = utc_now()
    golf = by_channel(rng, "Golf: the longest drive", published_at=now - timedelta(days=2), fetched_at=now)
    old_golf = by_channel(rng, "Golf in the rain", published_at=now - timedelta(days=9), fetched_at=now)
    searched = make_event(
        rng, query="tennis", title="Golf or tennis?", published_at=now - timedelta(days=1), fetched_at=now
    )
    await writer.write_batch([golf, old_golf, searched])
    assert await stored(mongo_db, es, es_alias, golf.video_id) == {}

    # A restart with golf configured: the percolator index did not hold it, so it is percolated
    # backwards over the channel videos of the last AUTO_FOLLOW_WINDOW_DAYS.
    restarted, attribution = await attributing_writer(mongo_db, es, es_alias, ["cricket", "golf"], window=week)
    await restarted.prepare()
    await attribution.wait_backfills()
    await es.indices.refresh(index=es_alias)
    assert await stored(mongo_db, es, es_alias, golf.video_id) == {"golf": "text"}
    assert await stored(mongo_db, es, es_alias, old_golf.video_id) == {}
    assert await stored(mongo_db, es, es_alias, searched.video_id) == {"tennis": "search"}
    held = await es.search(index=percolator_alias(es_alias), size=10)
    assert sorted(hit["_source"]["query_text"] for hit in held["hits"]["hits"]) == ["cricket", "golf"]


async def test_the_percolator_index_follows_the_catalogues_analysis_and_mapping(
    mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    rng = random.Random(5)
    # A catalogue whose titles are analysed with synonyms (stumps = wicket) and no stemming.
    settings = copy.deepcopy(SEARCH_INDEX_SETTINGS)
    settings["analysis"]["filter"]["cricket_synonyms"] = {"type": "synonym", "synonyms": ["stumps, wicket"]}
    settings["analysis"]["analyzer"]["title_synonyms"] = {
        "type": "custom",
        "tokenizer": "standard",
        "filter": ["lowercase", "cricket_synonyms"],
    }
    mappings = copy.deepcopy(SEARCH_INDEX_MAPPINGS)
    mappings["properties"]["title"]["analyzer"] = "title_synonyms"
    await es.indices.create(
        index=versioned_index_name(es_alias),
        settings=settings,
        mappings=mappings,
        aliases={es_alias: {"is_write_index": True}},
    )
    writer, _ = await attributing_writer(mongo_db, es, es_alias, ["stumps", "bowl"])
    wicket, bowling = by_channel(rng, "A wicket in the first over"), by_channel(rng, "Bowling at night")
    await writer.write_batch([wicket, bowling])
    assert await stored(mongo_db, es, es_alias, wicket.video_id) == {"stumps": "text"}
    assert await stored(mongo_db, es, es_alias, bowling.video_id) == {}  # no stemming in this catalogue

    # The catalogue reindexed with the project's analysis: at the next start, the percolator follows.
    await create_search_index(es, versioned_index_name(es_alias, SEARCH_INDEX_VERSION + 1))
    await swap_alias(es, es_alias, versioned_index_name(es_alias, SEARCH_INDEX_VERSION + 1))
    restarted, _ = await attributing_writer(mongo_db, es, es_alias, ["stumps", "bowl"])
    wicket_again, bowling_again = by_channel(rng, "Another wicket"), by_channel(rng, "Bowling by day")
    await restarted.write_batch([wicket_again, bowling_again])
    assert await stored(mongo_db, es, es_alias, wicket_again.video_id) == {}
    assert await stored(mongo_db, es, es_alias, bowling_again.video_id) == {"bowl": "text"}
    percolators = await es.indices.get_alias(name=percolator_alias(es_alias))
    assert len(percolators.body) == 1  # the percolator index of the old analysis is gone


async def test_queries_come_from_the_sources_once_seeded_and_a_query_added_there_attributes_backwards(
    mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    rng = random.Random(6)
    now = utc_now()
    request = SeedRequest(queries=["snooker"], channels=[], mode="first", seeded_by="api")
    await seed_from_environment(mongo_db, request, now)
    # SEARCH_QUERIES says cricket, but the sources (seeded with snooker) are what the indexer follows.
    writer, attribution = await attributing_writer(mongo_db, es, es_alias, ["cricket"])
    cricket = by_channel(rng, "Cricket and darts", published_at=now - timedelta(days=1), fetched_at=now)
    await writer.write_batch([cricket])
    assert await stored(mongo_db, es, es_alias, cricket.video_id) == {}

    # The admin API adds darts: the next reload syncs the percolator and attributes older videos.
    added = QuerySource(id=new_query_id(), text="darts", created_at=now, updated_at=now)
    await mongo_db[SOURCES_COLLECTION].insert_one(added.model_dump(by_alias=True))
    await attribution.prepare()
    await attribution.wait_backfills()
    await es.indices.refresh(index=es_alias)
    assert await stored(mongo_db, es, es_alias, cricket.video_id) == {"darts": "text"}


async def test_auto_follow_does_not_count_videos_matched_by_text(
    mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    rng = random.Random(7)
    writer, _ = await attributing_writer(mongo_db, es, es_alias, ["cricket"])
    now = utc_now()
    uploads = [
        by_channel(rng, f"Cricket day {i}", published_at=now - timedelta(hours=i), fetched_at=now) for i in (1, 2)
    ]
    await writer.write_batch(uploads)
    assert await stored(mongo_db, es, es_alias, uploads[0].video_id) == {"cricket": "text"}
    assert await search_counts(mongo_db, now - timedelta(days=7), now) == {}
