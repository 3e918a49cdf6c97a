"""The running fetcher picks up changes of the sources in MongoDB: queries and channels, no restart.

Changes are made as the admin API makes them (its store, services/api/admin_store.py) on this
test's own database; the fetcher runs in this process against the emulator (its clock at real
speed) and the real broker, whose queue is tapped. What the fetcher called is the emulator's
call log.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
from pymongo.asynchronous.database import AsyncDatabase

from services.api.admin_store import SourcesAdmin
from services.common.catalogue import VIDEOS_COLLECTION
from services.common.settings import StackSettings
from services.common.sources import SeedRequest, seed_from_environment
from services.common.topology import QueueNames
from services.youtube_emulator.testing import quiet_settings
from services.youtube_emulator.timestamps import format_timestamp
from tests.integration.fetcher_support import (
    EmulatorDrivenClock,
    InProcessFetcher,
    QueueTap,
    RunningEmulator,
    epoch,
    fake_key,
    fetcher_env,
    in_process_fetcher,
    queue_tap,
    running_emulator,
)
from tests.waiting import wait_until

START = epoch("2026-11-24T18:00:00Z")
CHANNEL_A = "UCsourcesChannelAAAAAAAA"
CHANNEL_B = "UCsourcesChannelBBBBBBBB"
ACTOR = "alice"


@dataclass
class Rig:
    emulator: RunningEmulator
    fetcher: InProcessFetcher
    tap: QueueTap
    admin: SourcesAdmin

    def searches(self, query: str) -> int:
        return sum(1 for c in self.emulator.calls if c.method == "search" and c.params.get("q") == query)

    def reads_of(self, channel_id: str) -> int:
        """Calls about the channel: its channels.list lookup and its uploads playlist's pages."""
        playlist = "UU" + channel_id[2:]
        return sum(
            1
            for c in self.emulator.calls
            if (c.method == "channels" and channel_id in c.params.get("id", ""))
            or (c.method == "playlistItems" and c.params.get("playlistId") == playlist)
        )

    async def revision(self) -> int:
        health = await self.fetcher.health()
        return int(health.get("sources", {}).get("revision", 0))

    async def applied_after(self, revision: int) -> None:
        """Wait until the fetcher loaded a set newer than ``revision``."""

        async def newer() -> bool:
            return await self.revision() > revision

        await wait_until(newer, within=20, what="the fetcher to load the changed sources")

    async def cycles(self, count: int) -> None:
        """Wait for ``count`` more cycles of the search scheduler to end."""
        scheduler = self.fetcher.scheduler
        goal = scheduler.cycles + count

        async def done() -> bool:
            return scheduler.cycles >= goal

        await wait_until(done, within=60, what=f"{count} more search cycles")

    async def channel_cycles(self, count: int) -> None:
        scheduler = self.fetcher.leader.others[0]
        goal = scheduler.cycles + count

        async def done() -> bool:
            return scheduler.cycles >= goal

        await wait_until(done, within=60, what=f"{count} more channel cycles")

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.emulator.state.now(), tz=UTC)


async def place_upload(emulator: RunningEmulator, channel_id: str, video_id: str, published: float) -> None:
    await emulator.admin(
        "POST",
        "/admin/videos",
        json={
            "video_id": video_id,
            "channel_id": channel_id,
            "channel": f"channel {channel_id[-1]}",
            "title": f"upload {video_id}",
            "published_at": format_timestamp(published),
        },
    )


@asynccontextmanager
async def rig(
    stack: StackSettings,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    amqp: aio_pika.abc.AbstractRobustConnection,
    **fetcher_overrides: object,
) -> AsyncIterator[Rig]:
    settings = quiet_settings(
        emulator_videos_per_minute=6,
        emulator_backfill_seconds=3600,
        emulator_search_calls_per_day=1_000_000,
        emulator_units_per_day=1_000_000,
    )
    async with running_emulator(settings, now=START) as emulator, queue_tap(amqp, queue_names) as tap:
        for channel_id in (CHANNEL_A, CHANNEL_B):
            await place_upload(emulator, channel_id, f"old{channel_id[-1]}0000001", START - 7200)
        env = fetcher_env(
            stack,
            queue_names,
            mongo_db.name,
            emulator,
            youtube_api_keys=fake_key("sources"),
            youtube_units_per_day=1_000_000,
            initial_lookback_seconds=600,
            min_channel_interval_seconds=1,
            **fetcher_overrides,
        )
        async with in_process_fetcher(env, EmulatorDrivenClock(emulator)) as fetcher:
            yield Rig(emulator, fetcher, tap, SourcesAdmin(mongo_db, "first"))


async def test_a_query_added_at_run_time_is_searched_within_seconds_and_its_videos_published(
    stack: StackSettings,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    amqp: aio_pika.abc.AbstractRobustConnection,
) -> None:
    # Ten minutes between cycles: only the wake-up can make the new query's search come soon.
    async with rig(stack, queue_names, mongo_db, amqp, poll_interval_seconds=600) as r:
        await wait_until(lambda: _true(r.searches("cricket") > 0), within=30, what="the seeded query searched")
        revision = await r.revision()
        await r.admin.add_query(ACTOR, "world cup", 1.0, r.now())
        await r.applied_after(revision)
        await wait_until(lambda: _true(r.searches("world cup") > 0), within=15, what="the new query searched")

        async def published() -> bool:
            return any(m.query == "world cup" for m in r.tap.messages)

        await wait_until(published, within=30, what="the new query's videos in the queue")
        first = next(c for c in r.emulator.calls if c.params.get("q") == "world cup")
        health = await r.fetcher.health()

    # It started with its initial lookback (600 s before its first search).
    assert epoch(first.params["publishedAfter"]) <= first.at - 600 + 5
    assert health["sources"]["queries"] == ["cricket", "world cup"]
    assert health["sources"]["watching"] is True


async def test_a_paused_or_removed_query_gets_no_further_call(
    stack: StackSettings,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    amqp: aio_pika.abc.AbstractRobustConnection,
) -> None:
    async with rig(stack, queue_names, mongo_db, amqp, search_queries="cricket,football", poll_interval_seconds=1) as r:
        await wait_until(
            lambda: _true(r.searches("football") > 0 and r.searches("cricket") > 0), within=30, what="both searched"
        )
        [cricket, football] = await r.admin.queries()
        revision = await r.revision()
        await r.admin.patch_query(ACTOR, football.id, {"paused": True}, r.now())
        await r.applied_after(revision)
        await r.cycles(1)  # a poll in flight when the change came may finish
        football_calls = r.searches("football")
        await r.cycles(4)
        assert r.searches("football") == football_calls, "a paused query is not searched"

        revision = await r.revision()
        await r.admin.remove_query(ACTOR, cricket.id, r.now())
        await r.admin.add_query(ACTOR, "tennis", 1.0, r.now())
        await r.applied_after(revision)
        await r.cycles(1)
        cricket_calls = r.searches("cricket")
        await wait_until(lambda: _true(r.searches("tennis") > 0), within=15, what="the added query searched")
        await r.cycles(4)
        assert r.searches("cricket") == cricket_calls, "a removed query is not searched"
        assert r.searches("football") == football_calls

        revision = await r.revision()
        await r.admin.patch_query(ACTOR, football.id, {"paused": False}, r.now())
        await r.applied_after(revision)
        await wait_until(
            lambda: _true(r.searches("football") > football_calls), within=15, what="the resumed query searched"
        )
        metrics = await r.fetcher.metrics()

    assert 'tubewatch_fetcher_sources_reloads_total{reason="change"}' in metrics


async def test_a_channel_followed_at_run_time_is_read_and_once_unfollowed_never_again(
    stack: StackSettings,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    amqp: aio_pika.abc.AbstractRobustConnection,
) -> None:
    # B followed from the start: the channels' scheduler turns throughout (it has no cycle without a channel).
    async with rig(stack, queue_names, mongo_db, amqp, poll_interval_seconds=600, follow_channels=CHANNEL_B) as r:
        await r.channel_cycles(1)
        assert r.reads_of(CHANNEL_A) == 0
        revision = await r.revision()
        await r.admin.follow_channel(ACTOR, CHANNEL_A, r.now())
        await r.applied_after(revision)
        await wait_until(
            lambda: _true(r.reads_of(CHANNEL_A) >= 2), within=20, what="the followed channel looked up and read"
        )
        await place_upload(r.emulator, CHANNEL_A, "freshA00001", r.emulator.state.now() - 1)

        async def published() -> bool:
            return "freshA00001" in r.tap.ids()

        await wait_until(published, within=30, what="the followed channel's new upload in the queue")
        health = await r.fetcher.health()
        assert CHANNEL_A in health["channels"]

        revision = await r.revision()
        await r.admin.remove_channel(ACTOR, CHANNEL_A, r.now())
        await r.applied_after(revision)
        await r.channel_cycles(1)  # a read in flight may finish
        reads = r.reads_of(CHANNEL_A)
        await r.channel_cycles(5)
        health = await r.fetcher.health()

    assert r.reads_of(CHANNEL_A) == reads, "an unfollowed channel is not read"
    assert set(health["channels"]) == {CHANNEL_B}


async def test_an_excluded_channel_is_never_auto_followed(
    stack: StackSettings,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    amqp: aio_pika.abc.AbstractRobustConnection,
) -> None:
    # Search found channel A most, B less: with one channel to auto-follow, A would be chosen.
    now = datetime.fromtimestamp(START, tz=UTC)
    videos = [(CHANNEL_A, f"srchA{n:06d}") for n in range(5)] + [(CHANNEL_B, f"srchB{n:06d}") for n in range(2)]
    await mongo_db[VIDEOS_COLLECTION].insert_many(
        [
            {
                "_id": video_id,
                "channel_id": channel_id,
                "published_at": now - timedelta(hours=1),
                "found_by": [{"source": "search", "query": "cricket"}],
                "queries": ["cricket"],
            }
            for channel_id, video_id in videos
        ]
    )
    # The API seeded the sources (it started first) and A was excluded in advance.
    await seed_from_environment(mongo_db, SeedRequest(["cricket"], [], "first", "api"), now)
    await SourcesAdmin(mongo_db, "first").patch_channel(ACTOR, CHANNEL_A, {"excluded": True}, now)
    async with rig(stack, queue_names, mongo_db, amqp, poll_interval_seconds=600, auto_follow_channels=1) as r:

        async def b_read() -> bool:
            return r.reads_of(CHANNEL_B) >= 2

        await wait_until(b_read, within=30, what="the next channel auto-followed and read")
        await r.channel_cycles(3)
        health = await r.fetcher.health()

    assert r.reads_of(CHANNEL_A) == 0, "an excluded channel is never read"
    assert set(health["channels"]) == {CHANNEL_B}


def _true(value: bool) -> Any:
    """``wait_until`` takes an awaitable condition; these conditions are plain reads of the call log."""

    async def holds() -> bool:
        return value

    return holds()


async def test_a_standby_that_takes_over_searches_the_changed_set(
    stack: StackSettings,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    amqp: aio_pika.abc.AbstractRobustConnection,
) -> None:
    async with rig(stack, queue_names, mongo_db, amqp, poll_interval_seconds=600) as r:
        env = fetcher_env(
            stack,
            queue_names,
            mongo_db.name,
            r.emulator,
            youtube_api_keys=fake_key("sources"),
            poll_interval_seconds=600,
            initial_lookback_seconds=600,
        )
        async with in_process_fetcher(env, EmulatorDrivenClock(r.emulator)) as standby:

            async def standing_by() -> bool:
                return (await standby.health()).get("role") == "standby"

            await wait_until(standing_by, within=30, what="the second fetcher standing by")
            revision = await r.revision()
            [cricket] = await r.admin.queries()
            await r.admin.add_query(ACTOR, "world cup", 1.0, r.now())
            await r.admin.patch_query(ACTOR, cricket.id, {"paused": True}, r.now())

            async def both_applied() -> bool:
                health = await r.fetcher.health()
                return health.get("sources", {}).get("queries") == ["world cup"]

            await wait_until(both_applied, within=20, what="the leader applying both changes")
            assert await r.revision() > revision
            assert "sources" not in await standby.health(), "only the leader watches"
            # The leader's app shuts down as on SIGTERM: the cycle in hand ends, the lease is released.
            await r.fetcher.client.close()
            cricket_calls, world_cup_calls = r.searches("cricket"), r.searches("world cup")

            async def leading() -> bool:
                return (await standby.health()).get("role") == "leader"

            await wait_until(leading, within=60, what="the standby taking over")
            await wait_until(
                lambda: _true(r.searches("world cup") > world_cup_calls), within=30, what="the new leader's search"
            )
            health = await standby.health()

    assert health["sources"]["queries"] == ["world cup"]
    assert r.searches("cricket") == cricket_calls, "the paused query stays paused under the new leader"
