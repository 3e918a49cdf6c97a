"""A query added through the admin API, through the whole pipeline: API -> MongoDB -> fetcher -> emulator ->
RabbitMQ -> indexer -> API listing, with no restart.

Runs deploy/run.sh in demo mode on private ports and names, with admin tokens. The query is added
while everything runs; the emulator's world makes a stream for it on first use.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.common.settings import PROJECT_ROOT, StackSettings
from services.common.topology import QueueNames
from tests.conftest import free_port
from tests.waiting import wait_until

SEED = 20261124
TOKEN = "e2e-sources-token-" + "c" * 32
# The test's environment minus what would configure the services behind its back.
OWN_PREFIXES = ("YOUTUBE_", "EMULATOR_", "FOLLOW_", "AUTO_", "ADMIN_", "SOURCES_", "POLL_")


@pytest.fixture
async def demo(
    stack: StackSettings,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es_alias: str,
    tmp_path: Path,
) -> AsyncIterator[tuple[str, str, Path]]:
    ports = {name: free_port() for name in ("API_PORT", "FETCHER_PORT", "INDEXER_PORT", "EMULATOR_PORT")}
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(OWN_PREFIXES)},
        **{name: str(port) for name, port in ports.items()},
        "AMQP_URL": stack.amqp_url,
        "AMQP_EXCHANGE": queue_names.exchange,
        "AMQP_QUEUE": queue_names.queue,
        "MONGODB_URL": stack.mongodb_url,
        "MONGODB_DATABASE": mongo_db.name,
        "ELASTICSEARCH_URL": stack.elasticsearch_url,
        "ELASTICSEARCH_INDEX": es_alias,
        "SEARCH_QUERIES": "cricket",
        "LOG_LEVEL": "INFO",
        "EMULATOR_SEED": str(SEED),
        "EMULATOR_VIDEOS_PER_MINUTE": "6",
        "EMULATOR_BACKFILL_SECONDS": "300",
        "AUTO_FOLLOW_CHANNELS": "0",
        # Minutes between searches of the seeded query: only the pick-up makes the new one come soon.
        "POLL_INTERVAL_SECONDS": "300",
        "ADMIN_TOKENS": f"e2e:{TOKEN}",
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
    try:
        yield f"http://127.0.0.1:{ports['API_PORT']}", f"http://127.0.0.1:{ports['EMULATOR_PORT']}", log
    finally:
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: every service shuts down gracefully
        try:
            await asyncio.wait_for(process.wait(), timeout=45)
        except TimeoutError:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail(f"services did not stop on Ctrl-C; log: {log.read_text()[-3000:]}")


async def _answers(session: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with session.get(url) as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


async def _found_by_query(session: aiohttp.ClientSession, api: str, query: str) -> list[dict[str, Any]]:
    async with session.get(f"{api}/api/v1/videos", params={"limit": "100"}) as response:
        if response.status != 200:
            return []
        items = (await response.json())["items"]
    return [item for item in items if {"source": "search", "query": query} in item.get("found_by", [])]


async def test_a_query_added_through_the_admin_api_reaches_the_listing_without_a_restart(
    demo: tuple[str, str, Path],
) -> None:
    api, emulator, log = demo
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        for url in (f"{emulator}/healthz", f"{api}/healthz"):
            await wait_until(partial(_answers, session, url), within=60, what=f"{url} (log: {log})")

        async def cricket_listed() -> bool:
            return bool(await _found_by_query(session, api, "cricket"))

        await wait_until(cricket_listed, within=90, what=f"the seeded query's videos listed (log: {log})")
        async with session.post(
            f"{api}/api/v1/admin/queries",
            json={"text": "world cup", "weight": 2},
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as response:
            assert response.status == 201, await response.text()
            stored = await response.json()

        async def world_cup_listed() -> bool:
            return bool(await _found_by_query(session, api, "world cup"))

        await wait_until(world_cup_listed, within=60, what=f"the added query's videos listed (log: {log})")
        videos = await _found_by_query(session, api, "world cup")

    assert stored["text"] == "world cup" and stored["weight"] == 2
    assert videos
    assert TOKEN not in log.read_text(), "the admin token is never logged"
