"""`python -m services.api` with API_WORKERS=2: one port, a shared cursor secret, summed metrics, clean stop."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import stat
import sys
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest
from elasticsearch import AsyncElasticsearch
from prometheus_client.parser import text_string_to_metric_families
from pymongo.asynchronous.database import AsyncDatabase

from services.common.settings import PROJECT_ROOT, StackSettings
from tests.conftest import free_port
from tests.integration.api_support import newest_first, prepare_stores, spread_events, write
from tests.waiting import wait_until


async def _list_requests(session: aiohttp.ClientSession, url: str) -> float:
    async with session.get(f"{url}/metrics") as response:
        text = await response.text()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "tubewatch_api_requests_total" and sample.labels["route"] == "/api/v1/videos"
    )


async def test_workers_share_the_port_the_cursor_secret_and_the_metrics(
    stack: StackSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    es_alias: str,
    tmp_path: Path,
) -> None:
    events = spread_events(random.Random(4), 300)
    await write(await prepare_stores(mongo_db, es, es_alias), es, es_alias, events)
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("CURSOR_SECRET", "PROMETHEUS_MULTIPROC_DIR")},
        "API_PORT": str(port),
        "API_WORKERS": "2",
        "STATE_DIR": str(tmp_path / "state"),
        "MONGODB_URL": stack.mongodb_url,
        "MONGODB_DATABASE": mongo_db.name,
        "ELASTICSEARCH_URL": stack.elasticsearch_url,
        "ELASTICSEARCH_INDEX": es_alias,
    }
    log = tmp_path / "api.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.api",
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    # A new connection per request: the kernel spreads them over both workers.
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
    try:

        async def ready() -> bool:
            try:
                async with session.get(f"{url}/readyz") as response:
                    return response.status == 200
            except aiohttp.ClientError:
                return False

        await wait_until(ready, within=60, what=f"the API workers (log: {log})")
        supervisor = psutil.Process(process.pid)
        # spawn also starts multiprocessing's resource tracker; the workers run spawn_main.
        workers = [c for c in supervisor.children() if "spawn_main" in " ".join(c.cmdline())]
        assert len(workers) == 2

        ids: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            params = {"limit": "10"} | ({"cursor": cursor} if cursor else {})
            async with session.get(f"{url}/api/v1/videos", params=params) as response:
                body = await response.json()
                assert response.status == 200, body  # a cursor signed by one worker is good on the other
            pages += 1
            ids += [item["video_id"] for item in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert ids == newest_first(events)

        secret = tmp_path / "state" / "cursor_secret"
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        # Whichever worker answers the scrape, it reports the requests of both.
        assert await _list_requests(session, url) == pages
    finally:
        await session.close()
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), timeout=30)
        except TimeoutError:
            process.kill()
            pytest.fail(f"the API did not stop on SIGINT; log: {log.read_text()[-2000:]}")
    assert all(not w.is_running() or w.status() == psutil.STATUS_ZOMBIE for w in workers)
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
