"""The whole pipeline as `make run` starts it: emulator -> fetcher -> RabbitMQ -> indexer -> stores -> API.

Runs deploy/run.sh (demo mode: no YOUTUBE_API_KEYS) on private ports, queue, database and index
names, so it neither disturbs nor depends on a `make run` of the same machine.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.common.settings import PROJECT_ROOT, StackSettings
from services.common.timefmt import format_rfc3339, utc_now
from services.common.topology import QueueNames
from tests.conftest import free_port
from tests.waiting import wait_until

# A raw title as its uploader typed it; search.list sends it HTML-escaped, and it must come back
# out of the API exactly as typed (unescaped once: the literal "&amp;" survives).
TRICKY_TITLE = 'Rock & Roll &amp; "cricket" <b>bold</b> it\'s'


@dataclass
class RunningDemo:
    api: str
    emulator: str
    process: asyncio.subprocess.Process
    log: Path


@pytest.fixture
async def demo(
    stack: StackSettings,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es_alias: str,
    tmp_path: Path,
) -> AsyncIterator[RunningDemo]:
    ports = {name: free_port() for name in ("API_PORT", "FETCHER_PORT", "INDEXER_PORT", "EMULATOR_PORT")}
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("YOUTUBE_", "EMULATOR_"))},
        **{name: str(port) for name, port in ports.items()},
        "AMQP_URL": stack.amqp_url,
        "AMQP_EXCHANGE": queue_names.exchange,
        "AMQP_QUEUE": queue_names.queue,
        "MONGODB_URL": stack.mongodb_url,
        "MONGODB_DATABASE": mongo_db.name,
        "ELASTICSEARCH_URL": stack.elasticsearch_url,
        "ELASTICSEARCH_INDEX": es_alias,
        "SEARCH_QUERIES": "cricket",
        "POLL_INTERVAL_SECONDS": "1",
        "LOG_LEVEL": "INFO",
        "EMULATOR_SEED": "20261124",
        "EMULATOR_VIDEOS_PER_MINUTE": "60",
        "EMULATOR_BACKFILL_SECONDS": "300",
        # Within one search walk (~500-result cap) and without late arrivals: window splitting and late
        # sweeps are the fetcher's own tests.
        "EMULATOR_LATE_FRACTION": "0",
    }
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            "bash",
            "deploy/run.sh",
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    running = RunningDemo(
        api=f"http://127.0.0.1:{ports['API_PORT']}",
        emulator=f"http://127.0.0.1:{ports['EMULATOR_PORT']}",
        process=process,
        log=log,
    )
    try:
        yield running
    finally:
        # Ctrl-C equivalent: honcho passes it on and every service shuts down gracefully.
        os.killpg(process.pid, signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), timeout=45)
        except TimeoutError:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail(f"services did not stop on Ctrl-C; log: {log.read_text()[-3000:]}")


async def _get_json(session: aiohttp.ClientSession, url: str, **params: str) -> Any:
    async with session.get(url, params=params) as response:
        response.raise_for_status()
        return await response.json()


async def _walk(session: aiohttp.ClientSession, api: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {"limit": "100"} | ({"cursor": cursor} if cursor else {})
        body = await _get_json(session, f"{api}/api/v1/videos", **params)
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


async def _answers(session: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with session.get(url) as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


async def test_videos_flow_from_the_emulator_to_the_api_newest_first_unescaped_once(demo: RunningDemo) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        for url in (f"{demo.emulator}/healthz", f"{demo.api}/healthz"):
            await wait_until(partial(_answers, session, url), within=60, what=f"{url} (log: {demo.log})")

        async with session.post(
            f"{demo.emulator}/admin/videos",
            json={
                "query": "cricket",
                "title": TRICKY_TITLE,
                "description": "raw & real",
                "publishedAt": format_rfc3339(utc_now()),
            },
        ) as response:
            assert response.status in (200, 201), await response.text()
            injected = (await response.json())["videoId"]

        # Growth: the API lists a set that grows while the demo runs (within 30 s of start).
        count = partial(_count, session, demo.api)
        await wait_until(partial(_grows_from, count, 0), within=30, what="first videos in the API")
        before = await count()
        await wait_until(partial(_grows_from, count, before), within=30, what="the listed set to grow")

        # Every video the emulator made visible so far reaches the API, exactly once.
        truth = await _get_json(session, f"{demo.emulator}/admin/visible", query="cricket")
        expected = {v["videoId"]: v for v in truth["videos"]}
        assert injected in expected

        async def all_arrived() -> bool:
            return expected.keys() <= {v["video_id"] for v in await _walk(session, demo.api)}

        await wait_until(all_arrived, within=60, what=f"all {len(expected)} emulator videos in the API")
        items = await _walk(session, demo.api)
        truth_after = await _get_json(session, f"{demo.emulator}/admin/visible", query="cricket")

    ids = [v["video_id"] for v in items]
    assert len(ids) == len(set(ids)), "a video was listed twice"
    assert set(ids) <= {v["videoId"] for v in truth_after["videos"]}, "the API lists a video YouTube never showed"
    keys = [(v["published_at"], v["video_id"]) for v in items]
    assert keys == sorted(keys, reverse=True), "not newest first"
    by_id = {v["video_id"]: v for v in items}
    assert by_id[injected]["title"] == TRICKY_TITLE
    assert by_id[injected]["description"] == "raw & real"
    for vid, video in expected.items():
        assert by_id[vid]["title"] == video["title"]


async def _count(session: aiohttp.ClientSession, api: str) -> int:
    return len(await _walk(session, api))


async def _grows_from(count: Callable[[], Awaitable[int]], baseline: int) -> bool:
    try:
        return int(await count()) > baseline
    except aiohttp.ClientError:
        return False
