"""A followed channel's new upload through the whole pipeline: emulator -> fetcher -> RabbitMQ -> indexer -> API.

Runs deploy/run.sh in demo mode on private ports and names, following one of the emulator world's
channels. The upload is placed in that channel with no search query, so search never finds it:
only the channel's uploads playlist can bring it to the API.
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
from services.common.timefmt import format_rfc3339, utc_now
from services.common.topology import QueueNames
from services.youtube_emulator.content import CHANNEL_NAMES
from services.youtube_emulator.ids import channel_id
from tests.conftest import free_port
from tests.waiting import wait_until

SEED = 20261124
# The world's most prolific channel under this seed (its id depends on the seed and its name only).
FOLLOWED = channel_id(SEED, CHANNEL_NAMES[0])


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
        **{k: v for k, v in os.environ.items() if not k.startswith(("YOUTUBE_", "EMULATOR_", "FOLLOW_", "AUTO_"))},
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
        "FOLLOW_CHANNELS": FOLLOWED,
        "AUTO_FOLLOW_CHANNELS": "0",
        "MIN_CHANNEL_INTERVAL_SECONDS": "2",
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


async def _video(session: aiohttp.ClientSession, api: str, video_id: str) -> dict[str, Any] | None:
    async with session.get(f"{api}/api/v1/videos", params={"limit": "100", "found_by": "channel"}) as response:
        if response.status != 200:
            return None
        items = (await response.json())["items"]
    return next((item for item in items if item["video_id"] == video_id), None)


async def test_a_followed_channels_new_upload_is_listed_by_the_api(demo: tuple[str, str, Path]) -> None:
    api, emulator, log = demo
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        for url in (f"{emulator}/healthz", f"{api}/healthz"):
            await wait_until(partial(_answers, session, url), within=60, what=f"{url} (log: {log})")
        async with session.post(
            f"{emulator}/admin/videos",
            json={
                "channel_id": FOLLOWED,
                "title": "Straight from the uploads playlist",
                "description": "no search query finds this",
                "published_at": format_rfc3339(utc_now()),
            },
        ) as response:
            assert response.status == 201, await response.text()
            injected = (await response.json())["videoId"]

        async def listed() -> bool:
            return await _video(session, api, injected) is not None

        await wait_until(listed, within=90, what=f"the followed channel's upload in the API (log: {log})")
        video = await _video(session, api, injected)

    assert video is not None
    assert video["title"] == "Straight from the uploads playlist"
    assert video["channel_id"] == FOLLOWED
    assert {"source": "channel", "channel_id": FOLLOWED, "via": "poll"} in video["found_by"]
    assert not [entry for entry in video["found_by"] if entry["source"] == "search"]
