"""The key pool against the emulator's quota, in both quota models, across midnight Pacific time.

Keys ``bad good1 good2``: ``bad`` is disabled after its first call; ``good1`` is parked on its
first daily-exhaustion answer (429 "per day" in the search-bucket model, 403 quotaExceeded in
the units model) and never called again before the reset; ``good2`` takes over in the same
cycle; with every key parked the fetcher makes no call at all (not even after a restart, since
the parking is persisted) until the emulator's clock passes midnight in Los Angeles.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aio_pika
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.common.fetcher_state import BUDGET_COLLECTION, BUDGET_ID, KEY_STATE_COLLECTION
from services.common.redact import key_fingerprint
from services.common.settings import StackSettings
from services.common.topology import QueueNames
from services.youtube_emulator.testing import quiet_settings
from tests.integration.fetcher_support import (
    EmulatorDrivenClock,
    RunningEmulator,
    epoch,
    fake_key,
    fetcher_env,
    in_process_fetcher,
    queue_tap,
    running_emulator,
)
from tests.waiting import wait_until

BAD, GOOD1, GOOD2 = fake_key("bad"), fake_key("good1"), fake_key("good2")
# 23:55 in Los Angeles (PST, UTC-8): the reset is five minutes away.
BEFORE_MIDNIGHT = epoch("2026-11-25T07:55:00Z")
MIDNIGHT_PT = epoch("2026-11-25T08:00:00Z")


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"metric {name} not found")


@pytest.mark.parametrize(
    ("model", "exhausted"),
    [("search_bucket", (429, "rateLimitExceeded")), ("units", (403, "quotaExceeded"))],
)
async def test_keys_are_disabled_parked_and_resumed_after_midnight_pacific(
    model: str,
    exhausted: tuple[int, str],
    stack: StackSettings,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    amqp: aio_pika.abc.AbstractRobustConnection,
) -> None:
    emulator_settings = quiet_settings(
        emulator_quota_model=model,
        # search_bucket: 3 searches a day per project; units: 300 units (search costs 100)
        emulator_search_calls_per_day=3,
        emulator_units_per_day=300,
        emulator_project_budgets={GOOD2: 6 if model == "search_bucket" else 600},
        emulator_invalid_keys=[BAD],
        emulator_backfill_seconds=600,
    )
    async with (
        running_emulator(emulator_settings, now=BEFORE_MIDNIGHT) as emulator,
        queue_tap(amqp, queue_names) as tap,
    ):
        clock = EmulatorDrivenClock(emulator)
        env = fetcher_env(
            stack,
            queue_names,
            mongo_db.name,
            emulator,
            youtube_api_keys=f"{BAD} {GOOD1} {GOOD2}",
            poll_interval_seconds=0.2,
            initial_lookback_seconds=300,
            # the emulator runs out first: its answers, not our own count, park the keys
            youtube_search_calls_per_day=1000,
        )
        async with in_process_fetcher(env, clock) as fetcher:

            async def all_parked() -> bool:
                return bool((await fetcher.health()).get("all_keys_parked"))

            await wait_until(all_parked, within=60, what="every key parked")
            parked_at = emulator.state.clock.now()
            calls_when_parked = len(emulator.calls)
            cycles_when_parked = fetcher.scheduler.cycles

            _assert_first_day(emulator, exhausted)
            assert tap.ids(), "nothing was published before the keys ran out"

            # Parked: no call, no cycle (no busy loop), and health, metrics and Mongo all say so.
            health = await fetcher.health()
            assert health["keys"] == {"live": 0, "parked": 2, "disabled": 1}
            assert health["resume_at"] == "2026-11-25T08:00:00Z"
            assert health["budget"]["calls_left_today"] == 0
            metrics = await fetcher.metrics()
            assert _metric(metrics, "tubewatch_fetcher_all_keys_parked") == 1.0
            assert 'tubewatch_fetcher_keys{state="parked"} 2.0' in metrics
            assert 'tubewatch_fetcher_keys{state="disabled"} 1.0' in metrics
            keys = {doc["_id"]: doc async for doc in mongo_db[KEY_STATE_COLLECTION].find()}
            assert keys[key_fingerprint(BAD)]["state"] == "disabled"
            assert "API_KEY_INVALID" in keys[key_fingerprint(BAD)]["disabled_reason"]
            for good in (GOOD1, GOOD2):
                assert keys[key_fingerprint(good)]["state"] == "parked"
                assert keys[key_fingerprint(good)]["parked_until"].isoformat() == "2026-11-25T08:00:00+00:00"
            budget = await mongo_db[BUDGET_COLLECTION].find_one({"_id": BUDGET_ID})
            assert budget is not None
            assert budget["all_keys_parked"] is True
            assert budget["calls_left_today"] == 0
            await asyncio.sleep(1.0)  # an observation window: nothing may happen in it
            assert len(emulator.calls) == calls_when_parked
            assert fetcher.scheduler.cycles == cycles_when_parked

        # A restart reads the parking from Mongo: it spends no call rediscovering it.
        async with in_process_fetcher(env, clock) as fetcher:
            await wait_until(all_parked, within=30, what="the restarted fetcher to see every key parked")
            await asyncio.sleep(0.5)
            assert len(emulator.calls) == calls_when_parked

            # Midnight in Los Angeles: the quota is back and polling resumes.
            emulator.set_clock(MIDNIGHT_PT + 5)

            async def resumed() -> bool:
                return any(c.at >= MIDNIGHT_PT and c.status == 200 and c.method == "search" for c in emulator.calls)

            await wait_until(resumed, within=30, what="polling to resume after midnight PT")
            health = await fetcher.health()
            assert health["all_keys_parked"] is False

    # Between the parking and midnight not a single call went out.
    assert not [c for c in emulator.calls if parked_at <= c.at < MIDNIGHT_PT]


def _assert_first_day(emulator: RunningEmulator, exhausted: tuple[int, str]) -> None:
    day = [c for c in emulator.calls if c.at < MIDNIGHT_PT]
    # bad: one call, refused as invalid, then never again that day
    bad_calls = [c for c in day if c.key == BAD]
    assert [(c.status, c.method) for c in bad_calls] == [(400, "search")]
    assert day[0].key == BAD

    for key in (GOOD1, GOOD2):
        calls = [c for c in day if c.key == key]
        statuses = [(c.status, c.reasons[:1]) for c in calls]
        first_exhausted = next(
            i for i, c in enumerate(calls) if (c.status, c.reasons[:1]) == (exhausted[0], exhausted[1:])
        )
        # every call before the exhaustion answer succeeded, and the exhaustion answer was the last call
        assert all(status == 200 for status, _ in statuses[:first_exhausted]), statuses
        assert first_exhausted == len(calls) - 1, f"{key[-4:]} was called after its daily exhaustion: {statuses}"

    # good2 took over at once: the very next call repeats good1's refused request with good2
    index = next(i for i, c in enumerate(day) if c.key == GOOD1 and c.status == exhausted[0])
    refused, retried = day[index], day[index + 1]
    assert retried.key == GOOD2
    assert retried.method == refused.method
    assert retried.window_and_page == refused.window_and_page
