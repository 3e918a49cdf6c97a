"""An upgraded indexer against a catalogue of version 1: the backfill of found_by and the reindex at start."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from elasticsearch import AsyncElasticsearch
from pymongo.asynchronous.database import AsyncDatabase

from services.common.catalogue import (
    INDEX_SORT,
    SEARCH_INDEX_MAPPINGS,
    SEARCH_INDEX_SETTINGS,
    SEARCH_INDEX_VERSION,
    VIDEOS_COLLECTION,
    ensure_mongo_indexes,
    versioned_index_name,
)
from services.common.events import FoundBy
from services.common.settings import StackSettings
from services.common.timefmt import truncate_to_ms, utc_now
from services.common.topology import QueueNames
from services.common.video_query import sort_clauses
from services.indexer.found_by_backfill import add_lacking_found_by, complete_found_by
from services.indexer.reindex import reindex
from services.indexer.store import VideoWriter
from services.indexer.upgrade import CatalogueUpgrade
from tests.factories import make_event
from tests.integration.indexer_support import shared_stack_settings
from tests.integration.indexer_upgrade_support import (
    Reader,
    assert_every_video_has_found_by,
    build_version_1_catalogue,
    index_version_1,
    search_entries,
    version_1_document,
)
from tests.waiting import wait_until

CHANNEL = "UCabcdefghijklmnopqrstuv"


class OldIndexer:
    """An indexer of version 1 still running during the rolling upgrade: new videos and added queries."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, alias: str) -> None:
        self._db = db
        self._es = es
        self._alias = alias
        self._rng = random.Random(99)
        self.written: list[str] = []
        self._stop = asyncio.Event()

    async def run(self) -> None:
        videos = self._db[VIDEOS_COLLECTION]
        while not self._stop.is_set():
            doc = version_1_document(self._rng, ["snooker"])
            await videos.insert_one(dict(doc))
            self.written.append(doc["video_id"])
            # And the merge of a version 1 indexer: the query, not found_by.
            older = self.written[self._rng.randrange(len(self.written))]
            merged = await videos.find_one_and_update(
                {"video_id": older},
                {
                    "$addToSet": {"queries": "darts"},
                    "$inc": {"rev": 1},
                    "$set": {"updated_at": truncate_to_ms(utc_now())},
                },
                return_document=True,
            )
            assert merged is not None
            await index_version_1(self._es, self._alias, [doc, merged])
            await asyncio.sleep(0.02)  # an indexer's pace between batches, not a condition to wait for

    def stop(self) -> None:
        self._stop.set()


async def test_indexers_starting_together_upgrade_a_version_1_catalogue_once_and_reads_never_fail(
    stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    seeded = await build_version_1_catalogue(mongo_db, es, es_alias, 20_000)
    names = QueueNames(f"{es_alias}.videos", f"{es_alias}.videos.index")
    settings = shared_stack_settings(
        stack, names, mongo_db.name, es_alias, reindex_batch_size=1000, reindex_old_index_grace_seconds=0.5
    )
    reader = Reader(es, es_alias)
    old_indexer = OldIndexer(mongo_db, es, es_alias)
    reading = asyncio.create_task(reader.run())
    old_writing = asyncio.create_task(old_indexer.run())
    upgrades = [CatalogueUpgrade(settings, mongo_db, es) for _ in range(3)]
    try:
        # Three indexers of the new version start at once, with their MongoDB indexes first.
        await ensure_mongo_indexes(mongo_db)
        await asyncio.gather(*(upgrade.run() for upgrade in upgrades))
        # The alias moved to the current version, built once (the others waited for it).
        current = versioned_index_name(es_alias)
        assert list((await es.indices.get_alias(name=es_alias)).body) == [current]
        assert not await es.indices.exists(index=versioned_index_name(es_alias, SEARCH_INDEX_VERSION + 1))
        # The old index goes after the grace.
        await wait_until(
            lambda: _absent(es, versioned_index_name(es_alias, 1)), within=30, what="the version 1 index deleted"
        )
        # The last old indexer stops; the videos it stored meanwhile are found by the next look (an
        # indexer's next start or its sweep, which run the same step).
        old_indexer.stop()
        await old_writing
        await es.indices.refresh(index=es_alias)
        await upgrades[0].run()
    finally:
        reader.stop()
        old_indexer.stop()
        await asyncio.gather(reading, old_writing)
        for upgrade in upgrades:
            await upgrade.close()

    assert reader.failures == []
    assert reader.reads > 10
    assert min(reader.counts) >= len(seeded)  # never a video missing from the reads
    assert len(old_indexer.written) > 5
    # Every video in both stores has found_by, also those the version 1 indexer stored or replaced
    # in Elasticsearch after the swap.
    total = len(seeded) + len(old_indexer.written)
    await assert_every_video_has_found_by(mongo_db, es, es_alias, total, complete=False)
    # A query it added after the video got found_by is completed by the next reindex (or write).
    await reindex(settings.model_copy(update={"reindex_old_index_grace_seconds": 0}), mongo_db, es, progress=False)
    await assert_every_video_has_found_by(mongo_db, es, es_alias, total)


async def _absent(es: AsyncElasticsearch, index: str) -> bool:
    return not await es.indices.exists(index=index)


async def test_an_indexer_on_a_current_catalogue_gives_found_by_to_videos_an_older_one_stored(
    stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    names = QueueNames(f"{es_alias}.videos", f"{es_alias}.videos.index")
    settings = shared_stack_settings(stack, names, mongo_db.name, es_alias)
    upgrade = CatalogueUpgrade(settings, mongo_db, es)
    writer = VideoWriter(mongo_db, es, es_alias, upgrade=upgrade)
    rng = random.Random(7)
    by_channel = make_event(rng, found_by=FoundBy.channel(CHANNEL))
    assert await writer.write_batch([by_channel]) == [None]  # prepares: creates the current index
    # A version 1 indexer (still running in a rolling upgrade) stores two videos without found_by.
    legacy = [version_1_document(rng, ["golf"]), version_1_document(rng, ["golf", "tennis"])]
    await mongo_db[VIDEOS_COLLECTION].insert_many([dict(doc) for doc in legacy])
    await index_version_1(es, es_alias, legacy)

    await upgrade.run()  # the next start (or the minute's sweep)
    await upgrade.close()

    for doc in legacy:
        stored = await mongo_db[VIDEOS_COLLECTION].find_one({"video_id": doc["video_id"]})
        assert stored is not None
        assert sorted(stored["found_by"], key=str) == sorted(search_entries(doc["queries"]), key=str)
        assert stored["rev"] == doc["rev"] + 1
        source = (await es.get(index=es_alias, id=doc["video_id"]))["_source"]
        assert source["found_by"] == stored["found_by"]
    # A channel find stays a channel find, and a second look changes nothing.
    assert await add_lacking_found_by(mongo_db, 100) == 0
    assert await complete_found_by(mongo_db, 100) == 0
    await assert_every_video_has_found_by(mongo_db, es, es_alias, 3)
    stored_channel = await mongo_db[VIDEOS_COLLECTION].find_one({"video_id": by_channel.video_id})
    assert stored_channel is not None
    assert stored_channel["found_by"] == [FoundBy.channel(CHANNEL).as_document()]
    assert stored_channel["queries"] == []


async def test_an_unsorted_version_2_index_is_rebuilt_sorted_newest_first_and_lists_the_same(
    stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    # A version 2 catalogue: today's mapping, no index sort (which only a new index can get).
    unsorted = {k: v for k, v in SEARCH_INDEX_SETTINGS.items() if k not in INDEX_SORT}
    await es.indices.create(
        index=versioned_index_name(es_alias, 2),
        settings=unsorted,
        mappings=SEARCH_INDEX_MAPPINGS,
        aliases={es_alias: {"is_write_index": True}},
    )
    rng = random.Random(11)
    events = [make_event(rng) for _ in range(500)]
    # Several published in the same second, so video_id decides their order.
    events += [make_event(rng, published_at=events[0].published_at) for _ in range(5)]
    await ensure_mongo_indexes(mongo_db)
    await VideoWriter(mongo_db, es, es_alias).write_batch(events)
    await es.indices.refresh(index=es_alias)
    before = await _newest_first(es, es_alias)

    names = QueueNames(f"{es_alias}.videos", f"{es_alias}.videos.index")
    upgrade = CatalogueUpgrade(shared_stack_settings(stack, names, mongo_db.name, es_alias), mongo_db, es)
    try:
        await upgrade.run()  # an upgraded indexer's start
    finally:
        await upgrade.close()

    current = versioned_index_name(es_alias)
    assert SEARCH_INDEX_VERSION == 3
    assert list((await es.indices.get_alias(name=es_alias)).body) == [current]
    index_settings = (await es.indices.get_settings(index=current)).body[current]["settings"]["index"]
    assert index_settings["sort"] == {"field": ["published_at", "video_id"], "order": ["desc", "desc"]}
    assert await _newest_first(es, es_alias) == before
    assert len(before) == len(events)


async def _newest_first(es: AsyncElasticsearch, alias: str) -> list[str]:
    response = await es.search(index=alias, sort=sort_clauses("-published_at"), size=1000, source=False)
    return [hit["_id"] for hit in response["hits"]["hits"]]
