"""The walk guarantee: 5,000 videos walked page by page while 1,000 more are indexed during the walk.

The newcomers are both newer than everything and late arrivals with older publish dates, landing on
pages not read yet. The walk must return exactly the 5,000 that existed when it started, each once,
in order — for both date orders, for relevance (point-in-time) and in degraded mode (MongoDB).
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from elasticsearch import AsyncElasticsearch
from pymongo.asynchronous.database import AsyncDatabase

from services.api.app import create_app
from services.common.events import VideoEvent
from services.common.settings import StackSettings
from services.indexer.store import VideoWriter
from tests.factories import BASE_TIME, make_event
from tests.integration.api_support import api_settings, newest_first, oldest_first, prepare_stores, walk, write

EXISTING = 5000
ARRIVING = 1000
PAGE = 100


def _titled(rng: random.Random, published_at: Any) -> VideoEvent:
    # Titles of varying length give relevance walks many distinct scores (and some ties).
    filler = " ".join(rng.choice(["spin", "pace", "toss", "catch", "drive", "hook"]) for _ in range(rng.randrange(6)))
    return make_event(rng, published_at=published_at, title=f"Cricket {filler}".strip())


def _existing(rng: random.Random) -> list[VideoEvent]:
    # Spread over ~3.5 days, 60 s apart, with some shared publish seconds.
    return [_titled(rng, BASE_TIME - timedelta(seconds=60 * (i - i % 4 // 3))) for i in range(EXISTING)]


def _arrivals(rng: random.Random, count: int) -> list[VideoEvent]:
    """Half newer than anything, half late arrivals published somewhere inside the walked range."""
    newer = [_titled(rng, BASE_TIME + timedelta(seconds=rng.randrange(1, 86_400))) for _ in range(count // 2)]
    late = [
        _titled(rng, BASE_TIME - timedelta(seconds=rng.randrange(1, 60 * EXISTING))) for _ in range(count - count // 2)
    ]
    return newer + late


class Arrivals:
    """Indexes ARRIVING new videos a few at a time between the pages of a walk (refreshing, so they are visible)."""

    def __init__(self, writer: VideoWriter, es: AsyncElasticsearch, alias: str, rng: random.Random) -> None:
        self._writer, self._es, self._alias = writer, es, alias
        self._pending = _arrivals(rng, ARRIVING)
        self.indexed = 0

    async def __call__(self, page_number: int) -> None:
        batch_size = -(-ARRIVING // (EXISTING // PAGE - 2))
        batch, self._pending = self._pending[:batch_size], self._pending[batch_size:]
        if batch:
            await write(self._writer, self._es, self._alias, batch)
            self.indexed += len(batch)


@pytest.fixture
async def seeded(
    mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> tuple[VideoWriter, list[VideoEvent]]:
    writer = await prepare_stores(mongo_db, es, es_alias)
    events = _existing(random.Random(5))
    await write(writer, es, es_alias, events)
    return writer, events


async def _client(settings: Any) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client


@pytest.fixture
async def api(
    stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es_alias: str
) -> AsyncIterator[TestClient[Any, Any]]:
    settings = api_settings(
        mongodb_url=stack.mongodb_url,
        mongodb_database=mongo_db.name,
        elasticsearch_url=stack.elasticsearch_url,
        elasticsearch_index=es_alias,
        # Without the 1-second micro-cache (tested on its own): on a fast machine a whole walk fits
        # in a second, and the next walk's first page would be the cached one, with the old snapshot.
        api_page_cache_seconds=0,
    )
    async for client in _client(settings):
        yield client


@pytest.fixture
async def degraded_api(
    stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es_alias: str
) -> AsyncIterator[TestClient[Any, Any]]:
    """The API with its Elasticsearch alias missing: everything comes from MongoDB."""
    settings = api_settings(
        mongodb_url=stack.mongodb_url,
        mongodb_database=mongo_db.name,
        elasticsearch_url=stack.elasticsearch_url,
        elasticsearch_index=f"{es_alias}-absent",
    )
    async for client in _client(settings):
        yield client


@pytest.mark.parametrize(("sort", "order"), [("-published_at", newest_first), ("published_at", oldest_first)])
async def test_a_date_walk_during_ingestion_returns_exactly_the_videos_at_its_start(
    api: TestClient[Any, Any],
    seeded: tuple[VideoWriter, list[VideoEvent]],
    es: AsyncElasticsearch,
    es_alias: str,
    sort: str,
    order: Any,
) -> None:
    writer, events = seeded
    arrivals = Arrivals(writer, es, es_alias, random.Random(sort))
    ids, served = await walk(api, {"limit": str(PAGE), "sort": sort}, between_pages=arrivals)
    assert arrivals.indexed == ARRIVING
    assert served == {"elasticsearch"}
    assert len(ids) == len(set(ids)) == EXISTING
    assert ids == order(events)
    # A new walk sees the newcomers.
    fresh, _ = await walk(api, {"limit": str(PAGE), "sort": sort})
    assert len(fresh) == EXISTING + ARRIVING


async def test_a_relevance_walk_during_ingestion_returns_exactly_the_videos_at_its_start(
    api: TestClient[Any, Any], seeded: tuple[VideoWriter, list[VideoEvent]], es: AsyncElasticsearch, es_alias: str
) -> None:
    writer, events = seeded
    arrivals = Arrivals(writer, es, es_alias, random.Random(7))
    ids, served = await walk(api, {"limit": str(PAGE), "q": "cricket", "sort": "relevance"}, between_pages=arrivals)
    assert arrivals.indexed == ARRIVING
    assert served == {"elasticsearch"}
    assert len(ids) == len(set(ids)) == EXISTING
    assert set(ids) == {e.video_id for e in events}
    # Shorter titles score higher for "cricket": the walk is in relevance order, not date order.
    by_id = {e.video_id: e for e in events}
    lengths = [len(by_id[i].title.split()) for i in ids]
    assert lengths == sorted(lengths)


async def test_a_degraded_walk_during_ingestion_returns_exactly_the_videos_at_its_start(
    degraded_api: TestClient[Any, Any],
    seeded: tuple[VideoWriter, list[VideoEvent]],
    es: AsyncElasticsearch,
    es_alias: str,
) -> None:
    writer, events = seeded
    arrivals = Arrivals(writer, es, es_alias, random.Random(9))
    ids, served = await walk(degraded_api, {"limit": str(PAGE)}, between_pages=arrivals)
    assert arrivals.indexed == ARRIVING
    assert served == {"mongodb"}
    assert len(ids) == len(set(ids)) == EXISTING
    assert ids == newest_first(events)
