"""Auto-follow's choice: the top N of the window join, a follower leaves only below rank 1.5·N, ties keep the set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.fetcher.follows import AutoFollow, choose_auto, keep_limit

T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)
LATER = T0 + timedelta(hours=1)


def channel(n: int) -> str:
    return f"UC{n:022d}"


def ids(chosen: list[AutoFollow]) -> list[str]:
    return [a.channel_id for a in chosen]


def test_the_first_choice_is_the_top_n_by_count_most_first() -> None:
    counts = {channel(n): 10 * n for n in range(1, 8)}
    chosen = choose_auto(counts, [], top_n=3, now=T0)
    assert ids(chosen) == [channel(7), channel(6), channel(5)]
    assert [(a.rank, a.count, a.since) for a in chosen] == [(1, 70, T0), (2, 60, T0), (3, 50, T0)]


def test_a_tie_at_the_boundary_of_a_first_choice_goes_by_channel_id() -> None:
    counts = {channel(9): 5, channel(2): 5, channel(5): 5, channel(1): 9}
    assert ids(choose_auto(counts, [], top_n=2, now=T0)) == [channel(1), channel(2)]


def test_a_newcomer_tying_with_a_follower_at_the_boundary_does_not_change_the_set() -> None:
    first = choose_auto({channel(5): 10, channel(7): 5}, [], top_n=2, now=T0)
    assert ids(first) == [channel(5), channel(7)]
    # channel 3 now has as many videos as channel 7 and would come first by id: the follower stays
    tied = {channel(5): 10, channel(7): 5, channel(3): 5}
    again = choose_auto(tied, first, top_n=2, now=LATER)
    assert ids(again) == [channel(5), channel(7)]
    assert [(a.rank, a.since) for a in again] == [(1, T0), (2, T0)]
    # and it stays so however often it is chosen again
    assert ids(choose_auto(tied, again, top_n=2, now=LATER + timedelta(hours=1))) == ids(first)


def test_two_followers_tying_keep_their_previous_order() -> None:
    first = choose_auto({channel(8): 9, channel(4): 6}, [], top_n=2, now=T0)
    again = choose_auto({channel(8): 6, channel(4): 6}, first, top_n=2, now=LATER)
    assert [(a.channel_id, a.rank) for a in again] == [(channel(8), 1), (channel(4), 2)]


def test_a_follower_stays_down_to_rank_one_and_a_half_n_and_leaves_below() -> None:
    top_n = 4  # joins at rank <= 4, stays down to rank 6
    assert keep_limit(top_n) == 6
    first = choose_auto({channel(n): 100 - n for n in range(1, 5)}, [], top_n=top_n, now=T0)
    assert ids(first) == [channel(n) for n in range(1, 5)]
    # two busier channels arrive: followers 3 and 4 fall to ranks 5 and 6 and stay; the newcomers join
    counts = {channel(n): 100 - n for n in range(1, 5)} | {channel(10): 200, channel(11): 199}
    second = choose_auto(counts, first, top_n=top_n, now=LATER)
    assert [(a.channel_id, a.rank) for a in second] == [
        (channel(10), 1),
        (channel(11), 2),
        (channel(1), 3),
        (channel(2), 4),
        (channel(3), 5),
        (channel(4), 6),
    ]
    # one more: follower 4 falls to rank 7, below 1.5·N, and leaves
    third = choose_auto(counts | {channel(12): 198}, second, top_n=top_n, now=LATER + timedelta(hours=1))
    assert channel(4) not in ids(third)
    assert ids(third)[:3] == [channel(10), channel(11), channel(12)]
    assert [a.rank for a in third] == [1, 2, 3, 4, 5, 6]


def test_a_channel_ranking_between_n_and_one_and_a_half_n_does_not_join() -> None:
    counts = {channel(n): 100 - n for n in range(1, 7)}
    chosen = choose_auto(counts, [], top_n=4, now=T0)
    assert ids(chosen) == [channel(n) for n in range(1, 5)]


def test_a_follower_without_a_video_in_the_window_leaves() -> None:
    first = choose_auto({channel(1): 3, channel(2): 2}, [], top_n=5, now=T0)
    assert ids(choose_auto({channel(1): 3}, first, top_n=5, now=LATER)) == [channel(1)]


def test_explicit_follows_are_not_ranked_and_not_counted_against_n() -> None:
    counts = {channel(1): 50, channel(2): 40, channel(3): 30}
    chosen = choose_auto(counts, [], top_n=2, explicit=[channel(1)], now=T0)
    assert [(a.channel_id, a.rank) for a in chosen] == [(channel(2), 1), (channel(3), 2)]


def test_zero_turns_auto_follow_off_and_drops_the_followers() -> None:
    first = choose_auto({channel(1): 3}, [], top_n=3, now=T0)
    assert choose_auto({channel(1): 3}, first, top_n=0, now=LATER) == []


def test_with_n_of_one_there_is_no_room_below_n() -> None:
    assert keep_limit(1) == 1
    first = choose_auto({channel(1): 3, channel(2): 2}, [], top_n=1, now=T0)
    assert ids(choose_auto({channel(1): 3, channel(2): 4}, first, top_n=1, now=LATER)) == [channel(2)]


def test_a_follower_named_in_follow_channels_leaves_the_auto_set_and_frees_its_place() -> None:
    first = choose_auto({channel(1): 9, channel(2): 5, channel(3): 4}, [], top_n=2, now=T0)
    again = choose_auto({channel(1): 9, channel(2): 5, channel(3): 4}, first, top_n=2, explicit=[channel(1)], now=LATER)
    assert [(a.channel_id, a.rank) for a in again] == [(channel(2), 1), (channel(3), 2)]


@settings(max_examples=300, deadline=None)
@given(
    counts=st.dictionaries(st.integers(0, 40).map(channel), st.integers(1, 12), max_size=40),
    followed=st.lists(st.integers(0, 40).map(channel), unique=True, max_size=30),
    top_n=st.integers(1, 20),
)
def test_any_choice_holds_the_top_n_at_most_one_and_a_half_n_and_is_stable(
    counts: dict[str, int], followed: list[str], top_n: int
) -> None:
    incumbents = [AutoFollow(c, rank, 1, T0) for rank, c in enumerate(followed, start=1)]
    chosen = choose_auto(counts, incumbents, top_n=top_n, now=LATER)
    assert len(chosen) <= keep_limit(top_n)
    assert len(chosen) >= min(top_n, len(counts))
    # nobody outside the set has more videos than the least of the first N ranks
    first_n = {a.channel_id for a in chosen if a.rank <= top_n}
    assert len(first_n) == min(top_n, len(counts))
    floor = min((counts[c] for c in first_n), default=0)
    assert all(n <= floor for c, n in counts.items() if c not in first_n)
    # the same counts choose the same set again: a tie or a rank between N and 1.5·N never flaps
    assert ids(choose_auto(counts, chosen, top_n=top_n, now=LATER + timedelta(hours=1))) == ids(chosen)
