"""Followed channels against the emulator and the real broker: uploads published, deep reads, hidden items, units.

The fetcher runs in this process on the emulator's clock (running at real speed, moved by jumps
where a day must pass); the queue is tapped, so every message the broker confirmed is seen.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aio_pika
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.common.fetcher_state import BUDGET_COLLECTION, CHANNEL_STATE_COLLECTION, UNITS_BUDGET_ID
from services.common.settings import StackSettings
from services.common.topology import QueueNames
from services.fetcher.scheduler import Scheduler
from services.youtube_emulator.testing import quiet_settings
from services.youtube_emulator.timestamps import format_timestamp
from tests.integration.fetcher_support import (
    EmulatorDrivenClock,
    InProcessFetcher,
    QueueTap,
    RecordedCall,
    RunningEmulator,
    epoch,
    fake_key,
    fetcher_env,
    in_process_fetcher,
    queue_tap,
    running_emulator,
)
from tests.waiting import wait_until

START = epoch("2026-11-24T18:00:00Z")  # 10:00 in Los Angeles
CHANNEL = "UCfollowedChannelAAAAAAA"
UNIT_METHODS = ("channels", "playlistItems", "videos")


async def inject(
    emulator: RunningEmulator, video_id: str, *, published: float, uploaded: float | None = None, **extra: Any
) -> None:
    """A video of the followed channel, as its uploader placed it."""
    body = {
        "video_id": video_id,
        "channel_id": CHANNEL,
        "channel": "The Followed Channel",
        "title": f"upload {video_id}",
        "published_at": format_timestamp(published),
        **({"uploaded_at": format_timestamp(uploaded)} if uploaded is not None else {}),
        **extra,
    }
    await emulator.admin("POST", "/admin/videos", json=body)


@dataclass
class Rig:
    emulator: RunningEmulator
    fetcher: InProcessFetcher
    tap: QueueTap

    @property
    def channels(self) -> Scheduler:
        return self.fetcher.leader.others[0]

    async def inject(self, video_id: str, *, published: float, uploaded: float | None = None, **extra: Any) -> None:
        await inject(self.emulator, video_id, published=published, uploaded=uploaded, **extra)

    async def reads(self, count: int = 1) -> None:
        """Wait for ``count`` more reads of the followed channel (cycles of its scheduler) to end."""
        goal = self.channels.cycles + count

        async def done() -> bool:
            return self.channels.cycles >= goal and self.channels.next_cycle_at is not None

        await wait_until(done, within=60, what=f"{count} more reads of the followed channel")

    def channel_messages(self) -> list[dict[str, Any]]:
        return [m.body for m in self.tap.messages if m.body.get("found_by", {}).get("source") == "channel"]

    def calls(self, method: str) -> list[RecordedCall]:
        return [c for c in self.emulator.calls if c.method == method]


Prepare = Callable[[RunningEmulator], Awaitable[None]]


@asynccontextmanager
async def rig(
    stack: StackSettings,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    amqp: aio_pika.abc.AbstractRobustConnection,
    *,
    prepare: Prepare | None = None,
    emulator_overrides: dict[str, Any] | None = None,
    **fetcher_overrides: object,
) -> AsyncIterator[Rig]:
    """The emulator knowing the followed channel (by one upload long before the lookback), a tap, the fetcher.

    ``prepare`` places more videos before the fetcher starts.
    """
    settings = quiet_settings(
        emulator_videos_per_minute=0.5,
        emulator_backfill_seconds=0,
        emulator_search_calls_per_day=1_000_000,
        emulator_units_per_day=1_000_000,
        **(emulator_overrides or {}),
    )
    async with running_emulator(settings, now=START) as emulator, queue_tap(amqp, queue_names) as tap:
        await inject(emulator, "history0001", published=START - 7200)
        if prepare is not None:
            await prepare(emulator)
        env = fetcher_env(
            stack,
            queue_names,
            mongo_db.name,
            emulator,
            youtube_api_keys=fake_key("channels"),
            follow_channels=CHANNEL,
            youtube_units_per_day=1_000_000,
            min_channel_interval_seconds=1,
            poll_interval_seconds=5,
            initial_lookback_seconds=600,
            **fetcher_overrides,
        )
        async with in_process_fetcher(env, EmulatorDrivenClock(emulator)) as fetcher:
            yield Rig(emulator, fetcher, tap)


async def test_a_followed_channels_new_upload_is_published_once_as_found_through_the_channel(
    stack: StackSettings,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    amqp: aio_pika.abc.AbstractRobustConnection,
) -> None:
    async with rig(stack, queue_names, mongo_db, amqp) as r:
        await r.reads(2)
        assert r.channel_messages() == [], "the upload before the lookback is history, not news"
        now = r.emulator.state.now()
        await r.inject("newupload01", published=now - 1, description="fresh & raw")

        async def arrived() -> bool:
            return any(m["video_id"] == "newupload01" for m in r.channel_messages())

        await wait_until(arrived, within=30, what="the new upload in the queue")
        await r.reads(3)
        messages = r.channel_messages()
        health = await r.fetcher.health()
        state = await mongo_db[CHANNEL_STATE_COLLECTION].find_one({"_id": CHANNEL})

    assert [m["video_id"] for m in messages] == ["newupload01"]  # once, and nothing else
    [message] = messages
    assert message["schema_version"] == 2
    assert message["found_by"] == {"source": "channel", "query": None, "channel_id": CHANNEL, "via": "poll"}
    assert message["query"] is None
    assert message["channel_id"] == CHANNEL
    assert message["description"] == "fresh & raw"
    # channels.list once; each read one playlistItems page; the new video one videos.list call.
    assert len(r.calls("channels")) == 1
    assert r.calls("channels")[0].params == {"part": "contentDetails", "id": CHANNEL}
    first_read = r.calls("playlistItems")[0].params
    assert first_read == {"part": "snippet,contentDetails", "playlistId": "UU" + CHANNEL[2:], "maxResults": "50"}
    assert len([c for c in r.calls("videos") if "newupload01" in c.params["id"]]) == 1
    assert health["channels"][CHANNEL]["status"] == "ok"
    assert health["channels"][CHANNEL]["videos_published"] == 1
    assert health["units"]["channels"][CHANNEL]["interval_seconds"] >= 1
    assert state is not None and state["uploads_playlist_id"] == "UU" + CHANNEL[2:]
    assert "newupload01" in {k["video_id"] for k in state["known_videos"]}


async def test_a_scheduled_video_below_newer_uploads_is_found_by_the_daily_deep_read(
    stack: StackSettings,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    amqp: aio_pika.abc.AbstractRobustConnection,
) -> None:
    async def scheduled_below_newer(emulator: RunningEmulator) -> None:
        # Uploaded first but published later (scheduled), then 60 newer public uploads above it.
        await inject(emulator, "scheduled01", uploaded=START - 400, published=START + 30)
        for i in range(60):
            await inject(emulator, f"newer{i:06d}", uploaded=START - 300 + i, published=START - 300 + i)

    async with rig(stack, queue_names, mongo_db, amqp, prepare=scheduled_below_newer) as r:
        await r.reads(2)
        assert len(r.channel_messages()) == 60
        r.emulator.advance(60)  # the scheduled video is public now, on the playlist's second page
        await r.reads(3)
        assert "scheduled01" not in {m["video_id"] for m in r.channel_messages()}, "a normal read stops at page one"
        pages_before = len(r.calls("playlistItems"))
        r.emulator.advance(24 * 3600)  # a day later: the deep read

        async def found() -> bool:
            return "scheduled01" in {m["video_id"] for m in r.channel_messages()}

        await wait_until(found, within=60, what="the deep read to find the scheduled video")
        deep_pages = len(r.calls("playlistItems")) - pages_before
        ids = [m["video_id"] for m in r.channel_messages()]

    assert len(ids) == len(set(ids)) == 61
    assert deep_pages >= 2


async def test_private_and_deleted_items_are_never_published(
    stack: StackSettings,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    amqp: aio_pika.abc.AbstractRobustConnection,
) -> None:
    async with rig(stack, queue_names, mongo_db, amqp) as r:
        now = r.emulator.state.now()
        await r.inject("private0001", published=now - 5, privacy="private")
        await r.inject("deleted0001", published=now - 4, privacy="deleted")
        await r.inject("public00001", published=now - 3)

        async def public_arrived() -> bool:
            return "public00001" in {m["video_id"] for m in r.channel_messages()}

        await wait_until(public_arrived, within=30, what="the public upload")
        await r.reads(3)
        r.emulator.advance(24 * 3600)  # and through a deep read
        await r.reads(3)
        ids = [m["video_id"] for m in r.channel_messages()]

    assert ids == ["public00001"]


async def test_a_spent_units_pool_parks_unit_calls_only_until_the_reset(
    stack: StackSettings,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    amqp: aio_pika.abc.AbstractRobustConnection,
) -> None:
    key = fake_key("channels")
    async with rig(
        stack, queue_names, mongo_db, amqp, emulator_overrides={"emulator_key_unit_budgets": {key: 12}}
    ) as r:

        async def refused() -> bool:
            return any("quotaExceeded" in c.reasons for c in r.emulator.calls if c.method in UNIT_METHODS)

        await wait_until(refused, within=60, what="the emulator to refuse a unit call")
        refused_at = len(r.emulator.calls)

        async def searched_twice_more() -> bool:
            return len([c for c in r.emulator.calls[refused_at:] if c.method == "search"]) >= 2

        r.emulator.advance(30)
        await wait_until(searched_twice_more, within=60, what="searches after the units ran out")
        after = r.emulator.calls[refused_at:]
        health = await r.fetcher.health()
        metrics = await r.fetcher.metrics()
        units_doc = await mongo_db[BUDGET_COLLECTION].find_one({"_id": UNITS_BUDGET_ID})
        # Past midnight in Los Angeles the units come back, and the channel is read again.
        r.emulator.set_clock(epoch("2026-11-25T08:00:05Z"))
        reads_before = len(r.calls("playlistItems"))

        async def read_again() -> bool:
            return len(r.calls("playlistItems")) > reads_before

        await wait_until(read_again, within=60, what="a channel read after the reset")

    assert not [c for c in after if c.method in UNIT_METHODS], "a unit call after the units pool was spent"
    assert all(c.status == 200 for c in after if c.method == "search")
    [project] = health["units"]["projects"]
    assert project["parked_until"].startswith("2026-11-25T08:00:00")
    assert health["all_keys_parked"] is False  # search goes on
    assert "tubewatch_fetcher_units_parked_projects 1.0" in metrics
    assert units_doc is not None and units_doc["projects"][0]["parked_until"] is not None


async def test_a_channel_youtube_does_not_know_is_not_found_once_until_the_configuration_changes(
    stack: StackSettings,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    amqp: aio_pika.abc.AbstractRobustConnection,
    caplog: pytest.LogCaptureFixture,
) -> None:
    unknown = "UC" + "Z" * 22
    settings = quiet_settings(emulator_videos_per_minute=0.5, emulator_backfill_seconds=0)
    caplog.set_level(logging.WARNING, logger="services.fetcher")
    async with running_emulator(settings, now=START) as emulator, queue_tap(amqp, queue_names) as tap:
        await inject(emulator, "history0001", published=START - 7200)

        def asked(channel: str) -> int:
            return len([c for c in emulator.calls if c.method == "channels" and c.params.get("id") == channel])

        async def run(follow: str, until: Callable[[], bool] | None = None) -> None:
            """A fetcher following ``follow`` until ``until`` holds (by default: four reads of the channels)."""
            env = fetcher_env(
                stack,
                queue_names,
                mongo_db.name,
                emulator,
                youtube_api_keys=fake_key("unknown"),
                follow_channels=follow,
                min_channel_interval_seconds=1,
                poll_interval_seconds=5,
            )
            async with in_process_fetcher(env, EmulatorDrivenClock(emulator)) as fetcher:
                if until is None:
                    await Rig(emulator, fetcher, tap).reads(4)
                    return

                async def holds() -> bool:
                    return until()

                await wait_until(holds, within=60, what="the fetcher to ask channels.list")

        await run(f"{CHANNEL} {unknown}")
        assert asked(unknown) == 1
        state = await mongo_db[CHANNEL_STATE_COLLECTION].find_one({"_id": unknown})
        assert state is not None and state["status"] == "not_found"
        await run(f"{CHANNEL} {unknown}")  # a restart, the same configuration: not asked again
        assert asked(unknown) == 1
        await run(unknown, until=lambda: asked(unknown) >= 2)  # another configuration: asked once more
        assert asked(unknown) == 2

    warnings = [r for r in caplog.records if "not found by channels.list" in r.getMessage()]
    assert [getattr(w, "channel_id", None) for w in warnings] == [unknown, unknown]  # one per configuration
    assert not [c for c in emulator.calls if c.method == "playlistItems" and unknown[2:] in c.params["playlistId"]]
    assert asked(CHANNEL) == 1  # the known channel's playlist id was remembered across restarts
