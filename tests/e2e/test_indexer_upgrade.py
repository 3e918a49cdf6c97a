"""The upgrade an operator does: indexers of the new version started together on a version 1 catalogue with a backlog.

They upgrade the search index before consuming (one of them reindexes, the other waits), then store
the version 2 events waiting in the queue; nothing is rejected or lost, reads never fail, and every
video in both stores has found_by.
"""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import aio_pika
from elasticsearch import AsyncElasticsearch
from pymongo.asynchronous.database import AsyncDatabase

from services.common.catalogue import SEARCH_INDEX_VERSION, VIDEOS_COLLECTION, versioned_index_name
from services.common.events import FoundBy
from services.common.settings import StackSettings
from services.common.topology import QueueNames
from tests.factories import make_event
from tests.integration.indexer_support import (
    IndexerProcess,
    publish,
    ready_counts,
    shared_stack_settings,
    wait_stored,
)
from tests.integration.indexer_upgrade_support import Reader, assert_every_video_has_found_by, build_version_1_catalogue
from tests.waiting import wait_until

SEEDED = 10_000
CHANNEL = "UCabcdefghijklmnopqrstuv"


async def test_two_new_indexers_upgrade_a_version_1_catalogue_and_store_the_backlog(
    stack: StackSettings,
    amqp: aio_pika.abc.AbstractRobustConnection,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    es_alias: str,
    tmp_path: Path,
) -> None:
    seeded = await build_version_1_catalogue(mongo_db, es, es_alias, SEEDED)
    rng = random.Random(15)
    # The backlog, from fetchers already on version 2: new videos by search and by channel, and
    # videos of the old catalogue found again through a channel.
    new = [make_event(rng, query="golf") for _ in range(500)]
    new += [make_event(rng, found_by=FoundBy.channel(CHANNEL)) for _ in range(500)]
    refound_ids = [doc["video_id"] for doc in rng.sample(seeded, 300)]
    refound = [
        make_event(rng, vid=vid, found_by=FoundBy.channel(CHANNEL)).model_copy(update={"title": "Found again"})
        for vid in refound_ids
    ]
    await publish(amqp, queue_names, [e.model_dump_json().encode() for e in new + refound])

    settings = shared_stack_settings(
        stack, queue_names, mongo_db.name, es_alias, reindex_batch_size=2000, reindex_old_index_grace_seconds=1
    )
    indexers = [IndexerProcess(settings, tmp_path, f"indexer{n}") for n in (1, 2)]
    reader = Reader(es, es_alias)
    reading = asyncio.create_task(reader.run())
    try:
        await asyncio.gather(*(indexer.start() for indexer in indexers))
        for indexer in indexers:
            await indexer.wait_ready(within=240)
        await wait_stored(mongo_db, es, es_alias, SEEDED + len(new))

        async def all_stored() -> bool:
            stored = [await i.metric("tubewatch_indexer_messages_total", outcome="stored") for i in indexers]
            return sum(stored) >= len(new) + len(refound)

        await wait_until(all_stored, within=120, what="every message stored")
        dead = [await i.metric("tubewatch_indexer_messages_total", outcome="dead_lettered") for i in indexers]
        retried = [await i.metric("tubewatch_indexer_messages_total", outcome="retried") for i in indexers]

        async def old_index_deleted() -> bool:
            return not await es.indices.exists(index=versioned_index_name(es_alias, 1))

        await wait_until(old_index_deleted, within=60, what="the version 1 index deleted after the grace")
    finally:
        reader.stop()
        await reading
        for indexer in indexers:
            await indexer.stop()
    logs = "\n".join(indexer.log_tail(200_000) for indexer in indexers)

    assert reader.failures == []
    assert min(reader.counts) >= SEEDED
    # One upgrade, by one of them: the alias on the current version and no second reindex.
    assert list((await es.indices.get_alias(name=es_alias)).body) == [versioned_index_name(es_alias)]
    assert not await es.indices.exists(index=versioned_index_name(es_alias, SEARCH_INDEX_VERSION + 1))
    assert logs.count("upgrading the search index") == 1, logs[-3000:]
    assert "waiting for another indexer to upgrade the search index" in logs
    # Nothing rejected, nothing left.
    assert await ready_counts(amqp, queue_names) == (0, 0)
    assert sum(dead) == sum(retried) == 0
    await assert_every_video_has_found_by(mongo_db, es, es_alias, SEEDED + len(new))
    # A video of the old catalogue found again through a channel has its search entries and the channel's.
    for vid in refound_ids[:20]:
        doc = await mongo_db[VIDEOS_COLLECTION].find_one({"video_id": vid})
        assert doc is not None
        assert FoundBy.channel(CHANNEL).as_document() in doc["found_by"]
        searched = set(doc["queries"]) - set(doc.get("text_matched_queries", []))  # text matches are no find
        assert {e["query"] for e in doc["found_by"] if e["source"] == "search"} == searched
        source = (await es.get(index=es_alias, id=vid))["_source"]
        assert sorted(source["found_by"], key=json.dumps) == sorted(doc["found_by"], key=json.dumps)
