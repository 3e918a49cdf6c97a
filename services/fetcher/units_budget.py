"""The units budget: how often each followed channel may be read so the day's units last until the reset.

Channel reads (channels.list, playlistItems.list) and enrichment (videos.list) spend each
project's units pool, ``YOUTUBE_UNITS_PER_DAY`` (1 unit a call), apart from its search bucket.
Reads stop at ``UNITS_RESERVE_FOR_ENRICHMENT`` of the day, which stays for videos.list. The
plan is the search plan's (``services/common/poll_plan.py``: read rate ∝ √ measured upload rate)
over the read units left on every usable project and the seconds to midnight Pacific time, each
channel between ``MIN_CHANNEL_INTERVAL_SECONDS`` and ``MAX_CHANNEL_INTERVAL_SECONDS`` while the
units allow; when they do not, every interval is stretched (the budget wins) and one WARNING says so.

The square-root rule minimises the mean delay, and leaves a channel with a low measured rate — or
one merely quiet lately, since a few videos make a noisy estimate — at the longest interval: the
tail of the delays. So while the units allow, the longest interval is also capped at the one at
which ``TAIL_SHARE`` of the read units would read every channel alike; the rest of the units go by
the rule to the channels that upload most.

``UnitsGate`` is the channel scheduler's quota gate: reads wait while no project has read units
left (spent to the reserve, or parked by a 403 ``quotaExceeded`` until the reset), whatever the
search bucket says. ``UnitsBudget`` keeps the gauges, the ``units`` document beside
``fetcher_budget``'s search one, and the units' part of ``/healthz``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from services.common.fetcher_state import ProjectUnitsDoc, UnitsBudgetDoc
from services.common.poll_plan import ItemInputs, PlanInputs
from services.common.timefmt import format_rfc3339
from services.fetcher.budget import BudgetPlanner, Plan
from services.fetcher.clock import next_reset
from services.fetcher.keys import KeyCounts, KeyPool
from services.fetcher.lease import LeaderLease
from services.fetcher.metrics import FetcherMetrics
from services.fetcher.store import FetcherStore

logger = logging.getLogger(__name__)


class UnitsGate:
    """When a channel read may be made: the units pools, not the search buckets."""

    def __init__(self, pool: KeyPool) -> None:
        self._pool = pool

    def resume_at(self, now: datetime) -> datetime | None:
        return self._pool.units_resume_at(now)

    def counts(self, now: datetime) -> KeyCounts:
        return self._pool.counts(now)


# The share of the read units that would read every followed channel alike at the capped longest interval.
TAIL_SHARE = 2 / 3


def tail_capped(inputs: PlanInputs) -> PlanInputs:
    """``inputs`` with the longest interval capped where TAIL_SHARE of the units reads every item alike."""
    if not inputs.items or inputs.calls_left <= 0 or inputs.seconds_to_reset <= 0:
        return inputs
    alike = len(inputs.items) * inputs.seconds_to_reset / (TAIL_SHARE * inputs.calls_left)
    return replace(inputs, max_interval=min(inputs.max_interval, max(inputs.min_interval, alike)))


class UnitsPlanner(BudgetPlanner):
    """The budget planner over the read units left (the reserve kept aside) instead of search calls."""

    def inputs(self, pool: KeyPool, now: datetime, items: Sequence[ItemInputs]) -> PlanInputs:
        return tail_capped(replace(super().inputs(pool, now, items), calls_left=pool.units_left(now, "read")))


class UnitsBudget:
    """The latest plan of channel reads, published as gauges, as the ``units`` document and in ``/healthz``."""

    def __init__(
        self,
        planner: UnitsPlanner,
        *,
        pool: KeyPool,
        store: FetcherStore,
        lease: LeaderLease,
        metrics: FetcherMetrics,
        reserve: float,
    ) -> None:
        self._planner = planner
        self._pool = pool
        self._store = store
        self._lease = lease
        self._metrics = metrics
        self._reserve = reserve
        self.plan: Plan | None = None
        self._items: Sequence[ItemInputs] = ()

    def refresh(self, now: datetime, *, parked: bool, items: Sequence[ItemInputs] | None = None) -> Plan:
        if items is not None:
            self._items = items
        plan = self._planner.plan(self._pool, now, self._items)
        plan = replace(plan, budget_too_small=plan.budget_too_small and not parked)
        self._tell_budget_change(plan)
        self.plan = plan
        self._metrics.units_left.labels("read").set(plan.calls_left)
        self._metrics.units_left.labels("any").set(self._pool.units_left(now))
        self._metrics.units_parked_projects.set(
            sum(1 for p in self._pool.projects() if self._pool.units_parked_until(p) is not None)
        )
        self._metrics.units_budget_too_small.set(1 if plan.budget_too_small else 0)
        for item in plan.polls.items:
            self._metrics.channel_interval.labels(item.name).set(item.interval)
            self._metrics.channel_upload_rate.labels(item.name).set(item.upload_rate * 3600)
        return plan

    def _tell_budget_change(self, plan: Plan) -> None:
        was = self.plan.budget_too_small if self.plan is not None else False
        if plan.budget_too_small and not was:
            logger.warning(
                "the units left are too few to read every followed channel every MAX_CHANNEL_INTERVAL_SECONDS: "
                "every interval is stretched to make the units last until the reset",
                extra={
                    "read_units_left": plan.calls_left,
                    "max_channel_interval_seconds": self._planner.bounds.max_query_interval,
                    "interval_seconds": round(max((i.interval for i in plan.polls.items), default=0.0), 1),
                },
            )
        elif was and not plan.budget_too_small:
            logger.info("the units cover every followed channel at MAX_CHANNEL_INTERVAL_SECONDS again")

    def _projects(self, now: datetime) -> list[ProjectUnitsDoc]:
        self._pool.refresh(now)
        return [
            ProjectUnitsDoc(
                project=project,
                units_spent=self._pool.project_units_spent(project),
                units_left=self._pool.project_units_left(project),
                parked_until=self._pool.units_parked_until(project),
            )
            for project in self._pool.projects()
        ]

    async def save(self, now: datetime, *, resume_at: datetime | None) -> None:
        """Persist the keys' states and the units plan (fenced by the lease; nothing without a lease)."""
        plan = self.plan or self.refresh(now, parked=resume_at is not None)
        token = self._lease.token
        if token is None:
            return
        bounds = self._planner.bounds
        await self._store.save_keys(self._pool.take_dirty(now), token)
        projects = self._projects(now)
        await self._store.save_units_budget(
            UnitsBudgetDoc(
                units_per_day=self._pool.units_per_day,
                reserve_for_enrichment=self._reserve,
                read_units_left_today=plan.calls_left,
                units_left_today=sum(p.units_left for p in projects),
                units_spent_today=sum(p.units_spent for p in projects),
                reset_at=next_reset(now),
                projects=projects,
                min_channel_interval_seconds=bounds.poll_interval,
                max_channel_interval_seconds=bounds.max_query_interval,
                planned_channels=[item.name for item in plan.polls.items],
                budget_too_small=plan.budget_too_small,
                all_units_parked=resume_at is not None,
                resume_at=resume_at,
                leader=self._lease.holder,
                updated_at=now,
            ),
            token,
        )

    def health(self, now: datetime) -> dict[str, Any]:
        """The units pool and each channel's planned interval, as ``/healthz`` shows them."""
        plan = self.plan or self._planner.plan(self._pool, now, self._items)
        return {
            "units": {
                "units_per_day": self._pool.units_per_day,
                "reserve_for_enrichment": self._reserve,
                "read_units_left_today": plan.calls_left,
                "units_left_today": self._pool.units_left(now),
                "reset_at": format_rfc3339(plan.reset_at),
                "budget_too_small": plan.budget_too_small,
                "projects": [
                    {
                        "project": p.project,
                        "units_spent": p.units_spent,
                        "units_left": p.units_left,
                        "parked_until": format_rfc3339(p.parked_until) if p.parked_until else None,
                    }
                    for p in self._projects(now)
                ],
                "channels": {
                    item.name: {
                        "interval_seconds": round(item.interval, 1),
                        "units_per_day": round(item.calls_per_day, 1),
                        "upload_rate_per_hour": round(item.upload_rate * 3600, 3),
                    }
                    for item in plan.polls.items
                },
            }
        }
