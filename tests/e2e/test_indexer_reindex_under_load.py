"""A reindex of 100,000 videos while clients hammer the API and new events keep arriving.

The indexer runs as a real process consuming the live stream, the reindex as the real command
(``python -m services.indexer reindex``); the API is the real app, in this process.
"""

from __future__ import annotations

import asyncio
import random
import sys
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from aiohttp.test_utils import TestClient, TestServer
from elasticsearch import AsyncElasticsearch
from pymongo.asynchronous.database import AsyncDatabase

from services.api.app import create_app
from services.api.settings import Settings as ApiSettings
from services.common.catalogue import (
    SEARCH_INDEX_VERSION,
    VIDEOS_COLLECTION,
    ensure_mongo_indexes,
    versioned_index_name,
)
from services.common.events import VideoEvent
from services.common.settings import PROJECT_ROOT, StackSettings
from services.common.topology import QueueNames
from services.indexer.mongo_documents import new_document
from services.indexer.reindex import reindex
from services.indexer.settings import Settings
from tests.factories import make_event
from tests.integration.indexer_support import (
    IndexerProcess,
    bodies,
    publish,
    ready_counts,
    settings_env,
    shared_stack_settings,
    stored_counts,
)
from tests.waiting import wait_until

SEEDED = 100_000


@pytest.fixture
def settings(
    stack: StackSettings, queue_names: QueueNames, mongo_db: AsyncDatabase[dict[str, Any]], es_alias: str
) -> Settings:
    return shared_stack_settings(stack, queue_names, mongo_db.name, es_alias, reindex_old_index_grace_seconds=1)


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[TestClient[Any, Any]]:
    api_settings = ApiSettings(
        mongodb_url=settings.mongodb_url,
        mongodb_database=settings.mongodb_database,
        elasticsearch_url=settings.elasticsearch_url,
        elasticsearch_index=settings.elasticsearch_index,
        amqp_url=settings.amqp_url,
        amqp_exchange=settings.amqp_exchange,
        amqp_queue=settings.amqp_queue,
        cursor_secret="reindex-under-load-" + "s" * 32,
        api_page_cache_seconds=0,  # every request reaches Elasticsearch
    )
    async with TestClient(TestServer(create_app(api_settings))) as client:
        yield client


def _next_index(alias: str) -> str:
    """The index a reindex of the current catalogue builds."""
    return versioned_index_name(alias, SEARCH_INDEX_VERSION + 1)


async def _seed(settings: Settings, db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch) -> list[VideoEvent]:
    """100,000 videos in MongoDB (inserted as the writer would), indexed by a first reindex."""
    await ensure_mongo_indexes(db)
    rng = random.Random(100)
    now = datetime.now(UTC)
    events = [make_event(rng, vid=f"{i:011d}") for i in range(SEEDED)]
    for start in range(0, SEEDED, 10_000):
        await db[VIDEOS_COLLECTION].insert_many([new_document(e, now) for e in events[start : start + 10_000]])
    await reindex(settings.model_copy(update={"reindex_old_index_grace_seconds": 0}), db, es, progress=False)
    return events


class Hammer:
    """Clients reading the API (listing, pages, search) and Elasticsearch, counting every failure."""

    def __init__(self, api: TestClient[Any, Any], es: AsyncElasticsearch, alias: str) -> None:
        self.api = api
        self.es = es
        self.alias = alias
        self.outcomes: Counter[str] = Counter()
        self.failures: list[str] = []
        self._stop = asyncio.Event()

    async def _api(self, params: dict[str, str]) -> dict[str, Any] | None:
        try:
            response = await self.api.get("/api/v1/videos", params=params)
            body = await response.json()
        except Exception as exc:
            self.failures.append(f"{params}: {type(exc).__name__}: {exc}")
            return None
        served_by = response.headers.get("X-Served-By", "?")
        self.outcomes[f"api {response.status} {served_by}"] += 1
        # A fallback to MongoDB would hide a broken alias: only Elasticsearch answers count.
        if response.status != 200 or served_by != "elasticsearch" or not body.get("items"):
            self.failures.append(f"{params}: {response.status} {served_by} {str(body)[:300]}")
            return None
        return dict(body)

    async def _client(self, number: int) -> None:
        while not self._stop.is_set():
            page = await self._api({"limit": "20"})
            if page and page["next_cursor"]:
                await self._api({"limit": "20", "cursor": page["next_cursor"]})
            await self._api({"limit": "20", "q": "cricket highl" if number % 2 else "highlights"})
            try:
                found = await self.es.search(
                    index=self.alias,
                    query={"multi_match": {"query": "cricket analy", "type": "bool_prefix", "fields": ["title"]}},
                    size=10,
                )
                self.outcomes["es search"] += 1
                if not found["hits"]["hits"]:
                    self.failures.append("direct search: no hits")
            except Exception as exc:
                self.failures.append(f"direct search: {type(exc).__name__}: {exc}")

    async def run(self) -> None:
        await asyncio.gather(*(self._client(n) for n in range(3)))

    def stop(self) -> None:
        self._stop.set()


@pytest.mark.timeout(900)
async def test_reindex_of_100k_videos_under_api_load_and_live_events_is_seamless(
    settings: Settings,
    api: TestClient[Any, Any],
    amqp: aio_pika.abc.AbstractRobustConnection,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    es_alias: str,
    tmp_path: Path,
) -> None:
    seeded = await _seed(settings, mongo_db, es)
    assert list((await es.indices.get_alias(name=es_alias)).body) == [versioned_index_name(es_alias)]
    indexer = IndexerProcess(settings, tmp_path)
    await indexer.start()
    hammer = Hammer(api, es, es_alias)
    hammering = asyncio.create_task(hammer.run())
    arrived: dict[str, VideoEvent] = {}  # newest event per video
    new_videos: set[str] = set()
    published = 0
    reindex_done = asyncio.Event()
    rng = random.Random(101)

    async def live_events() -> None:
        """New videos and newer snapshots of seeded ones, until the reindex has finished."""
        nonlocal published
        round_number = 0
        while not reindex_done.is_set():
            fresh = [make_event(rng, title=f"Arrived during the reindex {round_number}") for _ in range(40)]
            updates = [
                old.model_copy(
                    update={
                        "title": f"Updated during the reindex {round_number}",
                        "fetched_at": old.fetched_at + timedelta(minutes=round_number + 1),
                    }
                )
                for old in rng.sample(seeded, 40)
            ]
            await publish(amqp, queue_names, bodies(fresh + updates))
            published += len(fresh) + len(updates)
            new_videos.update(e.video_id for e in fresh)
            arrived.update({e.video_id: e for e in fresh + updates})
            round_number += 1
            await asyncio.sleep(0.25)

    try:
        await indexer.wait_ready()
        publishing = asyncio.create_task(live_events())
        log = tmp_path / "reindex.log"
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "services.indexer",
                "reindex",
                cwd=PROJECT_ROOT,
                env=settings_env(settings),
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )
            exit_code = await asyncio.wait_for(process.wait(), timeout=600)
        reindex_done.set()
        await publishing
        assert exit_code == 0, log.read_text()[-3000:]

        async def drained() -> bool:
            stored = await indexer.metric("tubewatch_indexer_messages_total", outcome="stored")
            return stored >= published

        await wait_until(drained, within=120, what="the live events stored")
    finally:
        hammer.stop()
        await hammering
        await indexer.stop()

    assert hammer.failures == [], hammer.failures[:10]
    assert sum(hammer.outcomes.values()) > 100, hammer.outcomes
    assert list((await es.indices.get_alias(name=es_alias)).body) == [_next_index(es_alias)]
    assert not await es.indices.exists(index=versioned_index_name(es_alias))
    # Every event that arrived during the reindex is in the new index, in its newest version.
    new_index = _next_index(es_alias)
    found = await es.mget(index=new_index, ids=sorted(arrived), source_includes=["title"])
    titles = {doc["_id"]: doc["_source"]["title"] for doc in found["docs"] if doc.get("found")}
    assert titles == {vid: e.title for vid, e in arrived.items()}
    mongo_count, es_count = await stored_counts(mongo_db, es, es_alias)
    assert mongo_count == es_count == SEEDED + len(new_videos)
    assert await ready_counts(amqp, queue_names) == (0, 0)
