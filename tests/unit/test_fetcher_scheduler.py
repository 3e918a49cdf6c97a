"""The scheduler: work items with their own next-due times, one cycle per turn, replanned, parked without keys."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from prometheus_client import CollectorRegistry

from services.common.poll_plan import ItemInputs
from services.fetcher.budget import Budget, BudgetPlanner, Plan, PlanBounds
from services.fetcher.gateway import NoUsableKeyError
from services.fetcher.keys import KeyPool
from services.fetcher.lease import LeaderLease
from services.fetcher.metrics import FetcherMetrics
from services.fetcher.scheduler import IntervalPolicy, Scheduler, WorkItem, planned_interval, same_interval
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
        self.upload_rate = 0.0
        self.fail_with: Exception | None = None
        self.on_poll: Any = None
        self.loaded_at: datetime | None = None

    @property
    def log_context(self) -> dict[str, str]:
        return {"item": self.name}

    def plan_inputs(self) -> ItemInputs:
        return ItemInputs(self.name, upload_rate=self.upload_rate)

    async def load(self, now: datetime) -> None:
        self.loaded_at = now

    async def poll(self) -> None:
        self._polls.append((self.name, self._clock.now()))
        if self.on_poll is not None:
            self.on_poll()
        if self.fail_with is not None:
            raise self.fail_with


Rig = tuple[Scheduler, JumpingClock, KeyPool, BudgetPlanner, list[Item], list[tuple[str, datetime]]]


def make(
    interval: IntervalPolicy | None = None,
    names: tuple[str, ...] = ("a", "b"),
    poll_interval: float = 60,
    calls_per_day: int = 1_000_000,
) -> Rig:
    clock = JumpingClock(NOON)
    pool = KeyPool(parse_key_entries([KEY]), search_calls_per_day=calls_per_day)
    metrics = FetcherMetrics(CollectorRegistry())
    # No token: the budget is planned and shown but never saved, so no MongoDB is needed.
    lease = LeaderLease(cast(Any, None), "test", 15)
    planner = BudgetPlanner(PlanBounds(poll_interval=poll_interval, max_query_interval=3600, max_pages_per_cycle=20))
    budget = Budget(planner, pool=pool, store=cast(FetcherStore, None), lease=lease, metrics=metrics)
    scheduler = Scheduler(clock=clock, pool=pool, budget=budget, metrics=metrics, interval=interval or planned_interval)
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


async def test_items_are_polled_at_their_planned_intervals_and_a_new_plan_moves_the_ones_not_polled() -> None:
    # 12 hours to the reset, 100 calls: 1/Ta + 1/Tb = 100 / 43,200 s, Ta = Tb / 5 (rates 25:1)
    scheduler, _, _, _, items, polls = make(poll_interval=10, calls_per_day=100)
    items[0].upload_rate, items[1].upload_rate = 25 / 3600, 1 / 3600
    await scheduler.turn(asyncio.Event())
    plan = scheduler.budget.plan
    assert plan is not None
    assert plan.interval("a") == pytest.approx(518.4)
    assert plan.interval("b") == pytest.approx(2592)
    await scheduler.turn(asyncio.Event())
    assert polls[-1] == ("a", NOON + timedelta(seconds=518.4))
    # b's rate rises to a's: after the next cycle b is due at once, long before its old due time
    items[1].upload_rate = items[0].upload_rate
    await scheduler.turn(asyncio.Event())
    await scheduler.turn(asyncio.Event())
    (a, a_at), (b, b_at) = polls[-2:]
    assert (a, b) == ("a", "b")
    assert a_at == b_at < NOON + timedelta(seconds=1100)  # its old plan had it due at 2,592 s
    replanned = scheduler.budget.plan
    assert replanned is not None
    assert replanned.interval("a") == pytest.approx(replanned.interval("b"))


async def test_equal_scheduling_gives_every_item_the_effective_interval() -> None:
    scheduler, _, _, _, items, _ = make(same_interval, poll_interval=10, calls_per_day=100)
    items[0].upload_rate = 25 / 3600
    await scheduler.turn(asyncio.Event())
    plan = scheduler.budget.plan
    assert plan is not None
    assert plan.effective_interval == pytest.approx(43_200 * 2 / 100)


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
