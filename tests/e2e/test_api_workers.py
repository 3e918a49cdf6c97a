"""`python -m services.api` with API_WORKERS=2: one port, a shared cursor secret, summed metrics, clean stop."""

from __future__ import annotations

import random
import stat
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from elasticsearch import AsyncElasticsearch
from prometheus_client.parser import text_string_to_metric_families
from pymongo.asynchronous.database import AsyncDatabase

from services.common.settings import StackSettings
from tests.integration.api_support import newest_first, prepare_stores, served_api, spread_events, write


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
    async with (
        served_api(stack, mongo_db.name, es_alias, tmp_path, API_WORKERS="2") as api,
        # A new connection per request: the kernel spreads them over both workers.
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session,
    ):
        supervisor = psutil.Process(api.process.pid)
        # spawn also starts multiprocessing's resource tracker; the workers run spawn_main.
        workers = [c for c in supervisor.children() if "spawn_main" in " ".join(c.cmdline())]
        assert len(workers) == 2

        ids: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            params = {"limit": "10"} | ({"cursor": cursor} if cursor else {})
            async with session.get(f"{api.url}/api/v1/videos", params=params) as response:
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
        assert await _list_requests(session, api.url) == pages
    assert all(not w.is_running() or w.status() == psutil.STATUS_ZOMBIE for w in workers)
    text = api.log.read_text()
    assert "Traceback" not in text, text[-3000:]
