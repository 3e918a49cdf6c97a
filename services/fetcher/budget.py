"""The quota budget: how often each query may be polled so the day's calls last until the reset.

``BudgetPlanner`` asks the poll planner (``services/common/poll_plan.py``) for a plan over the
search calls left on all usable projects and the seconds to the next midnight Pacific time, from
what each work item measured (upload rate, calls per second of interval) and its weight. Under
``QUERY_SCHEDULING=rate`` each query gets its own interval (poll rate ∝ √ upload rate), between
``POLL_INTERVAL_SECONDS`` and ``MAX_QUERY_INTERVAL_SECONDS``; under ``equal`` every query gets
the same one. The **effective interval** is that equal interval in either case — what every query
would get if they shared the budget evenly — and ``calls_per_cycle`` the calls one poll of every
query costs at it.

``Budget`` applies the plan: it keeps the budget's gauges (and each query's planned interval, calls
a day, expected delay and upload rate) current, saves the planner's inputs in ``fetcher_budget``
for the API, writes the budget's part of ``/healthz``, and logs one WARNING when the budget becomes
too small to poll every query every ``MAX_QUERY_INTERVAL_SECONDS`` (and one INFO when it no longer is).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from services.common.fetcher_state import BudgetDoc
from services.common.poll_plan import ItemInputs, PlanInputs, PollPlan, Scheduling, plan_polls
from services.common.timefmt import format_rfc3339
from services.fetcher.clock import next_reset
from services.fetcher.keys import KeyPool
from services.fetcher.lease import LeaderLease
from services.fetcher.metrics import FetcherMetrics
from services.fetcher.store import FetcherStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    calls_left: int
    calls_per_cycle: float
    reset_at: datetime
    seconds_to_reset: float
    effective_interval: float
    polls: PollPlan
    # The calls left cannot cover every query at MAX_QUERY_INTERVAL_SECONDS (keys parked aside).
    budget_too_small: bool = False

    def interval(self, name: str) -> float:
        """The item's planned interval (the effective interval for an item the plan does not know)."""
        planned = self.polls.interval(name)
        return self.effective_interval if planned is None else planned


@dataclass(frozen=True)
class PlanBounds:
    """What the planner is given besides the items: the settings of the same names."""

    poll_interval: float
    max_query_interval: float
    max_pages_per_cycle: int
    scheduling: Scheduling = "rate"


class BudgetPlanner:
    def __init__(self, bounds: PlanBounds) -> None:
        self.bounds = bounds

    def inputs(self, pool: KeyPool, now: datetime, items: Sequence[ItemInputs]) -> PlanInputs:
        reset_at = next_reset(now)
        return PlanInputs(
            items=[_capped(item, self.bounds.max_pages_per_cycle) for item in items],
            calls_left=pool.calls_left(now),
            seconds_to_reset=max(0.0, (reset_at - now).total_seconds()),
            min_interval=self.bounds.poll_interval,
            max_interval=self.bounds.max_query_interval,
        )

    def plan(self, pool: KeyPool, now: datetime, items: Sequence[ItemInputs]) -> Plan:
        inputs = self.inputs(pool, now, items)
        equal = plan_polls(inputs, "equal")
        polls = equal if self.bounds.scheduling == "equal" else plan_polls(inputs, self.bounds.scheduling)
        if equal.items:
            effective = equal.items[0].interval
            per_cycle = sum(item.cost(effective) for item in inputs.items)
        else:
            effective = max(self.bounds.poll_interval, inputs.seconds_to_reset if inputs.calls_left <= 0 else 0.0)
            per_cycle = 0.0
        return Plan(
            calls_left=int(inputs.calls_left),
            calls_per_cycle=per_cycle,
            reset_at=next_reset(now),
            seconds_to_reset=inputs.seconds_to_reset,
            effective_interval=effective,
            polls=polls,
            budget_too_small=polls.starved and inputs.calls_left > 0,
        )


def _capped(item: ItemInputs, max_pages: int) -> ItemInputs:
    """A poll reads at most MAX_PAGES_PER_CYCLE pages (the rest waits as a gap)."""
    return item if item.max_calls_per_poll <= max_pages else replace(item, max_calls_per_poll=float(max_pages))


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
        self._items: Sequence[ItemInputs] = ()

    def refresh(self, now: datetime, *, parked: bool, items: Sequence[ItemInputs] | None = None) -> Plan:
        """Plan afresh and set the gauges; ``parked``: every key waits for the reset; ``items``: as measured now."""
        if items is not None:
            self._items = items
        plan = self._planner.plan(self._pool, now, self._items)
        too_small = plan.budget_too_small and not parked
        plan = replace(plan, budget_too_small=too_small)
        self._tell_budget_change(plan)
        self.plan = plan
        counts = self._pool.counts(now)
        self._metrics.effective_interval.set(plan.effective_interval)
        self._metrics.calls_left.set(plan.calls_left)
        self._metrics.seconds_to_reset.set(plan.seconds_to_reset)
        self._metrics.all_keys_parked.set(1 if parked else 0)
        self._metrics.budget_too_small.set(1 if too_small else 0)
        for state, count in (("live", counts.live), ("parked", counts.parked), ("disabled", counts.disabled)):
            self._metrics.keys.labels(state).set(count)
        for item in plan.polls.items:
            self._metrics.planned_interval.labels(item.name).set(item.interval)
            self._metrics.planned_calls_per_day.labels(item.name).set(item.calls_per_day)
            self._metrics.expected_mean_delay.labels(item.name).set(item.expected_mean_delay)
            self._metrics.upload_rate.labels(item.name).set(item.upload_rate * 3600)
        return plan

    def _tell_budget_change(self, plan: Plan) -> None:
        was = self.plan.budget_too_small if self.plan is not None else False
        if plan.budget_too_small and not was:
            logger.warning(
                "the search budget is too small to poll every query every MAX_QUERY_INTERVAL_SECONDS: "
                "every interval is stretched to make the calls last until the reset",
                extra={
                    "calls_left": plan.calls_left,
                    "max_query_interval_seconds": self._planner.bounds.max_query_interval,
                    "interval_seconds": round(max((i.interval for i in plan.polls.items), default=0.0), 1),
                },
            )
        elif was and not plan.budget_too_small:
            logger.info("the search budget covers every query at MAX_QUERY_INTERVAL_SECONDS again")

    async def save(self, now: datetime, *, resume_at: datetime | None) -> None:
        """Persist the keys' states and the plan's inputs (fenced by the lease; nothing without a lease)."""
        plan = self.plan or self.refresh(now, parked=resume_at is not None)
        counts = self._pool.counts(now)
        token = self._lease.token
        if token is None:
            return
        bounds = self._planner.bounds
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
                poll_interval_seconds=bounds.poll_interval,
                max_query_interval_seconds=bounds.max_query_interval,
                max_calls_per_poll=bounds.max_pages_per_cycle,
                scheduling=bounds.scheduling,
                planned_queries=[item.name for item in plan.polls.items],
                budget_too_small=plan.budget_too_small,
            ),
            token,
        )

    def health(self, now: datetime) -> dict[str, Any]:
        """The budget and the keys' states, as ``/healthz`` shows them to a leader's callers."""
        plan = self.plan or self._planner.plan(self._pool, now, self._items)
        counts = self._pool.counts(now)
        return {
            "budget": {
                "calls_left_today": plan.calls_left,
                "calls_per_cycle": round(plan.calls_per_cycle, 3),
                "effective_interval_seconds": round(plan.effective_interval, 3),
                "seconds_to_reset": round(plan.seconds_to_reset, 1),
                "reset_at": format_rfc3339(plan.reset_at),
                "scheduling": self._planner.bounds.scheduling,
                "max_query_interval_seconds": self._planner.bounds.max_query_interval,
                "budget_too_small": plan.budget_too_small,
                "planned_calls_until_reset": round(plan.polls.planned_calls, 1),
                "queries": {
                    item.name: {
                        "interval_seconds": round(item.interval, 1),
                        "calls_per_day": round(item.calls_per_day, 1),
                        "expected_mean_delay_seconds": round(item.expected_mean_delay, 1),
                        "upload_rate_per_hour": round(item.upload_rate * 3600, 3),
                    }
                    for item in plan.polls.items
                },
            },
            "keys": {"live": counts.live, "parked": counts.parked, "disabled": counts.disabled},
        }
