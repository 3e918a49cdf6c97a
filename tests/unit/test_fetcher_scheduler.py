"""The scheduler: work items with their own next-due times, one cycle per turn, parked without keys."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from prometheus_client import CollectorRegistry

from services.fetcher.budget import Budget, BudgetPlanner, Plan
from services.fetcher.gateway import NoUsableKeyError
from services.fetcher.keys import KeyPool
from services.fetcher.lease import LeaderLease
from services.fetcher.metrics import FetcherMetrics
from services.fetcher.scheduler import IntervalPolicy, Scheduler, Spend, WorkItem, same_interval
from services.fetcher.settings import parse_key_entries
from services.fetcher.store import FetcherStore

KEY = "AIzaFAKEaaaaaaaaaaaaaaaaaaaaaaaaaaaa0001"
NOON = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)  # 12:00 in Los Angeles
MIDNIGHT_PT = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


class JumpingClock:
    """A clock whose sleeps end at once, the clock moved to the moment slept to."""

    def __init__(self, now: datetime) -> None:
        self.moment = now

    def now(self) -> datetime:
        return self.moment

    async def sleep_until(self, moment: datetime) -> None:
        self.moment = max(self.moment, moment)


class Item:
    """A work item that records when it was polled and may spend, fail or run out of keys."""

    def __init__(self, name: str, clock: JumpingClock, polls: list[tuple[str, datetime]]) -> None:
        self.name = name
        self._clock = clock
        self._polls = polls
        self.spends = 1
        self.fail_with: Exception | None = None
        self.on_poll: Any = None
        self.loaded_at: datetime | None = None

    @property
    def log_context(self) -> dict[str, str]:
        return {"item": self.name}

    async def load(self, now: datetime) -> None:
        self.loaded_at = now

    async def poll(self, spend: Spend) -> None:
        self._polls.append((self.name, self._clock.now()))
        spend.recurring_search_calls += self.spends
        if self.on_poll is not None:
            self.on_poll()
        if self.fail_with is not None:
            raise self.fail_with


Rig = tuple[Scheduler, JumpingClock, KeyPool, BudgetPlanner, list[Item], list[tuple[str, datetime]]]


def make(interval: IntervalPolicy | None = None, names: tuple[str, ...] = ("a", "b"), poll_interval: float = 60) -> Rig:
    clock = JumpingClock(NOON)
    pool = KeyPool(parse_key_entries([KEY]), search_calls_per_day=1_000_000)
    metrics = FetcherMetrics(CollectorRegistry())
    # No token: the budget is planned and shown but never saved, so no MongoDB is needed.
    lease = LeaderLease(cast(Any, None), "test", 15)
    planner = BudgetPlanner(poll_interval, len(names), late_sweep_every=6)
    budget = Budget(planner, pool=pool, store=cast(FetcherStore, None), lease=lease, metrics=metrics)
    scheduler = Scheduler(clock=clock, pool=pool, budget=budget, metrics=metrics, interval=interval or same_interval)
    polls: list[tuple[str, datetime]] = []
    items = [Item(name, clock, polls) for name in names]
    for item in items:
        scheduler.register(item)
    return scheduler, clock, pool, planner, items, polls


async def test_every_item_is_polled_each_cycle_at_the_budgets_interval() -> None:
    scheduler, _, _, _, items, polls = make()
    await scheduler.load(NOON)
    assert [item.loaded_at for item in items] == [NOON, NOON]
    for _ in range(3):
        await scheduler.turn(asyncio.Event())
    assert scheduler.budget.plan is not None
    interval = scheduler.budget.plan.effective_interval
    assert interval == pytest.approx(60)  # the POLL_INTERVAL_SECONDS floor under a large budget
    starts = [NOON + timedelta(seconds=n * interval) for n in range(3)]
    assert [name for name, _ in polls] == ["a", "b"] * 3
    for (_, at), start in zip(polls, [s for s in starts for _ in range(2)], strict=True):
        assert abs((at - start).total_seconds()) < 1
    assert scheduler.cycles == 3
    assert scheduler.last_cycle_at is not None
    assert scheduler.next_cycle_at is None  # set only while the scheduler sleeps


async def test_items_with_their_own_intervals_are_polled_when_each_is_due() -> None:
    def interval(item: WorkItem, plan: Plan) -> float:
        return {"a": 100.0, "b": 250.0}[cast(Item, item).name]

    scheduler, _, _, _, _, polls = make(interval)
    for _ in range(5):
        await scheduler.turn(asyncio.Event())
    seconds = [(name, round((at - NOON).total_seconds())) for name, at in polls]
    assert seconds == [("a", 0), ("b", 0), ("a", 100), ("a", 200), ("b", 250), ("a", 300)]
    assert scheduler.cycles == 5


async def test_the_catch_up_cycle_is_not_counted_as_a_cycles_cost() -> None:
    scheduler, _, _, planner, items, _ = make()
    for item in items:
        item.spends = 5
    await scheduler.turn(asyncio.Event())
    assert planner.calls_per_cycle == 2  # the floor: one call per item
    await scheduler.turn(asyncio.Event())
    assert planner.calls_per_cycle == 10
    scheduler.catch_up()  # a new lease: the next cycle catches up again
    for item in items:
        item.spends = 50
    await scheduler.turn(asyncio.Event())
    assert planner.calls_per_cycle == 10


async def test_a_failing_item_does_not_stop_the_others() -> None:
    scheduler, _, _, _, items, polls = make()
    items[0].fail_with = RuntimeError("MongoDB away")
    await scheduler.turn(asyncio.Event())
    assert [name for name, _ in polls] == ["a", "b"]


async def test_keys_running_out_end_the_cycle_park_the_scheduler_and_leave_every_item_due() -> None:
    scheduler, clock, pool, _, items, polls = make()

    def run_out() -> None:
        pool.park_project(pool.projects()[0], MIDNIGHT_PT, "403 quotaExceeded", clock.now())

    items[0].on_poll = run_out
    items[0].fail_with = NoUsableKeyError("no key")
    await scheduler.turn(asyncio.Event())
    assert [name for name, _ in polls] == ["a"]  # the cycle ended there
    assert clock.now() == NOON  # and nothing slept: the next turn parks
    items[0].on_poll = items[0].fail_with = None
    await scheduler.turn(asyncio.Event())
    assert scheduler.resume_at == MIDNIGHT_PT
    assert clock.now() == MIDNIGHT_PT  # slept until the reset, no call
    assert scheduler.cycles == 1
    await scheduler.turn(asyncio.Event())
    assert scheduler.resume_at is None
    assert polls[1:] == [("a", MIDNIGHT_PT), ("b", MIDNIGHT_PT)]  # both due at once after the reset


async def test_a_wake_ends_the_sleep_between_cycles() -> None:
    scheduler, clock, _, _, _, polls = make()
    wake = asyncio.Event()
    wake.set()
    await scheduler.turn(wake)
    assert clock.now() == NOON  # polled, then woken at once instead of sleeping
    assert len(polls) == 2
