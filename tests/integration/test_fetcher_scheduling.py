"""Rate-weighted scheduling against the emulator: intervals by upload rate, replanning, a budget too small.

The emulator's clock is frozen and moved by the test straight to each moment the fetcher wakes
(``advance_to_next_cycle``), so hours of quota-paced polling take seconds and every interval is
exact. The emulator gives each query its own upload rate (``EMULATOR_QUERY_VIDEOS_PER_MINUTE``)
or, for a change of rate, videos injected with publish times still to come.
"""

from __future__ import annotations

import itertools
import logging
from datetime import UTC, datetime
from statistics import median
from typing import Any

import aio_pika
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.common.fetcher_state import BUDGET_COLLECTION, BUDGET_ID
from services.common.settings import StackSettings
from services.common.timefmt import format_rfc3339
from services.common.topology import QueueNames
from services.youtube_emulator.testing import quiet_settings
from tests.integration.fetcher_support import (
    EmulatorDrivenClock,
    InProcessFetcher,
    RunningEmulator,
    advance_to_next_cycle,
    epoch,
    fake_key,
    fetcher_env,
    in_process_fetcher,
    queue_tap,
    running_emulator,
)

# One second past midnight in Los Angeles: a whole quota day ahead.
DAY_START = epoch("2026-11-24T08:00:01Z")
QUERIES = ("cricket", "world cup")


def _env(
    stack: StackSettings, names: QueueNames, db: str, emulator: RunningEmulator, **extra: object
) -> dict[str, str]:
    return fetcher_env(
        stack,
        names,
        db,
        emulator,
        youtube_api_keys=fake_key("schedule"),
        search_queries=",".join(QUERIES),
        poll_interval_seconds=10,
        initial_lookback_seconds=3600,
        lease_ttl_seconds=3600,  # the frozen clock is the lease's clock too: no renewal is missed
        **extra,
    )


def _planned(health: dict[str, Any]) -> dict[str, float]:
    return {name: q["interval_seconds"] for name, q in health["budget"]["queries"].items()}


def _head_polls(emulator: RunningEmulator, query: str, since: float = 0.0) -> list[float]:
    """When each poll of ``query`` began: its first search call (page one of a window)."""
    starts: list[float] = []
    for call in emulator.calls:
        first_page = call.method == "search" and call.params.get("q") == query and "pageToken" not in call.params
        if first_page and call.at >= since and (not starts or call.at - starts[-1] > 1):
            starts.append(call.at)
    return starts


async def _polls_until(emulator: RunningEmulator, fetcher: InProcessFetcher, query: str, count: int) -> None:
    for _ in range(2000):
        if len(_head_polls(emulator, query)) >= count:
            return
        await advance_to_next_cycle(emulator, fetcher)
    pytest.fail(f"{query!r} was not polled {count} times")


async def test_upload_rates_twenty_five_to_one_get_intervals_near_one_to_five(
    stack: StackSettings,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    amqp: aio_pika.abc.AbstractRobustConnection,
) -> None:
    settings = quiet_settings(
        search_queries=list(QUERIES),
        emulator_query_videos_per_minute={"cricket": 25.0, "world cup": 1.0},
        emulator_search_calls_per_day=100_000,
    )
    async with (
        running_emulator(settings, now=DAY_START, frozen=True) as emulator,
        queue_tap(amqp, queue_names),
    ):
        env = _env(stack, queue_names, mongo_db.name, emulator, youtube_search_calls_per_day=3500)
        async with in_process_fetcher(env, EmulatorDrivenClock(emulator)) as fetcher:
            await _polls_until(emulator, fetcher, "world cup", 10)
            health = await fetcher.health()
            metrics = await fetcher.metrics()
        budget = await mongo_db[BUDGET_COLLECTION].find_one({"_id": BUDGET_ID})
    planned = _planned(health)
    assert 4.0 <= planned["world cup"] / planned["cricket"] <= 6.25, planned
    assert health["budget"]["budget_too_small"] is False
    assert health["budget"]["queries"]["cricket"]["upload_rate_per_hour"] == pytest.approx(1500, rel=0.1)
    assert health["budget"]["queries"]["world cup"]["upload_rate_per_hour"] == pytest.approx(60, rel=0.25)
    # the polls themselves followed the plan: the last polls of each query, spaced 1:5
    busy = _head_polls(emulator, "cricket")[-10:]
    quiet = _head_polls(emulator, "world cup")[-5:]
    spacing = median(b - a for a, b in itertools.pairwise(quiet)) / median(b - a for a, b in itertools.pairwise(busy))
    assert 4.0 <= spacing <= 6.25, spacing
    # the calls the plan spends until the reset are no more than are left
    assert health["budget"]["planned_calls_until_reset"] <= health["budget"]["calls_left_today"] + 0.5
    assert 'tubewatch_fetcher_query_planned_interval_seconds{query="world cup"}' in metrics
    assert 'tubewatch_fetcher_query_freshness_seconds{quantile="0.99",query="cricket"}' in metrics
    assert budget is not None
    assert budget["planned_queries"] == list(QUERIES)
    assert budget["scheduling"] == "rate"


async def test_a_query_whose_upload_rate_rises_is_replanned_within_a_few_polls(
    stack: StackSettings,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    amqp: aio_pika.abc.AbstractRobustConnection,
) -> None:
    settings = quiet_settings(
        search_queries=list(QUERIES), emulator_videos_per_minute=1.0, emulator_search_calls_per_day=100_000
    )
    async with (
        running_emulator(settings, now=DAY_START, frozen=True) as emulator,
        queue_tap(amqp, queue_names),
    ):
        env = _env(stack, queue_names, mongo_db.name, emulator, youtube_search_calls_per_day=1500)
        async with in_process_fetcher(env, EmulatorDrivenClock(emulator)) as fetcher:
            await _polls_until(emulator, fetcher, "world cup", 6)
            before = _planned(await fetcher.health())
            assert before["world cup"] == pytest.approx(before["cricket"], rel=0.2)  # equal rates, equal shares
            # From now on "world cup" uploads 25 videos a minute (1 a minute before): publish times to come.
            changed_at = emulator.state.clock.now()
            for n in range(25 * 60):
                await emulator.admin(
                    "POST",
                    "/admin/videos",
                    json={
                        "title": f"world cup highlights {n}",
                        "query": "world cup",
                        "published_at": format_rfc3339(datetime.fromtimestamp(round(changed_at + 1 + n * 2.4), UTC)),
                    },
                )
            polls_after = 0
            replanned: dict[str, float] = {}
            while polls_after < 4:
                await advance_to_next_cycle(emulator, fetcher)
                polls_after = len(_head_polls(emulator, "world cup", since=changed_at))
                replanned = _planned(await fetcher.health())
                if replanned["cricket"] / replanned["world cup"] >= 2:
                    break
    # √(26/1) ≈ 5.1 in the end; from 1:1, twice as often within a few polls of the change
    assert replanned["cricket"] / replanned["world cup"] >= 2, (polls_after, replanned)
    assert polls_after <= 4


async def test_a_budget_too_small_for_the_longest_interval_stretches_every_interval_and_warns_once(
    stack: StackSettings,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    amqp: aio_pika.abc.AbstractRobustConnection,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = quiet_settings(
        search_queries=list(QUERIES), emulator_videos_per_minute=0.05, emulator_search_calls_per_day=100_000
    )
    async with (
        running_emulator(settings, now=DAY_START, frozen=True) as emulator,
        queue_tap(amqp, queue_names),
    ):
        # 30 calls a day cannot poll two queries every hour (48 calls): every interval stretches
        env = _env(stack, queue_names, mongo_db.name, emulator, youtube_search_calls_per_day=30)
        with caplog.at_level(logging.INFO, logger="services.fetcher.budget"):
            async with in_process_fetcher(env, EmulatorDrivenClock(emulator)) as fetcher:
                await _polls_until(emulator, fetcher, "world cup", 4)
                health = await fetcher.health()
        budget = await mongo_db[BUDGET_COLLECTION].find_one({"_id": BUDGET_ID})
    planned = _planned(health)
    assert health["budget"]["budget_too_small"] is True
    assert planned["cricket"] == pytest.approx(planned["world cup"])
    assert planned["cricket"] > 3600
    assert budget is not None and budget["budget_too_small"] is True
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "too small" in r.getMessage()]
    assert len(warnings) == 1
    starts = _head_polls(emulator, "cricket")
    assert min(b - a for a, b in itertools.pairwise(starts[1:])) > 3600
