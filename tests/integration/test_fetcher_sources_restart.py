"""A change of the sources made while MongoDB restarts is applied by the running fetcher once it is back.

Never the shared MongoDB: the session's private_stack has its own, a replica set like the shared
one, stopped and started here. The fetcher runs in this process against the emulator and the
shared broker.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import aio_pika
from pymongo import AsyncMongoClient

from services.api.admin_store import SourcesAdmin
from services.common.settings import StackSettings
from services.common.topology import QueueNames
from services.youtube_emulator.testing import quiet_settings
from tests.integration.fetcher_support import (
    EmulatorDrivenClock,
    epoch,
    fake_key,
    fetcher_env,
    in_process_fetcher,
    queue_tap,
    running_emulator,
)
from tests.private_stack import PrivateStack
from tests.waiting import wait_until

START = epoch("2026-11-24T18:00:00Z")


async def test_a_query_added_while_mongodb_restarts_is_searched_once_it_is_back(
    private_stack: PrivateStack,
    stack: StackSettings,
    queue_names: QueueNames,
    amqp: aio_pika.abc.AbstractRobustConnection,
    unique_name: str,
) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        private_stack.mongodb_url, tz_aware=True, serverSelectionTimeoutMS=20_000
    )
    db = client[unique_name.replace("-", "_")]
    settings = quiet_settings(emulator_search_calls_per_day=1_000_000, emulator_backfill_seconds=3600)
    try:
        async with running_emulator(settings, now=START) as emulator, queue_tap(amqp, queue_names) as tap:

            def searches(query: str) -> int:
                return sum(1 for c in emulator.calls if c.method == "search" and c.params.get("q") == query)

            env = fetcher_env(
                stack,
                queue_names,
                db.name,
                emulator,
                mongodb_url=private_stack.mongodb_url,
                youtube_api_keys=fake_key("restart"),
                poll_interval_seconds=600,
                initial_lookback_seconds=600,
            )
            async with in_process_fetcher(env, EmulatorDrivenClock(emulator)) as fetcher:

                async def watching() -> bool:
                    return bool((await fetcher.health()).get("sources", {}).get("watching"))

                async def cricket_searched() -> bool:
                    return searches("cricket") > 0

                await wait_until(watching, within=30, what="the leader watching the sources")
                await wait_until(cricket_searched, within=30, what="the seeded query searched")

                await asyncio.to_thread(private_stack.stop, "mongodb")
                await asyncio.to_thread(private_stack.start, "mongodb")
                # Before the fetcher is back on MongoDB: its stream is broken or still reconnecting.
                now = datetime.fromtimestamp(emulator.state.now(), tz=UTC)
                await SourcesAdmin(db, "first").add_query("alice", "world cup", 1.0, now)

                async def world_cup_searched() -> bool:
                    return searches("world cup") > 0

                await wait_until(world_cup_searched, within=90, what="the query added during the restart searched")

                async def published() -> bool:
                    return any(m.query == "world cup" for m in tap.messages)

                await wait_until(published, within=30, what="its videos in the queue")
                health = await fetcher.health()
                metrics = await fetcher.metrics()
    finally:
        await client.drop_database(db.name)
        await client.close()

    assert "world cup" in health["sources"]["queries"]
    assert 'tubewatch_fetcher_sources_reloads_total{reason="' in metrics
