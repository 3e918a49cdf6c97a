"""GET /api/v1/videos over a real Elasticsearch index filled by the indexer's writer."""

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
from services.api.settings import Settings
from services.common.catalogue import ensure_mongo_indexes, ensure_search_index
from services.common.events import VideoEvent
from services.common.settings import StackSettings
from services.indexer.store import VideoWriter
from tests.factories import BASE_TIME, make_event


@pytest.fixture
async def seeded(mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str) -> list[VideoEvent]:
    rng = random.Random(11)
    # 250 videos; a few share a publish second so the video_id tie-breaker matters.
    events = [make_event(rng, published_at=BASE_TIME - timedelta(seconds=i // 3)) for i in range(250)]
    await ensure_mongo_indexes(mongo_db)
    await ensure_search_index(es, es_alias)
    await VideoWriter(mongo_db, es, es_alias).write_batch(events)
    await es.indices.refresh(index=es_alias)
    return events


@pytest.fixture
async def api(
    stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es_alias: str
) -> AsyncIterator[TestClient[Any, Any]]:
    settings = Settings(
        elasticsearch_url=stack.elasticsearch_url,
        elasticsearch_index=es_alias,
        mongodb_url=stack.mongodb_url,
        mongodb_database=mongo_db.name,
    )
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client


def _newest_first(events: list[VideoEvent]) -> list[str]:
    return [e.video_id for e in sorted(events, key=lambda e: (e.published_at, e.video_id), reverse=True)]


async def test_first_page_is_newest_first_in_the_public_shape(
    api: TestClient[Any, Any], seeded: list[VideoEvent]
) -> None:
    response = await api.get("/api/v1/videos", params={"limit": "5"})
    assert response.status == 200
    body = await response.json()
    assert [v["video_id"] for v in body["items"]] == _newest_first(seeded)[:5]
    first = body["items"][0]
    assert set(first) == {
        "video_id",
        "title",
        "description",
        "published_at",
        "channel_id",
        "channel_title",
        "thumbnails",
        "url",
        "duration_seconds",
        "view_count",
    }
    assert first["published_at"].endswith("Z")
    assert first["url"] == f"https://www.youtube.com/watch?v={first['video_id']}"
    assert body["next_cursor"]


async def test_a_cursor_walk_returns_every_video_once_in_order(
    api: TestClient[Any, Any], seeded: list[VideoEvent]
) -> None:
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": "40"} | ({"cursor": cursor} if cursor else {})
        body = await (await api.get("/api/v1/videos", params=params)).json()
        seen += [v["video_id"] for v in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == _newest_first(seeded)


@pytest.mark.parametrize(
    ("params", "code", "parameter"),
    [
        ({"limit": "0"}, "invalid_parameter", "limit"),
        ({"limit": "101"}, "invalid_parameter", "limit"),
        ({"limit": "ten"}, "invalid_parameter", "limit"),
        ({"cursor": "tampered"}, "invalid_cursor", "cursor"),
        ({"colour": "red"}, "invalid_parameter", "colour"),
    ],
)
async def test_bad_input_gets_a_clear_json_error(
    api: TestClient[Any, Any], params: dict[str, str], code: str, parameter: str
) -> None:
    response = await api.get("/api/v1/videos", params=params)
    assert response.status == 400
    body = await response.json()
    assert body["error"]["code"] == code
    assert body["error"]["parameter"] == parameter
