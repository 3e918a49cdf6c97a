"""``python -m services.indexer`` as real processes: exactly once, competing consumers, SIGKILL, SIGTERM."""

from __future__ import annotations

import random
import signal
from datetime import timedelta
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from elasticsearch import AsyncElasticsearch
from elasticsearch.helpers import async_scan
from pymongo.asynchronous.database import AsyncDatabase

from services.common.catalogue import VIDEOS_COLLECTION
from services.common.events import FoundBy, VideoEvent
from services.common.settings import StackSettings
from services.common.topology import QueueNames
from services.indexer.settings import Settings
from tests.factories import make_event
from tests.integration.indexer_support import (
    IndexerProcess,
    bodies,
    publish,
    ready_counts,
    shared_stack_settings,
    stored_counts,
    wait_stored,
)
from tests.waiting import wait_until


@pytest.fixture
def settings(
    stack: StackSettings, queue_names: QueueNames, mongo_db: AsyncDatabase[dict[str, Any]], es_alias: str
) -> Settings:
    return shared_stack_settings(stack, queue_names, mongo_db.name, es_alias, index_queue_depth_interval_seconds=0.5)


# Older snapshots were found by another query (query and found_by say the same, as in a real event).
OLDER_QUERY = {"query": "older query", "found_by": FoundBy.search("older query")}


def _events(count: int, seed: int) -> list[VideoEvent]:
    rng = random.Random(seed)
    return [make_event(rng) for _ in range(count)]


async def test_ten_thousand_events_with_duplicates_and_older_snapshots_are_stored_exactly_once_by_two_indexers(
    settings: Settings,
    amqp: aio_pika.abc.AbstractRobustConnection,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    es_alias: str,
    tmp_path: Path,
) -> None:
    rng = random.Random(2026)
    newest = [e.model_copy(update={"title": f"Fresh {i}"}) for i, e in enumerate(_events(8_500, seed=1))]
    duplicates = rng.sample(newest, 1_000)
    older = [
        e.model_copy(update={"title": "Stale", "fetched_at": e.fetched_at - timedelta(hours=1)} | OLDER_QUERY)
        for e in rng.sample(newest, 500)
    ]
    stream = newest + duplicates + older
    rng.shuffle(stream)  # older snapshots arrive before and after the newer ones
    assert len(stream) == 10_000

    indexers = [IndexerProcess(settings, tmp_path, f"indexer{n}") for n in (1, 2)]
    try:
        for indexer in indexers:
            await indexer.start()
        for indexer in indexers:
            await indexer.wait_ready()
        await publish(amqp, queue_names, bodies(stream))
        await wait_stored(mongo_db, es, es_alias, len(newest))

        async def all_settled() -> bool:
            stored = [await i.metric("tubewatch_indexer_messages_total", outcome="stored") for i in indexers]
            return sum(stored) >= len(stream)

        await wait_until(all_settled, within=60, what="every message settled")
        stored = [await i.metric("tubewatch_indexer_messages_total", outcome="stored") for i in indexers]
        # Competing consumers: both took a share, and the shares add up to every message exactly once.
        assert all(share > 0 for share in stored), stored
        assert sum(stored) == len(stream)
        for indexer in indexers:
            assert await indexer.metric("tubewatch_indexer_messages_total", outcome="dead_lettered") == 0
            assert await indexer.metric("tubewatch_indexer_batch_seconds_count") > 0
            assert await indexer.metric("tubewatch_indexer_ready") == 1

        async def lag_is_zero() -> bool:
            depth = await indexers[0].metric("tubewatch_indexer_queue_depth", queue=queue_names.queue)
            return depth == 0 and "tubewatch_indexer_queue_depth" in (await indexers[0].get("/metrics"))[1]

        await wait_until(lag_is_zero, within=30, what="the lag metric to show an empty queue")
    finally:
        for indexer in indexers:
            await indexer.stop()

    assert await stored_counts(mongo_db, es, es_alias) == (len(newest), len(newest))
    assert await ready_counts(amqp, queue_names) == (0, 0)
    expected_queries = {e.video_id: {e.query} for e in newest}
    for e in older:
        expected_queries[e.video_id].add("older query")
    titles = {e.video_id: e.title for e in newest}
    mongo_docs = {doc["video_id"]: doc async for doc in mongo_db[VIDEOS_COLLECTION].find({}, {"_id": 0})}
    assert {vid: doc["title"] for vid, doc in mongo_docs.items()} == titles
    assert {vid: set(doc["queries"]) for vid, doc in mongo_docs.items()} == expected_queries
    es_docs = {hit["_id"]: hit async for hit in async_scan(es, index=es_alias, version=True, size=2000)}
    assert {vid: hit["_source"]["title"] for vid, hit in es_docs.items()} == titles
    # Each index copy is the latest MongoDB revision of its video.
    assert {vid: hit["_version"] for vid, hit in es_docs.items()} == {vid: d["rev"] for vid, d in mongo_docs.items()}


async def test_sigkill_in_the_middle_of_fifty_thousand_events_loses_nothing(
    settings: Settings,
    amqp: aio_pika.abc.AbstractRobustConnection,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    es_alias: str,
    tmp_path: Path,
) -> None:
    events = _events(50_000, seed=3)
    await publish(amqp, queue_names, bodies(events))
    first = IndexerProcess(settings, tmp_path, "killed")
    await first.start()
    try:

        async def well_under_way() -> bool:
            return await mongo_db[VIDEOS_COLLECTION].estimated_document_count() >= 10_000

        await wait_until(well_under_way, within=120, what=f"10,000 videos stored (log: {first.log})")
        first.signal(signal.SIGKILL)
        assert await first.wait_exit() == -signal.SIGKILL
    finally:
        await first.stop()
    at_kill = await mongo_db[VIDEOS_COLLECTION].count_documents({})
    assert at_kill < len(events), "the indexer finished before it was killed: nothing was tested"

    second = IndexerProcess(settings, tmp_path, "restarted")
    await second.start()
    try:
        await wait_stored(mongo_db, es, es_alias, len(events), within=240)
    finally:
        await second.stop()
    assert await stored_counts(mongo_db, es, es_alias) == (len(events), len(events))
    assert await ready_counts(amqp, queue_names) == (0, 0)
    stored_ids = {doc["video_id"] async for doc in mongo_db[VIDEOS_COLLECTION].find({}, {"video_id": 1})}
    assert stored_ids == {e.video_id for e in events}


async def test_sigterm_stores_and_acks_the_batches_in_hand_then_exits(
    settings: Settings,
    amqp: aio_pika.abc.AbstractRobustConnection,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    es_alias: str,
    tmp_path: Path,
) -> None:
    events = _events(20_000, seed=4)
    await publish(amqp, queue_names, bodies(events))
    indexer = IndexerProcess(settings, tmp_path, "terminated")
    await indexer.start()
    try:

        async def under_way() -> bool:
            return await mongo_db[VIDEOS_COLLECTION].estimated_document_count() >= 2_000

        await wait_until(under_way, within=120, what=f"2,000 videos stored (log: {indexer.log})")
        indexer.signal(signal.SIGTERM)
        assert await indexer.wait_exit(within=60) == 0, indexer.log_tail()
    finally:
        await indexer.stop()
    mongo_count, es_count = await stored_counts(mongo_db, es, es_alias)
    waiting, dead = await ready_counts(amqp, queue_names)
    assert mongo_count < len(events), "the indexer finished before SIGTERM: nothing was tested"
    # Every stored video was acknowledged (none comes back), every other one is still queued.
    assert mongo_count + waiting == len(events)
    assert es_count == mongo_count
    assert dead == 0
    assert "stopped consuming" in indexer.log_tail(20_000)
