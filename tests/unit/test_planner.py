"""The poll planner against an optimum of the same model computed here by another method.

The model (services/common/poll_plan.py): item i uploads rᵢ videos a second, a poll costs
aᵢ + bᵢTᵢ calls, so the items spend Σ (aᵢ/Tᵢ + bᵢ) calls a second; minimise Σ wᵢ²rᵢTᵢ (with every
weight 1: the mean delay Σ rᵢTᵢ/2 ÷ Σ rᵢ) subject to spending at most the calls left until the
reset, with min ≤ Tᵢ ≤ max. The planner solves it exactly over sorted breakpoints; the test
bisects on the Lagrange multiplier λ (Tᵢ = clamp(√(λaᵢ/(wᵢ²rᵢ)), min, max)) and compares.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.common.poll_plan import ItemInputs, PlanInputs, mean_delay, plan_polls

rates = st.one_of(st.just(0.0), st.floats(min_value=1e-4, max_value=1.0))  # 0.36 to 3,600 videos an hour
items = st.lists(
    st.tuples(
        rates,
        st.floats(min_value=1.0, max_value=3.0),  # calls every poll makes
        st.floats(min_value=0.0, max_value=2e-3),  # calls per second of interval (pages that fill)
        st.floats(min_value=0.1, max_value=10.0),  # weight
        st.one_of(st.just(math.inf), st.integers(min_value=1, max_value=20)),  # page cap
    ),
    min_size=1,
    max_size=8,
)
budgets = st.tuples(
    st.integers(min_value=1, max_value=100_000),  # calls left
    st.floats(min_value=60.0, max_value=90_000.0),  # seconds to the reset
    st.floats(min_value=1.0, max_value=600.0),  # min interval
    st.floats(min_value=0.0, max_value=20_000.0),  # max interval above the min
)


Drawn = list[tuple[float, float, float, float, float]]


def _inputs(drawn: Drawn, budget: tuple[int, float, float, float], weighted: bool) -> PlanInputs:
    left, seconds, lo, above = budget
    return PlanInputs(
        items=[
            ItemInputs(
                f"q{i}",
                upload_rate=r,
                calls_per_poll=a,
                extra_calls_per_second=b,
                weight=w if weighted else 1,
                max_calls_per_poll=max(a, cap),
            )
            for i, (r, a, b, w, cap) in enumerate(drawn)
        ],
        calls_left=left,
        seconds_to_reset=seconds,
        min_interval=lo,
        max_interval=lo + above,
    )


def _feasible(inputs: PlanInputs) -> bool:
    """The calls left cover every item at the longest interval."""
    per_second = sum(i.calls_per_poll / inputs.max_interval + i.extra_calls_per_second for i in inputs.items)
    return per_second * inputs.seconds_to_reset <= inputs.calls_left


def _bisected_optimum(inputs: PlanInputs) -> list[float]:
    """The bounded optimum by bisection on λ: the smallest λ whose intervals spend no more than the calls left."""
    lo, hi, seconds = inputs.min_interval, inputs.max_interval, inputs.seconds_to_reset

    def intervals(lam: float) -> list[float]:
        out = []
        for item in inputs.items:
            value = item.weight**2 * item.upload_rate
            t = hi if value <= 0 else math.sqrt(lam * item.calls_per_poll / value)
            out.append(min(hi, max(lo, t)))
        return out

    def spend(lam: float) -> float:
        pairs = zip(inputs.items, intervals(lam), strict=True)
        return seconds * sum(i.calls_per_poll / t + i.extra_calls_per_second for i, t in pairs)

    if spend(0.0) <= inputs.calls_left:
        return intervals(0.0)
    low, high = -60.0, 60.0  # log λ
    for _ in range(300):
        middle = (low + high) / 2
        if spend(math.exp(middle)) > inputs.calls_left:
            low = middle
        else:
            high = middle
    return intervals(math.exp(high))


def _objective(inputs: PlanInputs, intervals: list[float]) -> float:
    return sum(i.weight**2 * i.upload_rate * t for i, t in zip(inputs.items, intervals, strict=True))


def _check(inputs: PlanInputs) -> None:
    plan = plan_polls(inputs)
    planned = [p.interval for p in plan.items]
    # never faster than the minimum, and never more calls than are left before the reset
    assert all(t >= inputs.min_interval * (1 - 1e-9) for t in planned)
    assert plan.planned_calls <= inputs.calls_left * (1 + 1e-9)
    if not _feasible(inputs):
        assert plan.starved
        assert len({round(t, 6) for t in planned}) == 1  # stretched by one factor
        assert planned[0] >= inputs.max_interval * (1 - 1e-9)
        return
    assert not plan.starved
    assert all(t <= inputs.max_interval * (1 + 1e-9) for t in planned)
    best = _objective(inputs, _bisected_optimum(inputs))
    ours = _objective(inputs, planned)
    if best == 0:
        assert ours == 0
        return
    assert ours <= best * 1.02
    assert ours >= best * (1 - 1e-6)  # not better than the optimum: the plan spends no more than it may


@settings(max_examples=400, deadline=None)
@given(items, budgets)
def test_the_planned_mean_delay_is_the_optimum_within_two_percent_and_the_bounds_hold(
    drawn: Drawn, budget: tuple[int, float, float, float]
) -> None:
    inputs = _inputs(drawn, budget, weighted=False)
    _check(inputs)
    plan = plan_polls(inputs)
    if _feasible(inputs) and plan.mean_delay is not None:
        best = mean_delay([i.upload_rate for i in inputs.items], _bisected_optimum(inputs))
        assert best is not None
        assert plan.mean_delay == pytest.approx(best, rel=0.02)


@settings(max_examples=300, deadline=None)
@given(items, budgets)
def test_weights_scale_each_share_and_the_plan_stays_optimal_and_within_budget(
    drawn: Drawn, budget: tuple[int, float, float, float]
) -> None:
    _check(_inputs(drawn, budget, weighted=True))


def test_rates_twenty_five_to_one_get_intervals_one_to_five() -> None:
    inputs = PlanInputs(
        items=[ItemInputs("busy", upload_rate=25 / 3600), ItemInputs("quiet", upload_rate=1 / 3600)],
        calls_left=100,
        seconds_to_reset=86_400,
        min_interval=10,
        max_interval=7200,
    )
    plan = plan_polls(inputs)
    busy, quiet = plan.interval("busy"), plan.interval("quiet")
    assert busy is not None and quiet is not None
    assert quiet / busy == pytest.approx(5)
    assert 86_400 / busy + 86_400 / quiet == pytest.approx(100)
    equal = plan_polls(inputs, "equal")
    assert [p.interval for p in equal.items] == [pytest.approx(1728)] * 2
    assert plan.mean_delay is not None and equal.mean_delay is not None
    assert plan.mean_delay < equal.mean_delay


def test_a_weight_of_two_doubles_a_shares_poll_rate() -> None:
    def plan(weight: float) -> tuple[float, float]:
        inputs = PlanInputs(
            items=[ItemInputs("a", upload_rate=4 / 3600, weight=weight), ItemInputs("b", upload_rate=4 / 3600)],
            calls_left=100,
            seconds_to_reset=86_400,
            min_interval=10,
            max_interval=86_400,
        )
        result = plan_polls(inputs)
        a, b = result.interval("a"), result.interval("b")
        assert a is not None and b is not None
        return a, b

    a, b = plan(2.0)
    assert b / a == pytest.approx(2)
    assert plan(1.0)[0] == pytest.approx(plan(1.0)[1])


def test_calls_the_optimum_leaves_go_to_the_queries_without_uploads() -> None:
    inputs = PlanInputs(
        items=[ItemInputs("busy", upload_rate=1.0), ItemInputs("silent", upload_rate=0.0)],
        calls_left=10_000,
        seconds_to_reset=10_000,
        min_interval=10,
        max_interval=3600,
    )
    plan = plan_polls(inputs)
    # busy at the 10 s floor spends 1,000 calls; silent gets the other 9,000 but never below the floor
    assert plan.interval("busy") == 10
    assert plan.interval("silent") == 10
    assert plan_polls(PlanInputs([ItemInputs("silent", upload_rate=0.0)], 100, 86_400, 10, 3600)).interval(
        "silent"
    ) == pytest.approx(864)
