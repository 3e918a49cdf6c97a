"""``reindex``: a new versioned index from MongoDB, an atomic alias swap, the old index deleted after a grace."""

from __future__ import annotations

import asyncio
import random
import sys
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch, NotFoundError
from elasticsearch.helpers import async_scan
from pymongo.asynchronous.database import AsyncDatabase

from services.common.catalogue import (
    SEARCH_INDEX_MAPPINGS,
    SEARCH_INDEX_VERSION,
    ensure_mongo_indexes,
    ensure_search_index,
    versioned_index_name,
)
from services.common.settings import PROJECT_ROOT, StackSettings
from services.common.topology import QueueNames
from services.indexer.reindex import reindex
from services.indexer.settings import Settings
from services.indexer.store import VideoWriter
from tests.factories import make_event
from tests.integration.indexer_support import indexer_settings, settings_env, stored_counts


def _settings(stack: StackSettings, db: AsyncDatabase[dict[str, Any]], alias: str, **extra: Any) -> Settings:
    return indexer_settings(
        amqp_url=stack.amqp_url,
        names=QueueNames(f"{alias}.videos", f"{alias}.videos.index"),
        mongodb_url=stack.mongodb_url,
        database=db.name,
        elasticsearch_url=stack.elasticsearch_url,
        alias=alias,
        **({"reindex_batch_size": 300, "reindex_old_index_grace_seconds": 0} | extra),
    )


def _next_index(alias: str) -> str:
    """The index a reindex of the current catalogue builds."""
    return versioned_index_name(alias, SEARCH_INDEX_VERSION + 1)


async def _seed(db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, alias: str, count: int) -> None:
    await ensure_mongo_indexes(db)
    await ensure_search_index(es, alias)
    writer = VideoWriter(db, es, alias)
    rng = random.Random(count)
    events = [make_event(rng) for _ in range(count)]
    for start in range(0, count, 500):
        assert await writer.write_batch(events[start : start + 500]) == [None] * len(events[start : start + 500])
    await writer.write_batch(events[:100])  # some videos at revision 2


async def _documents(es: AsyncElasticsearch, index: str) -> dict[str, tuple[int, dict[str, Any]]]:
    return {hit["_id"]: (hit["_version"], hit["_source"]) async for hit in async_scan(es, index=index, version=True)}


async def test_reindex_moves_the_alias_to_a_new_index_with_identical_documents_and_deletes_the_old_one(
    stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    await _seed(mongo_db, es, es_alias, 2_000)
    await es.indices.refresh(index=es_alias)
    before = await _documents(es, versioned_index_name(es_alias))

    report = await reindex(_settings(stack, mongo_db, es_alias), mongo_db, es, progress=False)

    assert report.new_index == _next_index(es_alias)
    assert report.old_indexes == [versioned_index_name(es_alias)]
    assert report.copied == 2_000
    assert report.rejected_count == 0
    assert list((await es.indices.get_alias(name=es_alias)).body) == [_next_index(es_alias)]
    assert not await es.indices.exists(index=versioned_index_name(es_alias))
    # Same sources (indexed_at included: the API's walks compare it) and same versions (= MongoDB rev).
    assert await _documents(es, _next_index(es_alias)) == before
    settings = (await es.indices.get_settings(index=_next_index(es_alias)))[_next_index(es_alias)]["settings"]["index"]
    assert "refresh_interval" not in settings  # back to the default after loading
    mapping = (await es.indices.get_mapping(index=_next_index(es_alias)))[_next_index(es_alias)]["mappings"]
    assert mapping["properties"].keys() == SEARCH_INDEX_MAPPINGS["properties"].keys()


async def test_the_old_index_outlives_the_swap_by_the_grace_so_open_point_in_time_searches_finish(
    stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    await _seed(mongo_db, es, es_alias, 500)
    await es.indices.refresh(index=es_alias)
    # A relevance walk in the API holds a point-in-time opened on the alias (so on the old index).
    pit = (await es.open_point_in_time(index=es_alias, keep_alive="1m"))["id"]
    swapped = asyncio.Event()
    settings = _settings(stack, mongo_db, es_alias, reindex_old_index_grace_seconds=10)
    task = asyncio.create_task(reindex(settings, mongo_db, es, progress=False, on_swapped=lambda _: swapped.set()))
    try:
        await asyncio.wait_for(swapped.wait(), timeout=120)
        assert list((await es.indices.get_alias(name=es_alias)).body) == [_next_index(es_alias)]
        # After the swap, the walk's next page still reads its point-in-time on the old index.
        page = await es.search(pit={"id": pit, "keep_alive": "1m"}, size=10, sort=["_shard_doc"])
        assert len(page["hits"]["hits"]) == 10
        assert await es.indices.exists(index=versioned_index_name(es_alias))
        await asyncio.wait_for(task, timeout=120)
    finally:
        await es.options(ignore_status=404).close_point_in_time(id=pit)  # freed with the old index
    assert not await es.indices.exists(index=versioned_index_name(es_alias))


async def test_the_reindex_command_rebuilds_a_lost_index_from_mongodb_with_a_progress_bar(
    stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str, tmp_path: Path
) -> None:
    await _seed(mongo_db, es, es_alias, 1_500)
    # Elasticsearch lost its data.
    await es.indices.delete(index=versioned_index_name(es_alias))
    with pytest.raises(NotFoundError):
        await es.count(index=es_alias)

    log = tmp_path / "reindex.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.indexer",
            "reindex",
            cwd=PROJECT_ROOT,
            env=settings_env(_settings(stack, mongo_db, es_alias)),
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert await asyncio.wait_for(process.wait(), timeout=180) == 0, log.read_text()
    output = log.read_text()
    # tqdm's bar: documents done of the total, elapsed<remaining (the ETA), and the rate.
    assert "1.50k/1.50k" in output, output
    assert "doc/s" in output, output
    assert "<" in output
    assert "reindex done" in output
    assert await stored_counts(mongo_db, es, es_alias) == (1_500, 1_500)
    assert list((await es.indices.get_alias(name=es_alias)).body) == [versioned_index_name(es_alias)]
