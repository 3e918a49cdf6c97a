"""The what-if plan: every query's and channel's interval now and after a change of the sources.

The planner (services/common/poll_plan.py) is run twice on the inputs the fetcher saved in
MongoDB (services/common/fetcher_state.py): once over the items it plans now, once over them with
the change made. A query or channel the change adds has no measurements yet: an upload rate of
zero and a weight of 1, which is how the fetcher plans a new item until its first polls measure
it. A reweighted query keeps its measurements and plans with its new weight. Searches share the
search calls left; channel reads share the read units left (the units reserve kept aside), each
by its own bounds, so the two summaries are apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from services.common.fetcher_state import (
    BudgetDoc,
    ChannelStateDoc,
    QueryStateDoc,
    UnitsBudgetDoc,
    as_utc,
    plan_inputs,
)
from services.common.poll_plan import ItemInputs, PlanInputs, PollPlan, Scheduling, plan_polls


def _figures(plan: PollPlan, name: str) -> dict[str, float] | None:
    item = plan.by_name.get(name)
    if item is None:
        return None
    return {
        "interval_seconds": round(item.interval, 1),
        "expected_mean_delay_seconds": round(item.expected_mean_delay, 1),
        "calls_per_day": round(item.calls_per_day, 2),
    }


def summary(now: PollPlan | None, after: PollPlan | None, based_on: datetime | None) -> dict[str, Any]:
    def delay(plan: PollPlan | None) -> float | None:
        return None if plan is None or plan.mean_delay is None else round(plan.mean_delay, 1)

    return {
        "mean_delay_now_seconds": delay(now),
        "mean_delay_after_seconds": delay(after),
        "starved_now": bool(now and now.starved),
        "starved_after": bool(after and after.starved),
        "based_on": None if based_on is None else as_utc(based_on),
    }


def compare(
    inputs: PlanInputs | None,
    scheduling: Scheduling,
    add: Sequence[str],
    remove: Iterable[str],
    *,
    max_calls_per_poll: float = float("inf"),
    reweight: Mapping[str, float] | None = None,
) -> tuple[PollPlan | None, PollPlan | None]:
    """The plans of ``inputs`` as they are and with ``add`` (unmeasured), without ``remove``, ``reweight`` applied."""
    if inputs is None:
        return None, None
    removed = set(remove)
    weights = reweight or {}
    present = {item.name for item in inputs.items}
    kept = [
        replace(item, weight=weights[item.name]) if item.name in weights else item
        for item in inputs.items
        if item.name not in removed
    ]
    new = [
        ItemInputs(name=name, upload_rate=0.0, max_calls_per_poll=max_calls_per_poll)
        for name in dict.fromkeys(add)
        if name not in present and name not in removed
    ]
    return plan_polls(inputs, scheduling), plan_polls(replace(inputs, items=[*kept, *new]), scheduling)


def rows(
    now: PollPlan | None, after: PollPlan | None, names: Sequence[str], ids: dict[str, str]
) -> list[dict[str, Any]]:
    """One row per name: its figures now and after (null where it is not planned)."""
    return [
        {
            "name": name,
            "id": ids.get(name),
            "now": _figures(now, name) if now else None,
            "after": _figures(after, name) if after else None,
        }
        for name in dict.fromkeys(names)
    ]


def search_inputs(budget: BudgetDoc | None, states: Iterable[QueryStateDoc]) -> PlanInputs | None:
    """The search plan's inputs over the queries the fetcher plans now (None: it saved no plan)."""
    if budget is None or budget.poll_interval_seconds <= 0:
        return None
    known = {q.query: q for q in states}
    return plan_inputs(budget, [known.get(name) or QueryStateDoc(query=name) for name in budget.planned_queries])


def units_inputs(
    units: UnitsBudgetDoc | None, states: Iterable[ChannelStateDoc], max_calls_per_poll: float
) -> PlanInputs | None:
    """The channel reads' plan inputs as the fetcher saved them with the units plan (None: none saved)."""
    if units is None or units.min_channel_interval_seconds <= 0:
        return None
    known = {c.channel_id: c for c in states}
    items = []
    for name in units.planned_channels:
        state = known.get(name)
        stats = state.poll_stats.stats() if state else None
        items.append(
            ItemInputs(
                name=name,
                upload_rate=stats.upload_rate if stats else 0.0,
                extra_calls_per_second=stats.extra_calls_per_second if stats else 0.0,
                max_calls_per_poll=max_calls_per_poll,
            )
        )
    return PlanInputs(
        items=items,
        calls_left=units.read_units_left_today,
        seconds_to_reset=max(0.0, (as_utc(units.reset_at) - as_utc(units.updated_at)).total_seconds()),
        min_interval=units.min_channel_interval_seconds,
        max_interval=units.max_channel_interval_seconds,
    )
