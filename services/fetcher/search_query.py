"""A search query as a work item: one poll reads its head (or a late sweep), then its gaps.

Each poll, newest first: a head poll from the watermark or, every ``LATE_SWEEP_EVERY`` polls of
the query, a late sweep whose window holds the head poll's; then the gaps earlier walks left,
first queued first, with one page of the poll's ``MAX_PAGES_PER_CYCLE`` kept for them when there
is a backlog. The query's progress (``progress.py``) moves only after the broker confirmed the
messages of the pages read, and is saved, fenced by the lease, at the end of every poll.

Every poll also measures, for the planner, the new videos it published, its search calls and the
seconds since the query's previous poll (``services/common/poll_stats.py``), and, for the
query's freshness, the delay from each new video's ``publishedAt`` to the broker's confirm of its
message (not for the query's very first poll, which reads its initial lookback).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from services.common.events import VideoEvent
from services.common.poll_plan import ItemInputs
from services.common.poll_stats import cost_decay
from services.fetcher.clock import Clock
from services.fetcher.delivery import Delivery
from services.fetcher.gateway import NoUsableKeyError, YouTubeGateway
from services.fetcher.keys import KeyPool
from services.fetcher.lease import LeaderLease, LeaseLostError
from services.fetcher.metrics import FetcherMetrics
from services.fetcher.progress import QueryProgress, WalkOutcome, Window
from services.fetcher.store import FetcherStore
from services.fetcher.walk import PageAllowance, Walker, WalkKind

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchPolicy:
    """How every search query is polled (the settings of the same names)."""

    max_pages_per_cycle: int
    late_sweep_every: int
    overlap_seconds: float
    initial_lookback_seconds: float


@dataclass(frozen=True)
class SearchQueryParts:
    """What a search query's polls use, shared by every query."""

    walker: Walker
    delivery: Delivery
    gateway: YouTubeGateway
    store: FetcherStore
    pool: KeyPool
    lease: LeaderLease
    clock: Clock
    metrics: FetcherMetrics


class SearchQuery:
    """One search query's polls; its progress is read from MongoDB by ``load``.

    ``weight`` scales the query's share of the search budget (1: an even share of what its upload
    rate earns it).
    """

    def __init__(self, query: str, policy: SearchPolicy, parts: SearchQueryParts, weight: float = 1.0) -> None:
        self.query = query
        self.weight = weight
        self._policy = policy
        self._parts = parts
        self._progress: QueryProgress | None = None

    @property
    def name(self) -> str:
        return self.query

    @property
    def log_context(self) -> dict[str, str]:
        return {"query": self.query}

    def plan_inputs(self) -> ItemInputs:
        stats = self._progress.poll_stats if self._progress is not None else None
        return ItemInputs(
            name=self.query,
            upload_rate=stats.upload_rate if stats else 0.0,
            extra_calls_per_second=stats.extra_calls_per_second if stats else 0.0,
            weight=self.weight,
        )

    @property
    def progress(self) -> QueryProgress:
        assert self._progress is not None, "load() first"
        return self._progress

    async def load(self, now: datetime) -> None:
        """Start from what the previous leader persisted (it may have been us)."""
        parts, lookback = self._parts, self._policy.initial_lookback_seconds
        doc = await parts.store.load_query(self.query)
        progress = QueryProgress.from_doc(doc, now, lookback) if doc else QueryProgress.fresh(self.query, now, lookback)
        progress.seen = await parts.store.load_seen(self.query, progress.prune_horizon(self._policy.overlap_seconds))
        self._progress = progress
        if doc is None:
            # Saved before the first walk: a crash in it must not move the start of the window.
            await parts.store.save_query(progress.to_doc(now, self.weight), parts.lease.check())

    async def poll(self) -> None:
        """Head poll or sweep, then gaps; raises NoUsableKeyError or LeaseLostError after saving."""
        parts, progress = self._parts, self.progress
        # State writes are fenced by MongoDB, so they may carry the token the walk began with
        # even if the lease is lost during it; calls and publishes check the lease afresh.
        token = parts.lease.check()
        pages = PageAllowance(self._policy.max_pages_per_cycle)
        calls_before = parts.gateway.search_calls
        started, since = parts.clock.now(), progress.last_poll_at or progress.origin
        progress.cycles_since_sweep += 1
        # With a backlog, one page of the poll's allowance stays for it, so recurring walks that
        # fill the page cap cannot starve the gaps for ever.
        reserve = 1 if progress.gaps and pages.left > 1 else 0
        pages.left -= reserve
        outcome = await self._recurring_walk(pages)
        pages.left += reserve
        published, error = await self._walk_gaps(pages, outcome)
        progress.search_calls_last_cycle = parts.gateway.search_calls - calls_before
        progress.poll_stats.record(
            videos=published,
            calls=progress.search_calls_last_cycle,
            seconds=(started - since).total_seconds(),
            cost_decay=cost_decay(self._policy.late_sweep_every),
        )
        if published:
            logger.info(
                "published new videos",
                extra={"query": self.query, "count": published, "search_calls": progress.search_calls_last_cycle},
            )
        now = parts.clock.now()
        self._show_freshness(now)
        await parts.store.save_keys(parts.pool.take_dirty(now), token)
        await parts.store.save_query(progress.to_doc(now, self.weight), token)
        if isinstance(error, (LeaseLostError, NoUsableKeyError)):
            raise error
        if error is not None:
            logger.warning(
                "walk cut short; the rest waits for the next cycle",
                extra={"query": self.query, "error": str(error)[:300], "gaps": len(progress.gaps)},
            )

    async def _recurring_walk(self, pages: PageAllowance) -> WalkOutcome:
        """The walk every poll makes: the head poll, or the late sweep (whose window holds the head poll's) when due."""
        progress, overlap, clock = self.progress, self._policy.overlap_seconds, self._parts.clock
        started = clock.now()
        if not progress.sweep_due(self._policy.late_sweep_every):
            head = progress.head_window()
            outcome = await self._walk("head", head, known_up_to=progress.watermark, pages=pages)
            progress.after_head(head, outcome, clock.now())
            return outcome
        floor = progress.watermark
        window = progress.sweep_window(overlap)
        outcome = await self._walk("sweep", window, known_up_to=None, pages=pages)
        progress.after_sweep(window, outcome, floor, clock.now())
        progress.last_poll_at = started
        if outcome.complete:
            horizon = progress.prune_horizon(overlap)
            progress.prune_seen(horizon)
            await self._parts.store.prune_seen(self.query, horizon)
        return outcome

    async def _walk_gaps(self, pages: PageAllowance, outcome: WalkOutcome) -> tuple[int, BaseException | None]:
        """Walk the gaps, oldest queued first, while pages are left and nothing went wrong."""
        published, error = outcome.published, outcome.error
        for gap in list(self.progress.gaps):
            if error is not None or pages.left <= 0:
                break
            outcome = await self._walk("gap", gap, known_up_to=None, pages=pages)
            self.progress.after_gap(gap, outcome)
            published += outcome.published
            error = outcome.error
        return published, error

    async def _walk(
        self, kind: WalkKind, window: Window, *, known_up_to: datetime | None, pages: PageAllowance
    ) -> WalkOutcome:
        return await self._parts.walker.walk(
            kind,
            self.query,
            window,
            seen=self.progress.seen,
            known_up_to=known_up_to,
            pages=pages,
            publish=self._publish,
        )

    async def _publish(self, fresh: list[VideoEvent]) -> int:
        events = await self._parts.delivery.deliver(self.query, fresh)
        confirmed = self._parts.clock.now()
        progress = self.progress
        for event in events:
            progress.seen[event.video_id] = event.published_at
        progress.videos_published += len(events)
        if progress.poll_stats.polls > 0:  # not the first poll: its videos are the initial lookback
            progress.freshness.add([(confirmed - e.published_at).total_seconds() for e in events], confirmed)
        await self._parts.store.add_seen(self.query, events)
        return len(events)

    def _show_freshness(self, now: datetime) -> None:
        _, (p50, p99) = self.progress.freshness.window_percentiles(now, (0.5, 0.99))
        for label, value in (("0.5", p50), ("0.99", p99)):
            if value is not None:
                self._parts.metrics.freshness.labels(self.query, label).set(value)
