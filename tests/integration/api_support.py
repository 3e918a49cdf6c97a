"""Helpers of the API's integration tests: settings on per-test stores, seeding, cursor walks."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import string
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from elasticsearch import AsyncElasticsearch
from pymongo.asynchronous.database import AsyncDatabase

from services.api.settings import Settings
from services.common.catalogue import ensure_mongo_indexes, ensure_search_index
from services.common.events import VideoEvent
from services.common.settings import PROJECT_ROOT, StackSettings
from services.indexer.store import VideoWriter
from tests.conftest import free_port
from tests.factories import BASE_TIME, make_event
from tests.waiting import wait_until

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


@dataclass
class ServedApi:
    process: asyncio.subprocess.Process
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@asynccontextmanager
async def served_api(
    stack: StackSettings, database: str, alias: str, tmp_path: Path, **env: str
) -> AsyncIterator[ServedApi]:
    """``python -m services.api`` on a free port over this test's stores, ready; stopped with SIGINT
    after (a test failure if it does not stop within 30 s). ``env`` adds or overrides variables."""
    port = free_port()
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("API_", "CURSOR_SECRET", "PROMETHEUS_MULTIPROC"))},
        "API_PORT": str(port),
        "STATE_DIR": str(tmp_path / "state"),
        "MONGODB_URL": stack.mongodb_url,
        "MONGODB_DATABASE": database,
        "ELASTICSEARCH_URL": stack.elasticsearch_url,
        "ELASTICSEARCH_INDEX": alias,
        **env,
    }
    log = tmp_path / "api.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.api",
            cwd=PROJECT_ROOT,
            env=environ,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )
    served = ServedApi(process, port, log)
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:

            async def ready() -> bool:
                try:
                    async with session.get(f"{served.url}/readyz") as response:
                        return response.status == 200
                except aiohttp.ClientError:
                    return False

            await wait_until(ready, within=60, what=f"python -m services.api (log: {log})")
        yield served
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), timeout=30)
        except TimeoutError:
            process.kill()
            await process.wait()
            pytest.fail(f"the API did not stop on SIGINT; log: {log.read_text()[-2000:]}")
