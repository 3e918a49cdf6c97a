"""Per-query progress: watermark, gaps and late sweeps never leave a visible video unread."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.fetcher.progress import QueryProgress, WalkOutcome, Window

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_cut_head_poll_leaves_the_unread_part_as_a_gap_and_moves_the_watermark() -> None:
    progress = QueryProgress.fresh("cricket", at(0), lookback_seconds=3600)
    head = progress.head_window()
    assert head.after == at(-3600)
    cut = WalkOutcome(complete=False, newest=at(-5), oldest=at(-1000), published=500)
    progress.after_head(head, cut, at(0))
    assert progress.watermark == at(-5)
    assert [(g.after, g.before) for g in progress.gaps] == [(at(-3600), at(-1000))]
    # the gap walk is cut again: the gap shrinks to what is still unread
    gap = progress.gaps[0]
    progress.after_gap(gap, WalkOutcome(complete=False, newest=at(-1000), oldest=at(-2000)))
    assert [(g.after, g.before) for g in progress.gaps] == [(at(-3600), at(-2000))]
    progress.after_gap(gap, WalkOutcome(complete=True, newest=at(-2000), oldest=at(-3500)))
    assert progress.gaps == []


def test_a_walk_that_read_nothing_changes_nothing() -> None:
    progress = QueryProgress.fresh("cricket", at(0), lookback_seconds=600)
    progress.after_head(progress.head_window(), WalkOutcome(complete=False), at(0))
    assert progress.watermark == at(-600)
    assert progress.gaps == []


def test_a_watermark_never_runs_ahead_of_the_clock() -> None:
    progress = QueryProgress.fresh("cricket", at(0), lookback_seconds=600)
    progress.after_head(progress.head_window(), WalkOutcome(complete=True, newest=at(3600), oldest=at(-10)), at(0))
    assert progress.watermark == at(0)


def test_gaps_stay_disjoint_and_a_complete_sweep_closes_the_gaps_it_covered() -> None:
    progress = QueryProgress.fresh("cricket", at(0), lookback_seconds=3600)
    progress.add_gap(Window(at(-3000), at(-2000)))
    # only the part not already a gap is added: a gap never grows over ground read since
    progress.add_gap(Window(at(-2500), at(-1500)))
    progress.add_gap(Window(at(-1000), at(-900)))
    assert [(g.after, g.before) for g in progress.gaps] == [
        (at(-3000), at(-2000)),
        (at(-2000), at(-1500)),
        (at(-1000), at(-900)),
    ]
    # queued again in part: only the new part goes to the end of the queue
    progress.add_gap(Window(at(-1100), at(-950)))
    assert [(g.after, g.before) for g in progress.gaps][-1] == (at(-1100), at(-1000))
    progress.gaps.pop()
    window = Window(at(-2000))
    progress.cycles_since_sweep = 6
    progress.after_sweep(window, WalkOutcome(complete=True, newest=at(0), oldest=at(-1990)), at(-50), at(0))
    assert [(g.after, g.before) for g in progress.gaps] == [(at(-3000), at(-2000))]
    assert progress.sweep_floor == at(-50)
    assert progress.cycles_since_sweep == 0


def test_the_state_document_round_trips() -> None:
    progress = QueryProgress.fresh("cricket", at(0), lookback_seconds=3600)
    progress.after_head(progress.head_window(), WalkOutcome(complete=False, newest=at(-1), oldest=at(-60)), at(0))
    progress.videos_published = 42
    again = QueryProgress.from_doc(progress.to_doc(at(1)), at(5), lookback_seconds=10)
    assert (again.watermark, again.origin, again.sweep_floor) == (progress.watermark, at(-3600), at(0))
    assert [(g.after, g.before) for g in again.gaps] == [(at(-3600), at(-60))]
    assert again.videos_published == 42


@dataclass(frozen=True)
class _Video:
    published: float
    delay: float  # seconds after publishing until search shows it


OVERLAP = 600.0
PAGE = 3


@settings(max_examples=300, deadline=None, database=None)
@given(
    # Whole, distinct seconds, as publishedAt: one second never holds a page's worth of videos (a
    # walk re-reads its inclusive boundary, so a page must reach past it).
    videos=st.lists(
        st.tuples(st.integers(-1800, 7200).map(float), st.one_of(st.just(0.0), st.floats(0, OVERLAP))),
        min_size=1,
        max_size=120,
        unique_by=lambda video: video[0],
    ),
    intervals=st.lists(st.floats(5, 1500), min_size=5, max_size=40),
    page_cap=st.integers(2, 20),
    sweep_every=st.integers(1, 8),
)
def test_every_video_at_most_overlap_late_is_read_after_it_became_visible(
    videos: list[tuple[float, float]], intervals: list[float], page_cap: int, sweep_every: int
) -> None:
    """A model of the poller's cycles: one shared allowance of pages (of three videos) per cycle,
    walks newest first and cut when it runs out, late indexing up to OVERLAP."""
    end = sum(intervals)
    world = [_Video(p, d) for p, d in videos if p <= end]
    lookback = 1800.0
    progress = QueryProgress.fresh("q", at(0), lookback_seconds=lookback)
    read: set[_Video] = set()
    allowance = [0]

    def walk(window: Window, now: float) -> WalkOutcome:
        low = (window.after - T0).total_seconds()
        high = now if window.before is None else min(now, (window.before - T0).total_seconds())
        visible = sorted(
            (v for v in world if low <= v.published <= high and v.published + v.delay <= now),
            key=lambda v: v.published,
            reverse=True,
        )
        taken = visible[: max(allowance[0], 0) * PAGE]
        allowance[0] -= max(1, -(-len(taken) // PAGE))  # an empty answer costs a call too
        read.update(taken)
        outcome = WalkOutcome(complete=len(taken) == len(visible))
        for video in taken:
            outcome.met(at(video.published))
        return outcome

    def cycle(now: float) -> None:
        # as the poller does it: a sweep stands in for the head poll when due, then the gaps
        reserve = 1 if progress.gaps else 0  # one page stays for the backlog
        allowance[0] = page_cap - reserve
        progress.cycles_since_sweep += 1
        if progress.sweep_due(sweep_every):
            floor = progress.watermark
            window = progress.sweep_window(OVERLAP)
            progress.after_sweep(window, walk(window, now), floor, at(now))
        else:
            head = progress.head_window()
            progress.after_head(head, walk(head, now), at(now))
        allowance[0] += reserve
        for gap in list(progress.gaps):
            if allowance[0] <= 0:
                break
            progress.after_gap(gap, walk(gap, now))

    now = 0.0
    for interval in intervals:
        cycle(now)
        now += interval
    # Quiet time afterwards (nothing new is published): enough cycles to work every gap off.
    for _ in range(sweep_every * (len(world) + 3)):
        now += OVERLAP
        cycle(now)

    expected = {v for v in world if v.published >= -lookback}
    missed = sorted((v.published, v.delay) for v in expected - read)
    assert not missed, f"never read: {missed[:5]}"
