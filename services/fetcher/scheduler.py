"""The scheduler: work items, each with its own next-due time, polled within the quota budget.

A work item is one thing the fetcher polls — today a search query (``search_query.py``). Each
turn of the scheduler runs a **cycle**: one poll of every item that is due, in the order they
were registered. After the cycle the budget plans afresh from what every item measured
(``plan_inputs``), and every item is due again one planned interval after the start of the cycle
that last polled it — so a new plan moves the items not polled too. The interval comes from the
interval policy: by default the item's own planned interval (``planned_interval``);
``same_interval`` gives every item the budget's effective interval. With every key parked the
scheduler sleeps until the earliest reset, making no call. Another kind of item is another class
with ``name``, ``plan_inputs``, ``load`` and ``poll``, registered here; neither the scheduler nor
the walk changes for it.

A scheduler spends one quota: its ``gate`` says when a call may be made again (the key pool for
search; the units pool for channel reads, ``units_budget.py``) and its budget plans by it. So the
search queries and the followed channels are two schedulers side by side under one leader. Its
optional ``hooks`` choose the items before they are loaded (the sources and the followed set
change) and act after every cycle (the channels' new videos, batched across channels, go out
there). Items may be registered and unregistered while a cycle runs (the sources changed): a new
one is due at once, a removed one is skipped by the cycle under way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from services.common.poll_plan import ItemInputs
from services.fetcher.budget import Plan
from services.fetcher.clock import Clock, sleep_unless
from services.fetcher.gateway import NoUsableKeyError
from services.fetcher.keys import KeyCounts
from services.fetcher.lease import LeaseLostError
from services.fetcher.metrics import FetcherMetrics

logger = logging.getLogger(__name__)


class WorkItem(Protocol):
    @property
    def name(self) -> str:
        """What names the item in the plan (unique among the items)."""
        ...

    @property
    def log_context(self) -> dict[str, str]:
        """What names the item in a log line (never a key)."""
        ...

    def plan_inputs(self) -> ItemInputs:
        """What the planner needs of the item: its measured upload rate and cost, and its weight."""
        ...

    async def load(self, now: datetime) -> None:
        """Read the item's persisted state: a new leader starts from what the last one saved."""
        ...

    async def poll(self) -> None:
        """Poll once, save the item's state; NoUsableKeyError and LeaseLostError end the cycle."""
        ...


class QuotaGate(Protocol):
    def resume_at(self, now: datetime) -> datetime | None:
        """When a call may be made again, or None while one may be made now."""
        ...

    def counts(self, now: datetime) -> KeyCounts:
        """The keys by state, for the log line of a parked scheduler."""
        ...


class ScheduleBudget(Protocol):
    plan: Plan | None

    def refresh(self, now: datetime, *, parked: bool, items: Sequence[ItemInputs] | None = None) -> Plan:
        """Plan afresh from the items' inputs (as measured now, or as last given)."""
        ...

    async def save(self, now: datetime, *, resume_at: datetime | None) -> None:
        """Persist the plan for the API (fenced by the lease)."""
        ...

    def health(self, now: datetime) -> dict[str, Any]:
        """The budget's part of ``/healthz``."""
        ...


class CycleHooks(Protocol):
    async def prepare(self, scheduler: Scheduler, now: datetime) -> None:
        """Before the items are loaded (a new leader): register the items there are."""
        ...

    async def after_cycle(self, scheduler: Scheduler) -> None:
        """After every turn's cycle, or in its place when nothing was due (not after a lost lease)."""
        ...


# Seconds from the start of a cycle until an item it polled is due again.
IntervalPolicy = Callable[[WorkItem, Plan], float]


def planned_interval(item: WorkItem, plan: Plan) -> float:
    """The item's own interval in the plan (by QUERY_SCHEDULING)."""
    return plan.interval(item.name)


def same_interval(item: WorkItem, plan: Plan) -> float:
    """Every item polled as often as the budget allows all of them together."""
    return plan.effective_interval


@dataclass
class _Scheduled:
    item: WorkItem
    due: datetime | None = None  # None: due at once
    started: datetime | None = None  # the start of the cycle that last polled it
    removed: bool = False  # unregistered: a cycle under way skips it


class Scheduler:
    def __init__(
        self,
        *,
        clock: Clock,
        pool: QuotaGate,
        budget: ScheduleBudget,
        metrics: FetcherMetrics,
        interval: IntervalPolicy = planned_interval,
        hooks: CycleHooks | None = None,
    ) -> None:
        self._clock = clock
        self._pool = pool
        self.budget = budget
        self._metrics = metrics
        self._interval = interval
        self._hooks = hooks
        self._scheduled: list[_Scheduled] = []
        self.cycles = 0
        self.last_cycle_at: datetime | None = None
        # While the scheduler waits between cycles: when the next one starts (None while one runs).
        self.next_cycle_at: datetime | None = None
        # While every key is parked or disabled: the earliest reset.
        self.resume_at: datetime | None = None

    def register(self, item: WorkItem) -> None:
        self._scheduled.append(_Scheduled(item))

    def unregister(self, name: str) -> None:
        """The item is never polled again, not even later in a cycle under way (a poll in flight ends)."""
        for scheduled in self._scheduled:
            if scheduled.item.name == name:
                scheduled.removed = True
        self._scheduled = [s for s in self._scheduled if s.item.name != name]

    @property
    def items(self) -> list[WorkItem]:
        return [s.item for s in self._scheduled]

    async def load(self, now: datetime) -> None:
        if self._hooks is not None:
            await self._hooks.prepare(self, now)
        for scheduled in self._scheduled:
            await scheduled.item.load(now)

    def catch_up(self) -> None:
        """Just took the lease: every item is due at once (its poll measures the time since its last one)."""
        for scheduled in self._scheduled:
            scheduled.due = None

    async def turn(self, wake: asyncio.Event) -> None:
        """One cycle of the due items, then sleep until the next is due (or the keys' reset, or ``wake``)."""
        now = self._clock.now()
        resume_at = self._pool.resume_at(now)
        if resume_at is not None:
            await self._park(now, resume_at, wake)
            return
        if self.resume_at is not None:
            logger.info("the quota reset: polling again")
        self.resume_at = None
        due = [s for s in self._scheduled if s.due is None or s.due <= now]
        if due:
            with self._metrics.cycle_seconds.time():
                await self._cycle(due)
        if self._hooks is not None:
            await self._hooks.after_cycle(self)
        ended = self._clock.now()
        if self._pool.resume_at(ended) is not None:
            return  # the keys ran out during the cycle: the next turn parks the scheduler
        for scheduled in due:
            scheduled.started = now
        plan = self.budget.refresh(ended, parked=False, items=[s.item.plan_inputs() for s in self._scheduled])
        await self.budget.save(ended, resume_at=None)
        for scheduled in self._scheduled:
            if scheduled.started is not None:
                interval = timedelta(seconds=self._interval(scheduled.item, plan))
                scheduled.due = max(ended, scheduled.started + interval)
        # An item registered after the cycle began (hooks) is due at once; without items, the hooks
        # look again one effective interval later.
        due_at = [ended if s.due is None else s.due for s in self._scheduled]
        self.next_cycle_at = min(due_at, default=ended + timedelta(seconds=plan.effective_interval))
        try:
            await sleep_unless(self._clock, self.next_cycle_at, wake)
        finally:
            self.next_cycle_at = None

    async def _park(self, now: datetime, resume_at: datetime, wake: asyncio.Event) -> None:
        if self.resume_at is None:
            counts = self._pool.counts(now)
            logger.warning(
                "every key is parked or disabled: no call until the quota resets",
                extra={"resume_at": resume_at.isoformat(), "parked": counts.parked, "disabled": counts.disabled},
            )
        self.resume_at = resume_at
        self.budget.refresh(now, parked=True)
        await self.budget.save(now, resume_at=resume_at)
        await sleep_unless(self._clock, resume_at, wake)

    async def _cycle(self, due: list[_Scheduled]) -> None:
        self.cycles += 1
        for scheduled in due:
            if scheduled.removed:
                continue
            try:
                await scheduled.item.poll()
            except NoUsableKeyError:
                break  # the next turn notices and sleeps until the reset
            except LeaseLostError:
                raise
            except Exception:
                logger.exception("poll failed; the next cycle tries again", extra=scheduled.item.log_context)
        self.last_cycle_at = self._clock.now()
