"""What polls measured, smoothed (upload rate and cost), and the freshness digest's percentiles over a day."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from services.common.fetcher_state import PollStatsDoc, freshness_digest, freshness_docs
from services.common.freshness import FreshnessDigest
from services.common.poll_stats import PollStats, cost_decay

NOON = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def test_the_rate_is_videos_over_the_seconds_they_came_in_and_a_burst_moves_it_only_partly() -> None:
    stats = PollStats()
    stats.record(videos=60, calls=2, seconds=3600, cost_decay=cost_decay(6))  # the first window: an hour
    assert stats.upload_rate == pytest.approx(60 / 3600)
    for _ in range(20):
        stats.record(videos=10, calls=1, seconds=600, cost_decay=cost_decay(6))
    assert stats.upload_rate == pytest.approx(1 / 60, rel=0.01)
    stats.record(videos=100, calls=3, seconds=600, cost_decay=cost_decay(6))  # one burst of ten times the rate
    assert 1 / 60 < stats.upload_rate < 3 / 60


def test_a_lasting_change_of_rate_is_followed_within_a_few_polls() -> None:
    stats = PollStats()
    for _ in range(20):
        stats.record(videos=1, calls=1, seconds=600, cost_decay=cost_decay(6))
    for polls in range(1, 6):
        stats.record(videos=25, calls=1, seconds=600, cost_decay=cost_decay(6))
        if polls == 3:
            assert stats.upload_rate > 12 / 600  # half-way to 25 in three polls
    assert stats.upload_rate > 16 / 600


def test_the_cost_counts_the_calls_beyond_each_polls_first_per_second_of_interval() -> None:
    stats = PollStats()
    for n in range(36):  # a late sweep of 3 pages every sixth poll, 1 page otherwise, 600 s apart
        stats.record(videos=5, calls=3 if n % 6 == 5 else 1, seconds=600, cost_decay=cost_decay(6))
    assert stats.extra_calls_per_second == pytest.approx(2 / 6 / 600, rel=0.25)
    stats.record(videos=0, calls=0, seconds=600, cost_decay=cost_decay(6))  # no call made: nothing measured
    assert stats.polls == 36
    assert PollStatsDoc.of(stats).stats() == stats


def test_freshness_percentiles_are_within_two_and_a_half_percent_over_the_last_day() -> None:
    rng = random.Random(7)
    digest = FreshnessDigest()
    delays = [rng.expovariate(1 / 600) for _ in range(5000)]
    for hour in range(24):
        digest.add(delays[hour * 200 : (hour + 1) * 200], NOON + timedelta(hours=hour, minutes=30))
    now = NOON + timedelta(hours=23, minutes=45)
    count, (p50, p99) = digest.window_percentiles(now, (0.5, 0.99))
    ordered = sorted(delays[:4800])
    assert count == 4800
    assert p50 == pytest.approx(ordered[2399], rel=0.026)
    assert p99 == pytest.approx(ordered[4751], rel=0.026)
    # a day later the old hours are gone (the digest keeps 25 hours)
    later = now + timedelta(hours=30)
    digest.add([5.0], later)
    assert digest.window_percentiles(later, (0.5,)) == (1, [pytest.approx(5.0, rel=0.026)])
    assert len(digest.hours) == 1
    assert freshness_digest(freshness_docs(digest)) == digest
