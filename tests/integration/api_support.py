"""Helpers of the API's integration tests: settings on per-test stores, seeding, cursor walks."""

from __future__ import annotations

import random
import string
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from elasticsearch import AsyncElasticsearch
from pymongo.asynchronous.database import AsyncDatabase

from services.api.settings import Settings
from services.common.catalogue import ensure_mongo_indexes, ensure_search_index
from services.common.events import VideoEvent
from services.indexer.store import VideoWriter
from tests.factories import BASE_TIME, make_event

TEST_CURSOR_SECRET = "test-cursor-secret-" + "x" * 32

Client = TestClient[Any, Any]


def api_settings(
    *,
    mongodb_url: str,
    mongodb_database: str,
    elasticsearch_url: str,
    elasticsearch_index: str,
    **overrides: Any,
) -> Settings:
    return Settings(
        mongodb_url=mongodb_url,
        mongodb_database=mongodb_database,
        elasticsearch_url=elasticsearch_url,
        elasticsearch_index=elasticsearch_index,
        cursor_secret=TEST_CURSOR_SECRET,
        **overrides,
    )


async def prepare_stores(db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, alias: str) -> VideoWriter:
    await ensure_mongo_indexes(db)
    await ensure_search_index(es, alias)
    return VideoWriter(db, es, alias)


async def write(writer: VideoWriter, es: AsyncElasticsearch, alias: str, events: list[VideoEvent]) -> None:
    """Index through the indexer's own writer, then make the batch searchable at once."""
    for start in range(0, len(events), 1000):
        rejected = [reason for reason in await writer.write_batch(events[start : start + 1000]) if reason]
        assert not rejected, rejected
    await es.indices.refresh(index=alias)


def spread_events(
    rng: random.Random, count: int, *, start: datetime = BASE_TIME, step_seconds: int = 60, **kwargs: Any
) -> list[VideoEvent]:
    """Videos published ``step_seconds`` apart going back from ``start``; every third pair shares a second."""
    return [
        make_event(rng, published_at=start - timedelta(seconds=step_seconds * (i - i % 3 // 2)), **kwargs)
        for i in range(count)
    ]


def newest_first(events: list[VideoEvent]) -> list[str]:
    return [e.video_id for e in sorted(events, key=lambda e: (e.published_at, e.video_id), reverse=True)]


def oldest_first(events: list[VideoEvent]) -> list[str]:
    return list(reversed(newest_first(events)))


def word(rng: random.Random, length: int = 8) -> str:
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(length))


async def get_page(client: Client, params: dict[str, Any]) -> tuple[dict[str, Any], str]:
    response = await client.get("/api/v1/videos", params=params)
    body = await response.json()
    assert response.status == 200, body
    return body, response.headers["X-Served-By"]


async def walk(
    client: Client,
    params: dict[str, Any],
    *,
    between_pages: Callable[[int], Awaitable[None]] | None = None,
) -> tuple[list[str], set[str]]:
    """Follow next_cursor to the end; returns the ids in order and who served the pages."""
    ids: list[str] = []
    served: set[str] = set()
    cursor: str | None = None
    page_number = 0
    while True:
        body, served_by = await get_page(client, params | ({"cursor": cursor} if cursor else {}))
        served.add(served_by)
        ids += [item["video_id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids, served
        page_number += 1
        if between_pages is not None:
            await between_pages(page_number)
