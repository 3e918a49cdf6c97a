"""Per-query progress: the watermark, the windows still to walk, and the ids already published.

Three kinds of walk read a query's results, newest first:

- the **head poll** asks ``publishedAfter = watermark`` (inclusive: the boundary video repeats)
  and stops at the first page that brings nothing new (only videos published before, at or
  below the watermark); a quiet poll costs one call;
- a **gap** is a window ``[after, before]`` a walk could not finish (page cap, errors, quota):
  the part already read is kept, the rest is walked in later polls, first queued first;
- a **late sweep** every ``LATE_SWEEP_EVERY`` polls of the query (in place of that poll's head
  poll, whose window it holds) re-reads everything from ``OVERLAP_SECONDS``
  below the watermark the previous sweep started from (below the moment of the first poll, for
  the first sweep). The watermark is a publish time, never ahead of YouTube's clock, so a video
  search indexes at most ``OVERLAP_SECONDS`` after its ``publishedAt`` always falls inside the
  first sweep after it became visible, however long apart the polls are, and whatever head polls,
  gaps or restarts happened in between.

The watermark and the gaps only move after the broker confirmed the messages of the pages read,
so a crash at any point loses nothing: the next run walks again what was not recorded. Beside them
the query keeps what its polls measured (``poll_stats``: upload rate and cost, for the planner) and
its measured freshness (``freshness``), saved with the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.common.fetcher_state import (
    PollStatsDoc,
    QueryStateDoc,
    WindowDoc,
    as_utc,
    freshness_digest,
    freshness_docs,
)
from services.common.freshness import FreshnessDigest
from services.common.poll_stats import PollStats


@dataclass
class Window:
    after: datetime
    before: datetime | None = None  # None: up to now

    def __str__(self) -> str:
        return f"[{self.after.isoformat()}, {self.before.isoformat() if self.before else 'now'}]"


@dataclass
class WalkOutcome:
    complete: bool = False
    newest: datetime | None = None  # newest publishedAt met on any page
    oldest: datetime | None = None  # oldest publishedAt met on any page
    published: int = 0
    pages: int = 0
    error: BaseException | None = None

    def met(self, published_at: datetime) -> None:
        self.newest = published_at if self.newest is None else max(self.newest, published_at)
        self.oldest = published_at if self.oldest is None else min(self.oldest, published_at)


@dataclass
class QueryProgress:
    query: str
    watermark: datetime
    origin: datetime
    sweep_floor: datetime | None = None
    gaps: list[Window] = field(default_factory=list)
    seen: dict[str, datetime] = field(default_factory=dict)
    cycles_since_sweep: int = 0  # polls of this query since its last sweep
    last_poll_at: datetime | None = None
    last_sweep_at: datetime | None = None
    videos_published: int = 0
    search_calls_last_cycle: int = 0  # search calls of its last poll
    poll_stats: PollStats = field(default_factory=PollStats)
    freshness: FreshnessDigest = field(default_factory=FreshnessDigest)

    @classmethod
    def fresh(cls, query: str, now: datetime, lookback_seconds: float) -> QueryProgress:
        start = now - timedelta(seconds=lookback_seconds)
        # As if a sweep had just started: a video still hidden now was published at most
        # OVERLAP_SECONDS ago, so the first sweep reaches OVERLAP_SECONDS below this moment.
        return cls(query=query, watermark=start, origin=start, sweep_floor=now)

    @classmethod
    def from_doc(cls, doc: QueryStateDoc, now: datetime, lookback_seconds: float) -> QueryProgress:
        if doc.watermark is None:
            progress = cls.fresh(doc.query, now, lookback_seconds)
        else:
            watermark = as_utc(doc.watermark)
            progress = cls(query=doc.query, watermark=watermark, origin=as_utc(doc.origin or watermark))
        progress.sweep_floor = as_utc(doc.sweep_floor) if doc.sweep_floor else progress.watermark
        progress.gaps = [Window(as_utc(g.after), as_utc(g.before)) for g in doc.gaps]
        progress.last_poll_at = as_utc(doc.last_poll_at) if doc.last_poll_at else None
        progress.last_sweep_at = as_utc(doc.last_sweep_at) if doc.last_sweep_at else None
        progress.videos_published = doc.videos_published
        progress.poll_stats = doc.poll_stats.stats()
        progress.freshness = freshness_digest(doc.freshness)
        return progress

    def to_doc(self, now: datetime, weight: float = 1.0) -> QueryStateDoc:
        return QueryStateDoc(
            query=self.query,
            watermark=self.watermark,
            last_poll_at=self.last_poll_at,
            last_sweep_at=self.last_sweep_at,
            videos_published=self.videos_published,
            origin=self.origin,
            sweep_floor=self.sweep_floor,
            gaps=[WindowDoc(after=g.after, before=g.before) for g in self.gaps if g.before is not None],
            search_calls_last_cycle=self.search_calls_last_cycle,
            poll_stats=PollStatsDoc.of(self.poll_stats),
            weight=weight,
            freshness=freshness_docs(self.freshness),
            updated_at=now,
        )

    # Windows ---------------------------------------------------------------------------------

    def head_window(self) -> Window:
        return Window(self.watermark)

    def sweep_due(self, every: int) -> bool:
        return self.cycles_since_sweep >= every

    def sweep_window(self, overlap_seconds: float) -> Window:
        """From OVERLAP below the last sweep's floor, and never above the head poll's start."""
        floor = self.sweep_floor or self.watermark
        return Window(max(self.origin, min(self.watermark, floor - timedelta(seconds=overlap_seconds))))

    def prune_horizon(self, overlap_seconds: float) -> datetime:
        """No future walk reaches below this publish time, so older seen ids can go."""
        lows = [self.sweep_window(overlap_seconds).after, self.watermark, *(g.after for g in self.gaps)]
        return min(lows)

    # Recording walks -------------------------------------------------------------------------

    def after_head(self, window: Window, outcome: WalkOutcome, now: datetime) -> None:
        self._advance(outcome, now)
        if not outcome.complete:
            self._leave_gap(window, outcome)
        self.last_poll_at = now

    def after_gap(self, gap: Window, outcome: WalkOutcome) -> None:
        if outcome.complete:
            self.gaps = [g for g in self.gaps if g is not gap]
        elif outcome.oldest is not None and gap.before is not None:
            gap.before = min(gap.before, outcome.oldest)

    def after_sweep(self, window: Window, outcome: WalkOutcome, floor_at_start: datetime, now: datetime) -> None:
        if outcome.complete:
            self._advance(outcome, now)
            # Everything from window.after up to now was read: gaps inside the window are done.
            kept = []
            for gap in self.gaps:
                if gap.after >= window.after:
                    continue
                if gap.before is not None and gap.before > window.after:
                    gap.before = window.after
                kept.append(gap)
            self.gaps = kept
        elif outcome.oldest is not None:
            # The part read reaches up to now; what lies below it is kept as a gap.
            self._advance(outcome, now)
            self._leave_gap(window, outcome)
        else:
            return  # nothing read: the sweep stays due
        self.sweep_floor = floor_at_start
        self.cycles_since_sweep = 0
        self.last_sweep_at = now

    def _advance(self, outcome: WalkOutcome, now: datetime) -> None:
        if outcome.newest is not None:
            # A publishedAt ahead of our clock (skew) must not lift the watermark past videos to come.
            self.watermark = max(self.watermark, min(outcome.newest, now))

    def _leave_gap(self, window: Window, outcome: WalkOutcome) -> None:
        """A walk stopped early: the part below the oldest video it reached is still to read."""
        if outcome.oldest is None or outcome.oldest <= window.after:
            if outcome.oldest is None and window.before is not None:
                self.add_gap(Window(window.after, window.before))
            return
        self.add_gap(Window(window.after, outcome.oldest))

    def add_gap(self, gap: Window) -> None:
        """Queue what ``gap`` holds that no queued gap holds yet; gaps stay disjoint.

        A gap never grows over ground another walk already read: merging a sweep's leftover into an
        older gap would stretch it up over videos read since, and a walk (newest first) cut at the
        page cap would read that same top again every cycle.
        """
        assert gap.before is not None
        pieces = [Window(gap.after, gap.before)]
        for other in self.gaps:
            assert other.before is not None
            rest = []
            for piece in pieces:
                assert piece.before is not None
                if piece.before < other.after or other.before < piece.after:
                    rest.append(piece)
                    continue
                if piece.after < other.after:
                    rest.append(Window(piece.after, other.after))
                if other.before < piece.before:
                    rest.append(Window(other.before, piece.before))
            pieces = rest
        # First in, first out: a cut sweep may queue the same stretch again every cycle, and
        # must not keep the gaps queued before it waiting for ever.
        self.gaps = [*self.gaps, *pieces]

    # Seen ids --------------------------------------------------------------------------------

    def prune_seen(self, horizon: datetime) -> None:
        self.seen = {vid: published for vid, published in self.seen.items() if published >= horizon}
