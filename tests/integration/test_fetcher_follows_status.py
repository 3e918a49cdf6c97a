"""A running fetcher's followed channels in /api/v1/status: why each is followed and how it is read.

The fetcher runs in this process against the emulator, on the test's database; the catalogue is
seeded with what search had found (as the indexer stores it), and the API reads what the fetcher
saved.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import pytest
from aiohttp.test_utils import TestClient, TestServer
from pymongo.asynchronous.database import AsyncDatabase

from services.api.app import create_app
from services.api.models import PipelineStatus
from services.common.catalogue import VIDEOS_COLLECTION, ensure_mongo_indexes
from services.common.fetcher_state import FOLLOWS_COLLECTION, FOLLOWS_ID
from services.common.settings import StackSettings
from services.common.topology import QueueNames
from services.youtube_emulator.testing import quiet_settings
from services.youtube_emulator.timestamps import format_timestamp
from tests.integration.api_support import api_settings
from tests.integration.fetcher_support import (
    EmulatorDrivenClock,
    epoch,
    fake_key,
    fetcher_env,
    in_process_fetcher,
    running_emulator,
)
from tests.waiting import wait_until

START = epoch("2026-11-24T18:00:00Z")
NAMED = "UCfollowedChannelAAAAAAA"  # known to the emulator (one upload)
BUSY, QUIET = "UC" + "b" * 22, "UC" + "q" * 22  # found by search, unknown to channels.list


async def seed_search_finds(db: AsyncDatabase[dict[str, Any]]) -> None:
    published = datetime.fromtimestamp(START, UTC) - timedelta(days=1)
    docs = [
        {
            "video_id": f"{channel[2]}{n:010d}",
            "channel_id": channel,
            "published_at": published,
            "queries": ["cricket"],
            "found_by": [{"source": "search", "query": "cricket"}],
        }
        for channel, count in ((BUSY, 5), (QUIET, 2))
        for n in range(count)
    ]
    await ensure_mongo_indexes(db)
    await db[VIDEOS_COLLECTION].insert_many(docs)


@pytest.mark.parametrize("top_n", [1, 0])
async def test_status_shows_the_followed_channels_a_running_fetcher_chose(
    stack: StackSettings,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es_alias: str,
    amqp: aio_pika.abc.AbstractRobustConnection,
    top_n: int,
) -> None:
    await seed_search_finds(mongo_db)
    settings = quiet_settings(emulator_videos_per_minute=0.5, emulator_backfill_seconds=0)
    async with running_emulator(settings, now=START) as emulator:
        await emulator.admin(
            "POST",
            "/admin/videos",
            json={
                "video_id": "history0001",
                "channel_id": NAMED,
                "channel": "The Followed Channel",
                "title": "an old upload",
                "published_at": format_timestamp(START - 7200),
            },
        )
        env = fetcher_env(
            stack,
            queue_names,
            mongo_db.name,
            emulator,
            youtube_api_keys=fake_key("follows"),
            follow_channels=NAMED,
            auto_follow_channels=top_n,
            min_channel_interval_seconds=1,
            poll_interval_seconds=5,
        )
        async with in_process_fetcher(env, EmulatorDrivenClock(emulator)):

            async def chosen() -> bool:
                return await mongo_db[FOLLOWS_COLLECTION].find_one({"_id": FOLLOWS_ID}) is not None

            await wait_until(chosen, within=30, what="the fetcher's saved follow set")
            api_config = api_settings(
                mongodb_url=stack.mongodb_url,
                mongodb_database=mongo_db.name,
                elasticsearch_url=stack.elasticsearch_url,
                elasticsearch_index=es_alias,
                amqp_url=stack.amqp_url,
                amqp_exchange=queue_names.exchange,
                amqp_queue=queue_names.queue,
            )
            async with TestClient(TestServer(create_app(api_config))) as api:

                async def status() -> PipelineStatus:
                    response = await api.get("/api/v1/status")
                    assert response.status == 200, await response.text()
                    return PipelineStatus.model_validate(await response.json())

                async def named_planned() -> bool:
                    followed = (await status()).fetcher.followed_channels
                    return bool(followed) and followed[0].interval_seconds is not None

                # Its planned interval is saved with the read after the first plan.
                await wait_until(named_planned, within=30, what="the named channel's read and plan in the status")
                fetcher = (await status()).fetcher

    listed = [(c.channel_id, c.reason, c.rank, c.count) for c in fetcher.followed_channels]
    assert listed == [(NAMED, "explicit", None, None)] + ([(BUSY, "auto", 1, 5)] if top_n else [])
    named = fetcher.followed_channels[0]
    assert named.status == "ok"
    assert named.last_read_at is not None
    assert fetcher.auto_follow is not None
    assert (fetcher.auto_follow.channels, fetcher.auto_follow.window_days) == (top_n, 7)
    assert fetcher.units is not None
    assert fetcher.units.projects and fetcher.units.units_spent_today >= 2  # channels.list, playlistItems.list
