"""Every video the emulator made visible reaches RabbitMQ exactly once per fetcher lifetime.

The emulator's clock is frozen and stepped by the test, and the fetcher reads the same clock, so
twenty minutes of uploads, late indexing (up to OVERLAP_SECONDS after publishedAt), duplicates
across pages, empty last pages and a first window far beyond search's ~500-result cap play out
in seconds.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import pytest
from aiohttp import web
from pymongo.asynchronous.database import AsyncDatabase

from services.common.fetcher_state import QUERY_STATE_COLLECTION
from services.common.settings import StackSettings
from services.common.topology import QueueNames
from services.youtube_emulator import errors
from services.youtube_emulator.testing import quiet_settings
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

START = epoch("2026-11-24T12:00:00Z")
STEP_SECONDS = 20
LATE_SWEEP_EVERY = 3


async def _step(emulator: RunningEmulator, fetcher: InProcessFetcher, seconds: float) -> None:
    """Once the fetcher waits for its next cycle, move both clocks on and wait for that cycle to end."""
    scheduler = fetcher.scheduler

    async def waiting() -> bool:
        return scheduler.next_cycle_at is not None

    await _soon(waiting, "the fetcher to wait between cycles")
    cycles = scheduler.cycles
    emulator.advance(seconds)

    async def cycled() -> bool:
        return scheduler.cycles > cycles and scheduler.next_cycle_at is not None

    await _soon(cycled, "a poll cycle")


async def _soon(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    """wait_until with a finer grain: a step is a few milliseconds of work, done hundreds of times."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while not await condition():
        if loop.time() > deadline:
            pytest.fail(f"timed out after 60s waiting for {what}")
        await asyncio.sleep(0.005)


def _assert_exactly_once(tap: QueueTap, expected: set[str], allowed: set[str]) -> None:
    counts = tap.counts()
    missing = expected - counts.keys()
    assert not missing, f"{len(missing)} of {len(expected)} visible videos never reached RabbitMQ"
    twice = {vid: n for vid, n in counts.items() if n > 1}
    assert not twice, f"published more than once: {twice}"
    assert counts.keys() <= allowed, "published a video the emulator never showed"


@pytest.mark.parametrize("faults", [False, True], ids=["clean", "faults"])
async def test_every_visible_video_reaches_rabbitmq_exactly_once(
    faults: bool,
    stack: StackSettings,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    amqp: aio_pika.abc.AbstractRobustConnection,
) -> None:
    fault_knobs: dict[str, Any] = {}
    if faults:
        # 20% 5xx, 20% slow (half of them past the request timeout), plus a few drops and rate limits
        fault_knobs = {
            "emulator_fault_5xx": 0.2,
            "emulator_fault_slow": 0.2,
            "emulator_slow_seconds": 0.6,
            "emulator_fault_drop": 0.03,
            "emulator_fault_rate_limit": 0.03,
        }
    emulator_settings = quiet_settings(
        emulator_videos_per_minute=30,
        # 25 minutes of history: 750 videos in the first window, over the ~500 cap (the clean
        # run proves the split; the faulty one keeps to 300 videos to stay quick)
        emulator_backfill_seconds=600 if faults else 1500,
        emulator_late_fraction=0.3,
        emulator_late_max_seconds=300,
        emulator_live_fraction=0.05,
        emulator_duplicate_rate=0.3,
        emulator_empty_last_page_rate=0.3,
        emulator_search_calls_per_day=1_000_000,
        **fault_knobs,
    )
    steps = 12 if faults else 30
    async with (
        running_emulator(emulator_settings, now=START, frozen=True) as emulator,
        queue_tap(amqp, queue_names) as tap,
    ):
        env = fetcher_env(
            stack,
            queue_names,
            mongo_db.name,
            emulator,
            youtube_api_keys=fake_key("delivery"),
            poll_interval_seconds=STEP_SECONDS / 2,
            initial_lookback_seconds=1600,
            overlap_seconds=300,
            late_sweep_every=LATE_SWEEP_EVERY,
            youtube_request_timeout_seconds=0.5,
        )
        async with in_process_fetcher(env, EmulatorDrivenClock(emulator)) as fetcher:
            await wait_until(lambda: _led(fetcher), within=30, what="the fetcher to lead")
            for _ in range(steps):
                await _step(emulator, fetcher, STEP_SECONDS)
            truth = await emulator.visible()
            # Late videos that became visible in the last steps need one more sweep or two.
            for _ in range(2 * LATE_SWEEP_EVERY + 2):
                await _step(emulator, fetcher, STEP_SECONDS)
            await wait_until(lambda: _has(tap, truth.keys()), within=30, what="every visible video")
            final = await emulator.visible()
            _assert_exactly_once(tap, set(truth), set(final))

            metrics = await fetcher.metrics()
            if not faults:
                assert "tubewatch_fetcher_window_splits_total 0.0" not in metrics, "the >500 window was not split"
            state = await mongo_db[QUERY_STATE_COLLECTION].find_one({"_id": "cricket"})
            assert state is not None
            assert state["videos_published"] == len(tap.messages)
            assert state["watermark"] is not None

    # The run did meet what it claims to handle.
    late = [v for v in truth.values() if epoch(v["visibleAt"]) > epoch(v["publishedAt"])]
    assert len(late) > 10
    assert len(truth) > (250 if faults else 500)
    assert _pages_overlapped(emulator.calls), "no page repeated an item of the page before it"
    if faults:
        statuses = {call.status for call in emulator.calls}
        assert {500, 503} & statuses
    # Enriched from videos.list: durations and counts came with the messages.
    assert any(m.body.get("duration_seconds") for m in tap.messages)


async def _led(fetcher: InProcessFetcher) -> bool:
    return fetcher.leader.role == "leader"


async def _has(tap: QueueTap, ids: Any) -> bool:
    return set(ids) <= tap.ids()


def _pages_overlapped(calls: list[RecordedCall]) -> bool:
    pages = [c for c in calls if c.method == "search" and c.status == 200]
    return any(set(a.item_ids) & set(b.item_ids) for a, b in itertools.pairwise(pages) if b.params.get("pageToken"))


async def test_a_stale_page_token_restarts_the_walk_at_page_one(
    stack: StackSettings,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    amqp: aio_pika.abc.AbstractRobustConnection,
) -> None:
    emulator_settings = quiet_settings(emulator_videos_per_minute=6, emulator_backfill_seconds=1800)
    refused: list[RecordedCall] = []

    def stale_token_once(request: web.Request, calls: list[RecordedCall]) -> web.StreamResponse | None:
        if request.query.get("pageToken") and not refused:
            refused.append(calls[-1])
            return errors.error_response(errors.invalid_page_token())
        return None

    async with (
        running_emulator(emulator_settings, now=START, frozen=True) as emulator,
        queue_tap(amqp, queue_names) as tap,
    ):
        emulator.intercept = stale_token_once
        env = fetcher_env(
            stack,
            queue_names,
            mongo_db.name,
            emulator,
            youtube_api_keys=fake_key("tokens"),
            initial_lookback_seconds=1800,
        )
        truth = await emulator.visible()
        async with in_process_fetcher(env, EmulatorDrivenClock(emulator)):
            await wait_until(lambda: _has(tap, truth.keys()), within=30, what="every visible video")
        assert refused
        searches = [c for c in emulator.calls if c.method == "search"]
        after = searches[searches.index(refused[0]) + 1]
        assert after.params.get("pageToken") is None, "the walk did not restart at page one"
        assert after.params["publishedAfter"] == refused[0].params["publishedAfter"]
        assert max(tap.counts().values()) == 1
