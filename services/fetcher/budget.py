"""The quota budget: how often the fetcher may poll so the day's calls last until the reset.

The effective interval is the larger of ``POLL_INTERVAL_SECONDS`` and the interval that spreads
the search calls left on all usable projects evenly over the time to the next midnight Pacific
time, for all queries together. A cycle's cost is measured over recent cycles — head polls with
their extra pages, and the late sweeps that stand in for a head poll every ``LATE_SWEEP_EVERY``
polls of a query — and never taken below its floor of one call per query. Catch-up walks
(the first cycle after a start, gaps left by cut walks) do not recur, and the calls they spent
are already out of the calls left, so they are not counted as a cycle's cost.

``Budget`` applies the plan: it keeps the budget's gauges current, saves the plan in
``fetcher_budget`` for the API's status page and writes the budget's part of ``/healthz``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime
from statistics import fmean
from typing import Any

from services.common.fetcher_state import BudgetDoc
from services.common.timefmt import format_rfc3339
from services.fetcher.clock import next_reset
from services.fetcher.keys import KeyPool
from services.fetcher.lease import LeaderLease
from services.fetcher.metrics import FetcherMetrics
from services.fetcher.store import FetcherStore


@dataclass(frozen=True)
class Plan:
    calls_left: int
    calls_per_cycle: float
    reset_at: datetime
    seconds_to_reset: float
    effective_interval: float


class BudgetPlanner:
    def __init__(self, poll_interval: float, queries: int, late_sweep_every: int) -> None:
        self._poll_interval = poll_interval
        self.floor_per_cycle = float(queries)
        # Long enough to hold a few sweeps, short enough to follow a change in upload rate.
        self._recent: deque[int] = deque(maxlen=max(12, 3 * late_sweep_every))

    def record_cycle(self, search_calls: int) -> None:
        self._recent.append(search_calls)

    @property
    def calls_per_cycle(self) -> float:
        measured = fmean(self._recent) if self._recent else 0.0
        return max(self.floor_per_cycle, measured)

    def plan(self, pool: KeyPool, now: datetime) -> Plan:
        reset_at = next_reset(now)
        to_reset = max(0.0, (reset_at - now).total_seconds())
        left = pool.calls_left(now)
        per_cycle = self.calls_per_cycle
        if left <= 0:
            interval = to_reset
        else:
            interval = max(self._poll_interval, to_reset * per_cycle / left)
        return Plan(
            calls_left=left,
            calls_per_cycle=per_cycle,
            reset_at=reset_at,
            seconds_to_reset=to_reset,
            effective_interval=interval,
        )


class Budget:
    """The planner's latest plan, published as gauges, as ``fetcher_budget`` and in ``/healthz``."""

    def __init__(
        self,
        planner: BudgetPlanner,
        *,
        pool: KeyPool,
        store: FetcherStore,
        lease: LeaderLease,
        metrics: FetcherMetrics,
    ) -> None:
        self._planner = planner
        self._pool = pool
        self._store = store
        self._lease = lease
        self._metrics = metrics
        self.plan: Plan | None = None

    def record_cycle(self, search_calls: int) -> None:
        """The search calls of a cycle that recur every cycle (head polls and sweeps, not gaps)."""
        self._planner.record_cycle(search_calls)

    def refresh(self, now: datetime, *, parked: bool) -> Plan:
        """Plan afresh and set the budget's gauges; ``parked``: every key waits for the reset."""
        plan = self._planner.plan(self._pool, now)
        counts = self._pool.counts(now)
        self.plan = plan
        self._metrics.effective_interval.set(plan.effective_interval)
        self._metrics.calls_left.set(plan.calls_left)
        self._metrics.seconds_to_reset.set(plan.seconds_to_reset)
        self._metrics.all_keys_parked.set(1 if parked else 0)
        for state, count in (("live", counts.live), ("parked", counts.parked), ("disabled", counts.disabled)):
            self._metrics.keys.labels(state).set(count)
        return plan

    async def save(self, now: datetime, *, resume_at: datetime | None) -> None:
        """Persist the keys' states and the plan (fenced by the lease; nothing without a lease)."""
        plan = self.plan or self.refresh(now, parked=resume_at is not None)
        counts = self._pool.counts(now)
        token = self._lease.token
        if token is None:
            return
        await self._store.save_keys(self._pool.take_dirty(now), token)
        await self._store.save_budget(
            BudgetDoc(
                calls_left_today=plan.calls_left,
                effective_interval_seconds=plan.effective_interval,
                reset_at=plan.reset_at,
                keys_live=counts.live,
                keys_parked=counts.parked,
                keys_disabled=counts.disabled,
                updated_at=now,
                calls_spent_today=self._pool.calls_spent(now),
                search_calls_per_day=self._pool.search_calls_per_day,
                projects=len(self._pool.projects()),
                calls_per_cycle=plan.calls_per_cycle,
                all_keys_parked=resume_at is not None,
                resume_at=resume_at,
                leader=self._lease.holder,
            ),
            token,
        )

    def health(self, now: datetime) -> dict[str, Any]:
        """The budget and the keys' states, as ``/healthz`` shows them to a leader's callers."""
        plan = self.plan or self._planner.plan(self._pool, now)
        counts = self._pool.counts(now)
        return {
            "budget": {
                "calls_left_today": plan.calls_left,
                "calls_per_cycle": round(plan.calls_per_cycle, 3),
                "effective_interval_seconds": round(plan.effective_interval, 3),
                "seconds_to_reset": round(plan.seconds_to_reset, 1),
                "reset_at": format_rfc3339(plan.reset_at),
            },
            "keys": {"live": counts.live, "parked": counts.parked, "disabled": counts.disabled},
        }
