"""The key pool: ``label:key`` projects, parking per project, budgets, the Pacific quota day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.common.redact import key_fingerprint
from services.common.settings import load_settings
from services.fetcher.keys import KeyPool
from services.fetcher.settings import Settings, parse_key_entries

K1 = "AIzaFAKEaaaaaaaaaaaaaaaaaaaaaaaaaaaa0001"
K2 = "AIzaFAKEbbbbbbbbbbbbbbbbbbbbbbbbbbbb0002"
K3 = "AIzaFAKEcccccccccccccccccccccccccccc0003"
NOON = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)  # 12:00 in Los Angeles
MIDNIGHT_PT = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def test_labels_group_keys_into_projects() -> None:
    entries = parse_key_entries([f"alpha:{K1}", f"alpha:{K2}", K3, K3])
    assert [(e.project, e.fingerprint) for e in entries] == [
        ("alpha", "…0001"),
        ("alpha", "…0002"),
        ("key …0003", "…0003"),
    ]
    assert K1 not in repr(entries)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (f":{K1}", "needs both a label and a key"),
        ("alpha:", "needs both a label and a key"),
        (f"{K1} {K1[:-4]}xxxx {K2[:-4]}xxxx", "same four characters"),
        (f"a:{K1} b:{K1}", "listed under two projects"),
    ],
)
def test_bad_key_lists_stop_the_service_naming_the_variable_but_not_the_key(
    monkeypatch: pytest.MonkeyPatch, value: str, problem: str
) -> None:
    monkeypatch.setenv("YOUTUBE_API_KEYS", value)
    with pytest.raises(SystemExit) as excinfo:
        load_settings(Settings)
    message = str(excinfo.value.code)
    assert message.startswith("tubewatch: invalid setting YOUTUBE_API_KEYS:")
    assert problem in message
    assert K1 not in message and K1[:-4] not in message


def test_short_keys_are_named_by_a_hash_not_by_part_of_themselves() -> None:
    assert key_fingerprint("abcdefgh").startswith("#")
    assert "efgh" not in key_fingerprint("abcdefgh")
    assert key_fingerprint(K1) == "…0001"


def test_daily_exhaustion_parks_the_whole_project_until_midnight_pacific() -> None:
    entries = parse_key_entries([f"alpha:{K1}", f"alpha:{K2}", K3])
    pool = KeyPool(entries, search_calls_per_day=100)
    first = pool.pick_search_key(NOON)
    assert first is not None and first.project == "alpha"
    pool.park_project("alpha", MIDNIGHT_PT, "429 rateLimitExceeded", NOON)
    # both keys of the project are parked; only the other project's key is left
    assert {pool.pick_search_key(NOON) for _ in range(3)} == {entries[2]}
    assert pool.counts(NOON).parked == 2
    pool.park_project("key …0003", MIDNIGHT_PT, "403 quotaExceeded", NOON)
    assert pool.pick_search_key(NOON) is None
    assert pool.resume_at(NOON) == MIDNIGHT_PT
    # a second before midnight in Los Angeles: still parked; at midnight: back
    assert pool.pick_search_key(MIDNIGHT_PT - timedelta(seconds=1)) is None
    assert pool.pick_search_key(MIDNIGHT_PT) is not None
    assert pool.counts(MIDNIGHT_PT).live == 3


def test_the_budget_is_per_project_and_spending_it_parks_without_a_call() -> None:
    pool = KeyPool(parse_key_entries([f"alpha:{K1}", f"alpha:{K2}", K3]), search_calls_per_day=3)
    assert pool.calls_left(NOON) == 6  # two projects, not three keys
    spent = []
    while (key := pool.pick_search_key(NOON)) is not None:
        pool.charge_search(key, NOON)
        spent.append(key.project)
    assert sorted(spent) == ["alpha"] * 3 + ["key …0003"] * 3
    assert pool.calls_left(NOON) == 0
    assert pool.counts(NOON).parked == 3
    # a new Pacific day: budgets are whole again
    assert pool.calls_left(MIDNIGHT_PT) == 6


def test_keys_take_turns_and_a_retry_keeps_its_key() -> None:
    entries = parse_key_entries([K1, K2, K3])
    pool = KeyPool(entries, search_calls_per_day=100)
    assert [pool.pick_search_key(NOON) for _ in range(4)] == [entries[0], entries[1], entries[2], entries[0]]
    assert pool.pick_search_key(NOON, prefer=entries[2]) == entries[2]


def test_a_disabled_key_is_tried_again_on_the_next_quota_day_only() -> None:
    entries = parse_key_entries([K1, K2])
    pool = KeyPool(entries, search_calls_per_day=100)
    pool.disable(entries[0], "400 API_KEY_INVALID", NOON)
    assert {pool.pick_search_key(NOON) for _ in range(4)} == {entries[1]}
    assert pool.state_of("…0001") == "disabled"
    assert pool.pick_search_key(MIDNIGHT_PT - timedelta(seconds=1)) == entries[1]
    assert pool.state_of("…0001") == "disabled"
    pool.refresh(MIDNIGHT_PT)
    assert pool.state_of("…0001") == "live"


def test_an_exhausted_unit_pool_pauses_enrichment_only() -> None:
    entries = parse_key_entries([K1])
    pool = KeyPool(entries, search_calls_per_day=100)
    pool.park_units("key …0001", MIDNIGHT_PT, NOON)
    assert pool.pick_units_key(NOON) is None
    assert pool.pick_search_key(NOON) == entries[0]
    assert pool.pick_units_key(MIDNIGHT_PT) == entries[0]


def test_persisted_state_is_taken_over_and_a_new_day_starts_afresh() -> None:
    entries = parse_key_entries([f"alpha:{K1}", K2])
    pool = KeyPool(entries, search_calls_per_day=100)
    for _ in range(7):
        pool.charge_search(entries[0], NOON)
    pool.park_project("key …0002", MIDNIGHT_PT, "429 rateLimitExceeded", NOON)
    assert pool.urgent
    docs = pool.all_docs(NOON)
    assert not pool.urgent
    assert {d.fingerprint: (d.state, d.search_calls_spent, d.quota_day) for d in docs} == {
        "…0001": ("live", 7, "2026-11-24"),
        "…0002": ("parked", 0, "2026-11-24"),
    }

    restarted = KeyPool(entries, search_calls_per_day=100)
    restarted.load(docs, NOON + timedelta(hours=1))
    assert restarted.calls_left(NOON + timedelta(hours=1)) == 93
    assert restarted.state_of("…0002") == "parked"
    # a key moved to another project is not confused with its old state
    moved = KeyPool(parse_key_entries([f"beta:{K1}", K2]), search_calls_per_day=100)
    moved.load(docs, NOON)
    assert moved.calls_left(NOON) == 100

    tomorrow = KeyPool(entries, search_calls_per_day=100)
    tomorrow.load(docs, MIDNIGHT_PT + timedelta(hours=1))
    assert tomorrow.calls_left(MIDNIGHT_PT + timedelta(hours=1)) == 200
    assert tomorrow.counts(MIDNIGHT_PT + timedelta(hours=1)).parked == 0
