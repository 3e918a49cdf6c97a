"""The quota day (midnight in Los Angeles, daylight saving included) and the effective interval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.fetcher.budget import BudgetPlanner
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


def test_one_key_one_query_polls_about_every_fifteen_minutes_all_day() -> None:
    pool = KeyPool(parse_key_entries(KEYS[:1]), search_calls_per_day=100)
    planner = BudgetPlanner(poll_interval=10, queries=1, late_sweep_every=6)
    midnight = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    plan = planner.plan(pool, midnight)
    # 86,400 s x 1 call per cycle / 100 calls
    assert plan.calls_per_cycle == 1
    assert plan.effective_interval == pytest.approx(864)
    assert plan.seconds_to_reset == 86_400
    # a quiet query's sweep is one page too: six cycles of one call each keep it there
    for _ in range(6):
        planner.record_cycle(1)
    assert planner.plan(pool, midnight).effective_interval == pytest.approx(864)


def test_more_projects_and_fewer_queries_poll_faster_never_below_the_poll_interval() -> None:
    noon = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)  # 12 hours to the reset
    four_projects = KeyPool(parse_key_entries(KEYS), search_calls_per_day=100)
    two_queries = BudgetPlanner(poll_interval=10, queries=2, late_sweep_every=6)
    assert two_queries.plan(four_projects, noon).effective_interval == pytest.approx(43_200 * 2 / 400)
    one_project_two_keys = KeyPool(parse_key_entries([f"p:{KEYS[0]}", f"p:{KEYS[1]}"]), search_calls_per_day=100)
    assert two_queries.plan(one_project_two_keys, noon).effective_interval == pytest.approx(43_200 * 2 / 100), (
        "two keys of one project are one quota"
    )
    demo = KeyPool(parse_key_entries(KEYS[:2]), search_calls_per_day=1_000_000)
    assert two_queries.plan(demo, noon).effective_interval == 10


def test_measured_cycle_costs_stretch_the_interval_and_spent_calls_shrink_the_budget() -> None:
    pool = KeyPool(parse_key_entries(KEYS[:1]), search_calls_per_day=100)
    planner = BudgetPlanner(poll_interval=10, queries=1, late_sweep_every=6)
    noon = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)
    base = planner.plan(pool, noon).effective_interval
    for cost in (2, 3, 2, 2, 4, 2):  # a busy query: extra pages every cycle
        planner.record_cycle(cost)
    assert planner.calls_per_cycle == pytest.approx(15 / 6)
    assert planner.plan(pool, noon).effective_interval == pytest.approx(base * 15 / 6)
    key = pool.pick_search_key(noon)
    assert key is not None
    for _ in range(50):
        pool.charge_search(key, noon)
    assert planner.plan(pool, noon).calls_left == 50


def test_with_every_call_spent_the_interval_is_the_time_to_the_reset() -> None:
    pool = KeyPool(parse_key_entries(KEYS[:1]), search_calls_per_day=1)
    noon = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)
    key = pool.pick_search_key(noon)
    assert key is not None
    pool.charge_search(key, noon)
    plan = BudgetPlanner(poll_interval=10, queries=1, late_sweep_every=6).plan(pool, noon)
    assert plan.calls_left == 0
    assert plan.effective_interval == plan.seconds_to_reset == timedelta(hours=12).total_seconds()
