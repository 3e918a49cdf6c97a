"""The poll planner: how often each work item is polled so the day's search calls buy the most freshness.

Pure arithmetic, shared by the fetcher (which polls by the plan) and the API (which shows it from
the inputs the fetcher saves in MongoDB). The model, per item ``i``:

- it finds new videos at ``upload_rate`` rᵢ (videos a second) and is polled every Tᵢ seconds; a
  video waits on average Tᵢ/2 for the next poll, so the mean delay over all videos is
  Σ rᵢTᵢ/2 ÷ Σ rᵢ;
- a poll costs ``calls_per_poll`` aᵢ (its first page) plus ``extra_calls_per_second`` bᵢ for every
  second of its interval (the pages a longer interval fills: extra pages, late sweeps, gaps), so the
  item spends aᵢ/Tᵢ + bᵢ calls a second, and at most ``max_calls_per_poll`` per poll;
- the plan spends at most the calls left until the quota resets: Σ (aᵢ/Tᵢ + bᵢ) · seconds to
  the reset ≤ calls left.

The mean delay under that budget is smallest with poll rates 1/Tᵢ ∝ √(rᵢ/aᵢ); a ``weight`` wᵢ scales
an item's share: 1/Tᵢ ∝ wᵢ√(rᵢ/aᵢ) (it minimises Σ wᵢ²rᵢTᵢ). Bounds: never below ``min_interval``
(``POLL_INTERVAL_SECONDS``), at most ``max_interval`` (``MAX_QUERY_INTERVAL_SECONDS``) while the
budget allows; when it cannot cover every item at ``max_interval`` the budget wins: every interval
is ``max_interval`` stretched by the same factor, and the plan says it is ``starved``. The optimum
within the bounds is found exactly: each poll rate is wᵢ√(rᵢ/aᵢ)·μ clamped to its bounds, a piecewise
linear cost in μ whose breakpoints are sorted and the segment holding the budget solved. Calls that
optimum leaves unspent (every item with uploads at ``min_interval``) go to the items without a
measured upload rate, evenly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

DAY_SECONDS = 86_400.0
# Stretching the intervals of a starved plan: bisection steps, and the largest factor tried.
_STRETCH_STEPS = 200
_MAX_STRETCH = 2.0**40

Scheduling = Literal["rate", "equal"]


@dataclass(frozen=True)
class ItemInputs:
    """What the planner knows of one item."""

    name: str
    upload_rate: float  # new videos a second, smoothed
    calls_per_poll: float = 1.0  # calls every poll makes whatever its interval (aᵢ ≥ 1)
    extra_calls_per_second: float = 0.0  # calls a poll makes per second of its interval (bᵢ)
    weight: float = 1.0  # scales the item's share of the budget; 1 by default
    max_calls_per_poll: float = math.inf  # a poll never makes more (the page cap)

    def cost(self, interval: float) -> float:
        """Calls of one poll after ``interval`` seconds."""
        return min(self.calls_per_poll + self.extra_calls_per_second * interval, self.max_calls_per_poll)


@dataclass(frozen=True)
class PlanInputs:
    items: Sequence[ItemInputs]
    calls_left: float  # search calls left on every usable project until the reset
    seconds_to_reset: float
    min_interval: float  # POLL_INTERVAL_SECONDS: never faster
    max_interval: float  # MAX_QUERY_INTERVAL_SECONDS: aimed at, the budget permitting


@dataclass(frozen=True)
class ItemPlan:
    name: str
    interval: float  # seconds between two polls
    calls_per_day: float  # at this interval, calls a day (86,400 s) of this item
    expected_mean_delay: float  # seconds a video of this item waits on average for its poll
    upload_rate: float


@dataclass(frozen=True)
class PollPlan:
    items: tuple[ItemPlan, ...]
    scheduling: Scheduling
    # The budget cannot cover every item at max_interval: every interval stretched by one factor.
    starved: bool
    planned_calls: float  # calls the plan makes until the reset (never above calls_left)
    mean_delay: float | None  # over all videos (rate-weighted); None when no item uploads
    by_name: dict[str, ItemPlan] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {item.name: item for item in self.items})

    def interval(self, name: str) -> float | None:
        item = self.by_name.get(name)
        return None if item is None else item.interval


def plan_polls(inputs: PlanInputs, scheduling: Scheduling = "rate") -> PollPlan:
    """Every item's interval: rate-weighted (``rate``) or one interval for all (``equal``)."""
    if not inputs.items:
        return PollPlan((), scheduling, starved=False, planned_calls=0.0, mean_delay=None)
    lo, hi = _bounds(inputs)
    solve = _equal if scheduling == "equal" else _rate_weighted
    intervals, starved, first_only = solve(inputs, lo, hi)
    return _plan(inputs, intervals, scheduling, starved, first_only)


def mean_delay(rates: Sequence[float], intervals: Sequence[float]) -> float | None:
    """Σ rᵢTᵢ/2 ÷ Σ rᵢ: the mean wait of a video for the next poll of its item."""
    total = sum(rates)
    if total <= 0:
        return None
    return sum(r * t for r, t in zip(rates, intervals, strict=True)) / 2 / total


def _bounds(inputs: PlanInputs) -> tuple[float, float]:
    lo = max(inputs.min_interval, 1e-9)
    return lo, max(lo, inputs.max_interval)


def _spend(items: Sequence[ItemInputs], intervals: Sequence[float], seconds: float) -> float:
    """Calls the items make in ``seconds`` at these intervals (the page cap included)."""
    return seconds * sum(item.cost(t) / t for item, t in zip(items, intervals, strict=True))


def _poll_budget(inputs: PlanInputs) -> float | None:
    """Calls a second left for the polls' fixed part, or None when nothing is left until the reset."""
    if inputs.calls_left <= 0:
        return None
    seconds = max(inputs.seconds_to_reset, 1e-9)
    return inputs.calls_left / seconds - sum(item.extra_calls_per_second for item in inputs.items)


# The intervals, whether the plan is starved, and whether it counts each poll's first calls only.
_Solved = tuple[list[float], bool, bool]


def _rate_weighted(inputs: PlanInputs, lo: float, hi: float) -> _Solved:
    items, budget = inputs.items, _poll_budget(inputs)
    if budget is None:
        return _exhausted(inputs, lo), True, False
    floor = sum(item.calls_per_poll / hi for item in items)
    if budget < floor:
        return (*_stretched(inputs, hi),)
    # Poll rate xᵢ(μ) = clamp(kᵢμ, 1/hi, 1/lo) with kᵢ = wᵢ√(rᵢ/aᵢ); Σ aᵢxᵢ(μ) is piecewise linear.
    slopes = [item.weight * math.sqrt(max(item.upload_rate, 0.0) / item.calls_per_poll) for item in items]
    busy = sum(item.calls_per_poll / lo for item, k in zip(items, slopes, strict=True) if k > 0)
    idle = sum(item.calls_per_poll for item, k in zip(items, slopes, strict=True) if k <= 0)
    if budget >= busy + idle / hi:
        # Every item with uploads at the shortest interval: the calls left over go to the items
        # without a measured upload rate, evenly (their videos, if any come, are found sooner).
        spare = max(lo, idle / (budget - busy)) if idle > 0 else hi
        return [lo if k > 0 else min(hi, spare) for k in slopes], False, False
    mu = _solve_mu(items, slopes, budget, lo, hi)
    return [1.0 / _clamp(k * mu, 1.0 / hi, 1.0 / lo) for k in slopes], False, False


def _solve_mu(items: Sequence[ItemInputs], slopes: Sequence[float], budget: float, lo: float, hi: float) -> float:
    """The μ at which Σ aᵢ clamp(kᵢμ, 1/hi, 1/lo) equals ``budget`` (exactly, between breakpoints)."""
    breaks = sorted({b for k in slopes if k > 0 for b in ((1.0 / hi) / k, (1.0 / lo) / k)})
    previous = 0.0
    for point in breaks:
        if _cost_at(items, slopes, point, lo, hi) >= budget:
            break
        previous = point
    else:
        return breaks[-1] if breaks else 0.0
    # Between ``previous`` and ``point`` each rate is fixed at a bound or grows linearly: solve.
    mid = (previous + point) / 2
    fixed, linear = 0.0, 0.0
    for item, k in zip(items, slopes, strict=True):
        x = k * mid
        if k <= 0 or x <= 1.0 / hi:
            fixed += item.calls_per_poll / hi
        elif x >= 1.0 / lo:
            fixed += item.calls_per_poll / lo
        else:
            linear += item.calls_per_poll * k
    if linear <= 0:
        return point
    return _clamp((budget - fixed) / linear, previous, point)


def _cost_at(items: Sequence[ItemInputs], slopes: Sequence[float], mu: float, lo: float, hi: float) -> float:
    return sum(item.calls_per_poll * _clamp(k * mu, 1.0 / hi, 1.0 / lo) for item, k in zip(items, slopes, strict=True))


def _equal(inputs: PlanInputs, lo: float, hi: float) -> _Solved:
    """One interval for every item: the shortest the budget allows, never below ``lo``."""
    items, budget = inputs.items, _poll_budget(inputs)
    if budget is None:
        return _exhausted(inputs, lo), True, False
    fixed = sum(item.calls_per_poll for item in items)
    if budget < fixed / hi:
        return (*_stretched(inputs, hi),)
    return [max(lo, fixed / budget)] * len(items), False, False


def _exhausted(inputs: PlanInputs, lo: float) -> list[float]:
    """No call left: nothing is polled before the reset."""
    return [max(lo, inputs.seconds_to_reset)] * len(inputs.items)


def _stretched(inputs: PlanInputs, hi: float) -> _Solved:
    """Every item at ``hi`` stretched by the one factor at which the calls last until the reset.

    Returns the intervals and whether only each poll's first calls are counted: when even reading
    the videos (the pages that fill with the interval, without a page cap) would spend more than is
    left, the plan counts the first calls only — the walks' page cap leaves the rest as gaps.
    """
    items, seconds = inputs.items, max(inputs.seconds_to_reset, 1e-9)
    first_only = _spend(items, [hi * _MAX_STRETCH] * len(items), seconds) > inputs.calls_left
    if first_only:
        factor = seconds * sum(item.calls_per_poll for item in items) / (hi * inputs.calls_left)
        return [hi * max(1.0, factor)] * len(items), True, True
    low, high = 1.0, 2.0
    while _spend(items, [hi * high] * len(items), seconds) > inputs.calls_left:
        low, high = high, high * 2
    for _ in range(_STRETCH_STEPS):
        middle = (low + high) / 2
        if _spend(items, [hi * middle] * len(items), seconds) > inputs.calls_left:
            low = middle
        else:
            high = middle
        if high - low <= 1e-12 * high:
            break
    return [hi * high] * len(items), True, False


def _plan(
    inputs: PlanInputs, intervals: list[float], scheduling: Scheduling, starved: bool, first_only: bool
) -> PollPlan:
    items = inputs.items
    counted = [replace(item, max_calls_per_poll=item.calls_per_poll) for item in items] if first_only else items
    plans = tuple(
        ItemPlan(
            name=item.name,
            interval=t,
            calls_per_day=DAY_SECONDS * item.cost(t) / t,
            expected_mean_delay=t / 2,
            upload_rate=item.upload_rate,
        )
        for item, t in zip(counted, intervals, strict=True)
    )
    return PollPlan(
        plans,
        scheduling,
        starved=starved,
        planned_calls=_spend(counted, intervals, max(inputs.seconds_to_reset, 0.0)),
        mean_delay=mean_delay([max(item.upload_rate, 0.0) for item in items], intervals),
    )


def _clamp(value: float, low: float, high: float) -> float:
    return min(high, max(low, value))
