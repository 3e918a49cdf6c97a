"""The quota day (midnight in Los Angeles, daylight saving included) and the effective interval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.common.poll_plan import ItemInputs, Scheduling
from services.fetcher.budget import BudgetPlanner, PlanBounds
from services.fetcher.clock import next_reset, pacific_day
from services.fetcher.keys import KeyPool
from services.fetcher.settings import parse_key_entries

KEYS = [f"AIzaFAKE{'x' * 27}{n:04d}" for n in range(4)]


@pytest.mark.parametrize(
    ("moment", "day", "reset"),
    [
        # November: PST (UTC-8), midnight is 08:00 UTC
        ("2026-11-24T20:00:00+00:00", "2026-11-24", "2026-11-25T08:00:00+00:00"),
        ("2026-11-25T07:59:59+00:00", "2026-11-24", "2026-11-25T08:00:00+00:00"),
        ("2026-11-25T08:00:00+00:00", "2026-11-25", "2026-11-26T08:00:00+00:00"),
        # July: PDT (UTC-7), midnight is 07:00 UTC
        ("2026-07-04T06:59:00+00:00", "2026-07-03", "2026-07-04T07:00:00+00:00"),
        ("2026-07-04T07:00:00+00:00", "2026-07-04", "2026-07-05T07:00:00+00:00"),
        # the days daylight saving starts (23 hours) and ends (25 hours)
        ("2026-03-08T09:00:00+00:00", "2026-03-08", "2026-03-09T07:00:00+00:00"),
        ("2026-11-01T08:00:00+00:00", "2026-11-01", "2026-11-02T08:00:00+00:00"),
    ],
)
def test_the_quota_day_ends_at_midnight_in_los_angeles(moment: str, day: str, reset: str) -> None:
    at = datetime.fromisoformat(moment)
    assert pacific_day(at).isoformat() == day
    assert next_reset(at) == datetime.fromisoformat(reset)
    assert next_reset(at).tzinfo is UTC


def _planner(poll_interval: float = 10, scheduling: Scheduling = "equal") -> BudgetPlanner:
    return BudgetPlanner(
        PlanBounds(poll_interval, max_query_interval=3600, max_pages_per_cycle=20, scheduling=scheduling)
    )


def _quiet(*names: str) -> list[ItemInputs]:
    return [ItemInputs(name, upload_rate=0.0) for name in names]


def test_one_key_one_query_polls_about_every_fifteen_minutes_all_day() -> None:
    pool = KeyPool(parse_key_entries(KEYS[:1]), search_calls_per_day=100)
    midnight = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    for scheduling in ("equal", "rate"):
        plan = _planner(scheduling=scheduling).plan(pool, midnight, _quiet("cricket"))
        # 86,400 s x 1 call per poll / 100 calls
        assert plan.calls_per_cycle == 1
        assert plan.effective_interval == pytest.approx(864)
        assert plan.interval("cricket") == pytest.approx(864)
        assert plan.seconds_to_reset == 86_400
        assert not plan.budget_too_small


def test_more_projects_and_fewer_queries_poll_faster_never_below_the_poll_interval() -> None:
    noon = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)  # 12 hours to the reset
    four_projects = KeyPool(parse_key_entries(KEYS), search_calls_per_day=100)
    two_queries = _quiet("a", "b")
    planner = _planner()
    assert planner.plan(four_projects, noon, two_queries).effective_interval == pytest.approx(43_200 * 2 / 400)
    one_project_two_keys = KeyPool(parse_key_entries([f"p:{KEYS[0]}", f"p:{KEYS[1]}"]), search_calls_per_day=100)
    assert planner.plan(one_project_two_keys, noon, two_queries).effective_interval == pytest.approx(
        43_200 * 2 / 100
    ), "two keys of one project are one quota"
    demo = KeyPool(parse_key_entries(KEYS[:2]), search_calls_per_day=1_000_000)
    assert planner.plan(demo, noon, two_queries).effective_interval == 10
    assert _planner(scheduling="rate").plan(demo, noon, two_queries).interval("a") == 10


def test_measured_costs_stretch_the_interval_and_spent_calls_shrink_the_budget() -> None:
    pool = KeyPool(parse_key_entries(KEYS[:1]), search_calls_per_day=100)
    noon = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)
    planner = _planner()
    base = planner.plan(pool, noon, _quiet("busy")).effective_interval
    assert base == pytest.approx(432)
    # a busy query: half an extra page a poll at that interval (its pages grow with its interval)
    busy = [ItemInputs("busy", upload_rate=0.1, extra_calls_per_second=0.5 / 432)]
    plan = planner.plan(pool, noon, busy)
    # the calls still last exactly until the reset: 1/T + b = 100 / 43,200 s, so T = 864 s, 2 calls a poll
    assert plan.effective_interval == pytest.approx(864)
    assert plan.calls_per_cycle == pytest.approx(2)
    assert plan.calls_per_cycle * 43_200 / plan.effective_interval == pytest.approx(100)
    assert plan.polls.planned_calls == pytest.approx(100)
    key = pool.pick_search_key(noon)
    assert key is not None
    for _ in range(50):
        pool.charge_search(key, noon)
    assert planner.plan(pool, noon, busy).calls_left == 50


def test_with_every_call_spent_the_interval_is_the_time_to_the_reset() -> None:
    pool = KeyPool(parse_key_entries(KEYS[:1]), search_calls_per_day=1)
    noon = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)
    key = pool.pick_search_key(noon)
    assert key is not None
    pool.charge_search(key, noon)
    plan = _planner().plan(pool, noon, _quiet("cricket"))
    assert plan.calls_left == 0
    assert plan.effective_interval == plan.seconds_to_reset == timedelta(hours=12).total_seconds()
    assert not plan.budget_too_small  # no call left is the keys' parking, not a budget too small


def test_a_budget_too_small_for_the_longest_interval_stretches_every_interval_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pool = KeyPool(parse_key_entries(KEYS[:1]), search_calls_per_day=100)
    noon = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)
    # 12 hours left: 100 calls cover 8 queries at 3,600 s (96 calls), not 10 (120)
    ten = [ItemInputs(f"q{n}", upload_rate=(n + 1) / 3600) for n in range(10)]
    plan = _planner(scheduling="rate").plan(pool, noon, ten)
    assert plan.budget_too_small
    assert {round(item.interval, 3) for item in plan.polls.items} == {round(43_200 * 10 / 100, 3)}
    assert plan.polls.planned_calls == pytest.approx(100)
    eight = _planner(scheduling="rate").plan(pool, noon, ten[:8])
    assert not eight.budget_too_small
    assert max(item.interval for item in eight.polls.items) <= 3600 + 1e-6
