"""A followed channel's upload pushed through the whole pipeline: emulated hub -> fetcher's push endpoint
-> notice queue -> leader -> RabbitMQ -> indexer -> API; and then its deletion, pushed as a tombstone
the same way, hiding it.

Runs deploy/run.sh in demo mode on private ports and names, with WEBSUB_CALLBACK_URL on loopback and
the emulator as the hub. The channel's reads are stretched to an hour once its subscription is
verified, so the upload reaches the API through the push.
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
from services.common.timefmt import format_rfc3339, parse_rfc3339, utc_now
from services.common.topology import QueueNames
from services.youtube_emulator.content import CHANNEL_NAMES
from services.youtube_emulator.ids import channel_id
from tests.conftest import free_port
from tests.integration.websub_support import notice_queues_removed
from tests.waiting import wait_until

SEED = 20261124
FOLLOWED = channel_id(SEED, CHANNEL_NAMES[0])


@pytest.fixture
async def demo(
    stack: StackSettings,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es_alias: str,
    amqp: Any,
    tmp_path: Path,
) -> AsyncIterator[dict[str, str]]:
    ports = {name: free_port() for name in ("API_PORT", "FETCHER_PORT", "INDEXER_PORT", "EMULATOR_PORT")}
    urls = {name.split("_")[0].lower(): f"http://127.0.0.1:{port}" for name, port in ports.items()}
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("YOUTUBE_", "EMULATOR_", "FOLLOW_", "AUTO_", "WEBSUB_"))
        },
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
        "EMULATOR_WEBSUB_LOST_FRACTION": "0",
        "EMULATOR_WEBSUB_DELAY_MIN_SECONDS": "0.5",
        "EMULATOR_WEBSUB_DELAY_MAX_SECONDS": "1",
        "EMULATOR_WEBSUB_VERIFY_DELAY_SECONDS": "0",
        "FOLLOW_CHANNELS": FOLLOWED,
        "AUTO_FOLLOW_CHANNELS": "0",
        "MIN_CHANNEL_INTERVAL_SECONDS": "2",
        "MAX_CHANNEL_INTERVAL_SECONDS": "3600",
        "WEBSUB_CALLBACK_URL": urls["fetcher"],
        "WEBSUB_HUB_URL": f"{urls['emulator']}/subscribe",
    }
    log = tmp_path / "run.log"
    async with notice_queues_removed(amqp, queue_names):
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
            yield {**urls, "log": str(log)}
        finally:
            os.killpg(process.pid, signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), timeout=45)
            except TimeoutError:
                os.killpg(process.pid, signal.SIGKILL)
                pytest.fail(f"services did not stop on Ctrl-C; log: {log.read_text()[-3000:]}")


async def _json(session: aiohttp.ClientSession, url: str, **params: str) -> Any:
    try:
        async with session.get(url, params=params) as response:
            return await response.json() if response.status == 200 else None
    except (aiohttp.ClientError, ValueError):
        return None


async def _subscribed(session: aiohttp.ClientSession, fetcher: str) -> bool:
    health = await _json(session, f"{fetcher}/healthz")
    channel = (health or {}).get("websub", {}).get("channels", {}).get(FOLLOWED, {})
    return bool(channel.get("state") == "subscribed")


async def _video(session: aiohttp.ClientSession, api: str, video_id: str, **params: str) -> dict[str, Any] | None:
    body = await _json(session, f"{api}/api/v1/videos", limit="100", found_by="channel", **params)
    items = body["items"] if body else []
    return next((item for item in items if item["video_id"] == video_id), None)


async def test_a_pushed_upload_reaches_the_api_via_push_and_its_tombstone_hides_it(demo: dict[str, str]) -> None:
    api, emulator, fetcher, log = demo["api"], demo["emulator"], demo["fetcher"], demo["log"]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def answers(url: str) -> bool:
            return await _json(session, url) is not None

        for url in (f"{emulator}/healthz", f"{api}/healthz"):
            await wait_until(partial(answers, url), within=60, what=f"{url} (log: {log})")
        await wait_until(partial(_subscribed, session, fetcher), within=60, what=f"the subscription (log: {log})")
        async with session.post(
            f"{emulator}/admin/videos",
            json={"channel_id": FOLLOWED, "title": "Pushed to us", "published_at": format_rfc3339(utc_now())},
        ) as response:
            assert response.status == 201, await response.text()
            injected = (await response.json())["videoId"]

        async def listed() -> bool:
            return await _video(session, api, injected) is not None

        await wait_until(listed, within=60, what=f"the pushed upload in the API (log: {log})")
        video = await _video(session, api, injected)
        assert video is not None and video["title"] == "Pushed to us"
        assert {"source": "channel", "channel_id": FOLLOWED, "via": "push"} in video["found_by"]
        assert video["removed_at"] is None
        assert await _video(session, api, injected, q="pushed") is not None

        # YouTube deletes it: the hub pushes a tombstone, and the API hides the video.
        async with session.post(f"{emulator}/admin/videos/{injected}/delete") as response:
            assert response.status == 200, await response.text()
            deleted_at = parse_rfc3339((await response.json())["deletedAt"])

        async def hidden() -> bool:
            return await _video(session, api, injected) is None

        await wait_until(hidden, within=60, what=f"the deleted video hidden from the listing (log: {log})")
        searched = await _video(session, api, injected, q="pushed")
        removed = await _video(session, api, injected, include_removed="true")
        removed_searched = await _video(session, api, injected, q="pushed", include_removed="true")

    assert searched is None
    assert removed is not None and removed_searched is not None
    assert parse_rfc3339(removed["removed_at"]) == deleted_at.replace(microsecond=deleted_at.microsecond // 1000 * 1000)
    assert removed["title"] == "Pushed to us"
