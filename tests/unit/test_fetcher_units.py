"""The units pool, pure: apart from the search bucket, the reserve for videos.list, the plan of channel reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.common.poll_plan import ItemInputs
from services.fetcher.budget import PlanBounds
from services.fetcher.clock import next_reset
from services.fetcher.keys import KeyPool
from services.fetcher.settings import parse_key_entries
from services.fetcher.units_budget import UnitsGate, UnitsPlanner

KEYS = ["one:AIzaFAKEaaaaaaaaaaaaaaaaaaaaaaaaaaaa0001", "two:AIzaFAKEaaaaaaaaaaaaaaaaaaaaaaaaaaaa0002"]
NOON = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)  # 12:00 in Los Angeles: 12 hours to the reset


def pool(units_per_day: int = 100, reserve: float = 0.2, keys: list[str] = KEYS) -> KeyPool:
    return KeyPool(parse_key_entries(keys), search_calls_per_day=10, units_per_day=units_per_day, units_reserve=reserve)


def test_reads_stop_at_the_reserve_and_enrichment_spends_it() -> None:
    keys = pool(keys=KEYS[:1])
    entry = keys.entries[0]
    assert keys.units_left(NOON, "read") == 80 and keys.units_left(NOON) == 100
    keys.charge_units(entry, 80, NOON)
    assert keys.pick_units_key(NOON, "read") is None
    assert keys.pick_units_key(NOON, "enrich") == entry
    assert UnitsGate(keys).resume_at(NOON) == next_reset(NOON)
    keys.charge_units(entry, 20, NOON)
    assert keys.pick_units_key(NOON, "enrich") is None


def test_a_spent_units_pool_parks_that_projects_unit_calls_only() -> None:
    keys = pool()
    one, two = keys.entries
    keys.park_units("one", next_reset(NOON), NOON)
    assert keys.pick_search_key(NOON, one) == one  # its searches go on
    assert {keys.pick_units_key(NOON, "read") for _ in range(4)} == {two}  # its unit calls wait
    assert UnitsGate(keys).resume_at(NOON) is None  # the other project still reads
    keys.park_units("two", next_reset(NOON), NOON)
    assert UnitsGate(keys).resume_at(NOON) == next_reset(NOON)
    assert keys.resume_at(NOON) is None  # search is not parked
    # The reset unparks them.
    assert UnitsGate(keys).resume_at(next_reset(NOON) + timedelta(seconds=1)) is None


def test_a_spent_search_bucket_leaves_the_units_alone() -> None:
    keys = pool()
    one, _ = keys.entries
    keys.park_project("one", next_reset(NOON), "429 rateLimitExceeded", NOON)
    assert keys.pick_search_key(NOON) != one
    assert one in {keys.pick_units_key(NOON, "read") for _ in range(4)}
    assert keys.units_left(NOON, "read") == 160


def test_parked_units_are_persisted_and_taken_over() -> None:
    keys = pool()
    keys.charge_units(keys.entries[0], 7, NOON)
    keys.park_units("one", next_reset(NOON), NOON)
    docs = keys.take_dirty(NOON)
    again = pool()
    again.load(docs, NOON)
    assert again.units_parked_until("one") == next_reset(NOON)
    assert again.project_units_spent("one") == 7
    assert again.units_left(NOON, "read") == 80  # only project two


def planner(min_interval: float = 30, max_interval: float = 1800) -> UnitsPlanner:
    return UnitsPlanner(PlanBounds(poll_interval=min_interval, max_query_interval=max_interval, max_pages_per_cycle=20))


def test_channels_are_planned_on_the_read_units_by_the_square_root_rule_with_the_tail_capped() -> None:
    keys = pool(units_per_day=1_000, keys=KEYS[:1])  # 800 read units for the 12 hours to the reset
    busy, medium = ItemInputs("busy", upload_rate=100 / 3600), ItemInputs("medium", upload_rate=25 / 3600)
    quiet = ItemInputs("quiet", upload_rate=0.01 / 3600)
    plan = planner(min_interval=1, max_interval=100_000).plan(keys, NOON, [busy, medium, quiet])
    assert plan.calls_left == 800
    assert abs(plan.interval("medium") / plan.interval("busy") - 2) < 0.01  # read rate ∝ √ upload rate
    # The rule alone would read the quiet channel about once in the 12 hours; it is read at least as
    # often as two thirds of the units would read all three alike.
    alike = 3 * 12 * 3600 / (2 / 3 * 800)
    assert abs(plan.interval("quiet") - alike) < 1
    assert plan.polls.planned_calls <= 800 + 1e-6


def test_every_channel_at_least_every_max_interval_while_the_units_allow_and_the_budget_wins() -> None:
    keys = pool(units_per_day=10_000, keys=KEYS[:1])
    channels = [ItemInputs(f"c{i}", upload_rate=0.0) for i in range(10)]
    plan = planner().plan(keys, NOON, channels)
    assert all(plan.interval(c.name) <= 1800 for c in channels)
    assert not plan.budget_too_small
    keys.charge_units(keys.entries[0], 7_990, NOON)  # 10 read units left for 12 hours
    starved = planner().plan(keys, NOON, channels)
    assert starved.budget_too_small
    assert all(starved.interval(c.name) > 1800 for c in channels)
    assert starved.polls.planned_calls <= 10 + 1e-6
