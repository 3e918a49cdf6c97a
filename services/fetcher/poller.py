"""The poll loop: lead (or stand by), spend the quota evenly, walk each query, publish what is new.

Each cycle, per query: a head poll (or, every ``LATE_SWEEP_EVERY`` cycles, a late sweep, whose
window holds the head poll's), then the gaps earlier walks left — see ``progress.py``. A walk that meets search's
~500-result cap splits its window with ``publishedBefore`` at the oldest video it reached and
walks the rest as a sub-window. New videos are enriched through videos.list and published with
publisher confirms; only then do the seen ids, the watermark and the gaps move. Between cycles the
loop sleeps the budget's effective interval; with every key parked it sleeps until the earliest
reset, making no call at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from services.common.events import VideoEvent
from services.common.fetcher_state import BudgetDoc
from services.common.timefmt import format_rfc3339
from services.fetcher.budget import BudgetPlanner, Plan
from services.fetcher.clock import Clock, sleep_unless
from services.fetcher.gateway import NoUsableKeyError, YouTubeGateway
from services.fetcher.keys import KeyPool
from services.fetcher.lease import LeaderLease, LeaseLostError
from services.fetcher.metrics import FetcherMetrics
from services.fetcher.progress import QueryProgress, WalkOutcome, Window
from services.fetcher.publisher import VideoPublisher
from services.fetcher.settings import Settings
from services.fetcher.snippets import enrich_event, event_from_search_item
from services.fetcher.store import FetcherStore
from services.fetcher.youtube_client import ErrorKind, YouTubeApiError

logger = logging.getLogger(__name__)

# search.list serves at most ~500 results per search; a walk that got this many splits its window.
SEARCH_RESULT_CAP = 500
PAGE_SIZE = 50
SPLIT_AFTER_ITEMS = SEARCH_RESULT_CAP - PAGE_SIZE

Role = Literal["starting", "leader", "standby"]


class MalformedPageError(Exception):
    """A search answer that parsed as JSON but is not a page of results; the walk is cut there."""


WalkKind = Literal["head", "gap", "sweep"]


@dataclass
class _PageAllowance:
    left: int


class Poller:
    def __init__(
        self,
        *,
        settings: Settings,
        clock: Clock,
        gateway: YouTubeGateway,
        publisher: VideoPublisher,
        store: FetcherStore,
        lease: LeaderLease,
        pool: KeyPool,
        metrics: FetcherMetrics,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._gateway = gateway
        self._publisher = publisher
        self._store = store
        self._lease = lease
        self._pool = pool
        self._metrics = metrics
        self._queries = list(dict.fromkeys(settings.search_queries))
        self._planner = BudgetPlanner(settings.poll_interval_seconds, len(self._queries), settings.late_sweep_every)
        self._progress: dict[str, QueryProgress] = {}
        self._stopping = False
        self._wake = asyncio.Event()
        self.role: Role = "starting"
        self.plan: Plan | None = None
        self.resume_at: datetime | None = None
        self.last_cycle_at: datetime | None = None
        # While the loop waits between cycles: when the next one starts (None while one runs).
        self.next_cycle_at: datetime | None = None
        self.cycles = 0
        # Search calls of head polls and sweeps this cycle: what recurs every cycle. Gaps are backlog.
        self._recurring_calls = 0
        # The first cycle after taking the lease catches up on whatever happened meanwhile.
        self._catching_up = True
        # The lease token the in-memory state belongs to: a new token means another leader may
        # have moved the state on in between, so it is read again from MongoDB.
        self._state_token: int | None = None

    # Lifecycle -------------------------------------------------------------------------------

    def stop(self) -> None:
        """Finish the cycle in hand, then return from ``run``."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        renewer = asyncio.create_task(self._keep_lease(), name="lease-renewer")
        try:
            while not self._stopping:
                self._wake.clear()
                if self._stopping:
                    break
                if not self._lease.held() and not await self._lead():
                    # A standby tries often enough to take over within the TTL plus one poll interval.
                    wait = min(self._settings.poll_interval_seconds, self._lease.ttl_seconds / 4)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=wait)
                    continue
                try:
                    await self._lead_once()
                except LeaseLostError as exc:
                    self._stand_down(str(exc))
                except Exception:
                    # MongoDB or RabbitMQ away mid-cycle: what was confirmed is recorded or will
                    # be walked again; try again after a pause rather than let the loop die.
                    logger.exception("poll cycle failed; retrying")
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=self._settings.poll_interval_seconds)
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            try:
                await self._lease.release()
            except Exception as exc:
                logger.warning("could not release the lease; it expires by itself", extra={"error": repr(exc)})
            self._metrics.leader.set(0)

    async def _lead(self) -> bool:
        try:
            acquired = await self._lease.try_acquire()
            if acquired and self._lease.token != self._state_token:
                await self._load_state()
                self._state_token = self._lease.token
        except Exception as exc:
            logger.warning("lease or state request to MongoDB failed; standing by", extra={"error": repr(exc)[:500]})
            self._lease.stand_down()
            self.role = "standby"
            self._metrics.leader.set(0)
            return False
        if not acquired:
            if self.role != "standby":
                logger.info("standing by: another fetcher holds the leader lease", extra={"holder": self._lease.holder})
            self.role = "standby"
            self._metrics.leader.set(0)
            return False
        self.role = "leader"
        self._catching_up = True
        self._metrics.leader.set(1)
        return True

    def _stand_down(self, why: str) -> None:
        logger.warning("standing down: the leader lease is lost", extra={"why": why})
        self._lease.stand_down()
        self.role = "standby"
        self._metrics.leader.set(0)

    async def _keep_lease(self) -> None:
        while True:
            await asyncio.sleep(self._lease.ttl_seconds / 3)
            if self._lease.token is None:
                continue
            try:
                kept = await self._lease.renew()
            except Exception as exc:
                logger.warning("could not renew the leader lease", extra={"error": repr(exc)})
                kept = self._lease.held()
            if not kept:
                self._wake.set()

    async def _load_state(self) -> None:
        """A new leader starts from what the previous one persisted (it may have been us)."""
        now = self._clock.now()
        self._pool.load(await self._store.load_keys(), now)
        lookback = self._settings.initial_lookback_seconds
        for query in self._queries:
            doc = await self._store.load_query(query)
            progress = QueryProgress.from_doc(doc, now, lookback) if doc else QueryProgress.fresh(query, now, lookback)
            progress.seen = await self._store.load_seen(query, progress.prune_horizon(self._settings.overlap_seconds))
            self._progress[query] = progress
            if doc is None:
                # Saved before the first walk: a crash in it must not move the start of the window.
                await self._store.save_query(progress.to_doc(now), self._lease.check())

    # One turn of the loop as leader ----------------------------------------------------------

    async def _lead_once(self) -> None:
        now = self._clock.now()
        resume_at = self._pool.resume_at(now)
        if resume_at is not None:
            if self.resume_at is None:
                counts = self._pool.counts(now)
                logger.warning(
                    "every key is parked or disabled: no call until the quota resets",
                    extra={"resume_at": resume_at.isoformat(), "parked": counts.parked, "disabled": counts.disabled},
                )
            self.resume_at = resume_at
            self._refresh_budget(now)
            await self._save_budget(now)
            await sleep_unless(self._clock, resume_at, self._wake)
            return
        if self.resume_at is not None:
            logger.info("the quota reset: polling again")
        self.resume_at = None
        loop = asyncio.get_running_loop()
        started = loop.time()
        self._recurring_calls = 0
        with self._metrics.cycle_seconds.time():
            await self._cycle()
        if not self._catching_up:
            # Catch-up and gap calls are already out of calls_left and do not recur: not counted.
            self._planner.record_cycle(self._recurring_calls)
        self._catching_up = False
        now = self._clock.now()
        if self._pool.resume_at(now) is not None:
            return  # the keys ran out during the cycle: the next turn parks the loop
        plan = self._refresh_budget(now)
        await self._save_budget(now)
        pause = max(0.0, plan.effective_interval - (loop.time() - started))
        self.next_cycle_at = now + timedelta(seconds=pause)
        try:
            await sleep_unless(self._clock, self.next_cycle_at, self._wake)
        finally:
            self.next_cycle_at = None

    async def _cycle(self) -> None:
        self.cycles += 1
        for query in self._queries:
            try:
                await self._poll_query(query)
            except NoUsableKeyError:
                break  # the loop notices and sleeps until the reset
            except LeaseLostError:
                raise
            except Exception:
                logger.exception("poll of a query failed; the next cycle tries again", extra={"query": query})
        self.last_cycle_at = self._clock.now()

    async def _poll_query(self, query: str) -> None:
        # State writes are fenced by MongoDB, so they may carry the token the walk began with
        # even if the lease is lost during it; calls and publishes check the lease afresh.
        token = self._lease.check()
        progress = self._progress[query]
        pages = _PageAllowance(self._settings.max_pages_per_cycle)
        calls_before = self._gateway.search_calls
        progress.cycles_since_sweep += 1

        now = self._clock.now()
        # With a backlog, one page of the cycle's allowance stays for it, so recurring walks that
        # fill the page cap cannot starve the gaps for ever.
        reserve = 1 if progress.gaps and pages.left > 1 else 0
        pages.left -= reserve
        if progress.sweep_due(self._settings.late_sweep_every):
            # The sweep's window holds the head poll's, and it is read newest first too: this
            # cycle it stands in for the head poll.
            floor = progress.watermark
            window = progress.sweep_window(self._settings.overlap_seconds)
            outcome = await self._walk("sweep", query, window, known_up_to=None, pages=pages)
            progress.after_sweep(window, outcome, floor, self._clock.now())
            progress.last_poll_at = now
            if outcome.complete:
                horizon = progress.prune_horizon(self._settings.overlap_seconds)
                progress.prune_seen(horizon)
                await self._store.prune_seen(query, horizon)
        else:
            head = progress.head_window()
            outcome = await self._walk("head", query, head, known_up_to=progress.watermark, pages=pages)
            progress.after_head(head, outcome, self._clock.now())
        pages.left += reserve
        self._recurring_calls += self._gateway.search_calls - calls_before
        published = outcome.published
        error = outcome.error
        for gap in list(progress.gaps):
            if error is not None or pages.left <= 0:
                break
            outcome = await self._walk("gap", query, gap, known_up_to=None, pages=pages)
            progress.after_gap(gap, outcome)
            published += outcome.published
            error = outcome.error
        progress.search_calls_last_cycle = self._gateway.search_calls - calls_before
        if published:
            logger.info(
                "published new videos",
                extra={"query": query, "count": published, "search_calls": progress.search_calls_last_cycle},
            )

        now = self._clock.now()
        await self._store.save_keys(self._pool.take_dirty(now), token)
        await self._store.save_query(progress.to_doc(now), token)
        if isinstance(error, (LeaseLostError, NoUsableKeyError)):
            raise error
        if error is not None:
            logger.warning(
                "walk cut short; the rest waits for the next cycle",
                extra={"query": query, "error": str(error)[:300], "gaps": len(progress.gaps)},
            )

    # Walking ---------------------------------------------------------------------------------

    async def _walk(
        self, kind: WalkKind, query: str, window: Window, *, known_up_to: datetime | None, pages: _PageAllowance
    ) -> WalkOutcome:
        """Read ``window`` newest first, publishing what is new; never raises (see ``outcome.error``).

        With ``known_up_to`` (a head poll: the watermark), the walk ends at the first page whose
        videos were all published before, at or below that watermark: everything there was read.
        Videos published before but above the watermark are what a walk cut short by a crash
        left behind, with the window below them unread: such pages do not end the walk.
        """
        progress = self._progress[query]
        outcome = WalkOutcome()
        walked: set[str] = set()  # ids met on the pages of this walk (since its last restart)
        published_here: set[str] = set()  # ids this walk published
        current = Window(window.after, window.before)
        page_token: str | None = None
        in_window = 0
        restarted = False
        try:
            while pages.left > 0:
                pages.left -= 1
                try:
                    page = await self._gateway.search(self._search_params(query, current, page_token))
                except YouTubeApiError as exc:
                    if exc.kind is ErrorKind.INVALID_PAGE_TOKEN and not restarted:
                        logger.info("stale page token: restarting the walk at page one", extra={"query": query})
                        restarted, page_token, in_window, walked = True, None, 0, set()
                        continue
                    raise
                items = page.get("items")
                if not isinstance(items, list):
                    # Not a page of results (a broken proxy, a bad deploy): read as an empty last
                    # page it would end the walk and drop the rest of the window.
                    raise MalformedPageError(f"search page for {query!r} without a list of items")
                outcome.pages += 1
                events = self._events(items, query)
                fresh = list({e.video_id: e for e in events if e.video_id not in progress.seen}.values())
                known_before = [
                    e
                    for e in events
                    if e.video_id in progress.seen
                    and e.video_id not in published_here
                    and known_up_to is not None
                    and e.published_at <= known_up_to
                ]
                new_to_walk = [e for e in events if e.video_id not in walked]
                walked.update(e.video_id for e in events)
                if fresh:
                    outcome.published += await self._publish(query, fresh)
                    published_here.update(e.video_id for e in fresh)
                # Only a page whose new videos the broker confirmed counts as read: if publishing
                # fails, the window must still reach over this page.
                for event in events:
                    outcome.met(event.published_at)
                in_window += len(items)
                next_token = page.get("nextPageToken")
                if next_token is not None and not isinstance(next_token, str):
                    # This page's videos are published and counted as read; the rest of the
                    # window waits as a gap rather than being taken for the end of the results.
                    raise MalformedPageError(f"search page for {query!r} with a nextPageToken that is not text")
                page_token = next_token or None
                if events and not new_to_walk:
                    outcome.complete = True  # the tokens loop back over pages already read
                    break
                if events and len(known_before) == len(events):
                    outcome.complete = True  # reached videos published before this walk
                    break
                if page_token and in_window < SEARCH_RESULT_CAP:
                    continue
                oldest = outcome.oldest
                if (
                    in_window >= SPLIT_AFTER_ITEMS
                    and oldest is not None
                    and oldest > current.after
                    and (current.before is None or oldest < current.before)
                ):
                    # More than search serves for one window: walk the rest below the oldest reached.
                    self._metrics.window_splits.inc()
                    logger.debug(
                        "window over the result cap: splitting",
                        extra={"query": query, "window": str(current), "below": oldest.isoformat()},
                    )
                    current, page_token, in_window = Window(current.after, oldest), None, 0
                    continue
                outcome.complete = True
                break
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            outcome.error = exc
        self._metrics.walks.labels(kind, "complete" if outcome.complete else "cut").inc()
        return outcome

    def _search_params(self, query: str, window: Window, page_token: str | None) -> dict[str, str]:
        params = {
            "part": "snippet",
            "type": "video",
            "order": "date",
            "maxResults": str(PAGE_SIZE),
            "q": query,
            "publishedAfter": format_rfc3339(window.after),
        }
        if window.before is not None:
            params["publishedBefore"] = format_rfc3339(window.before)
        if page_token:
            params["pageToken"] = page_token
        return params

    def _events(self, items: list[Any], query: str) -> list[VideoEvent]:
        fetched_at = self._clock.now()
        events = []
        for item in items:
            try:
                if not isinstance(item, dict):
                    raise ValueError("search item is not an object")
                events.append(event_from_search_item(item, query, fetched_at))
            except ValueError as exc:
                self._metrics.skipped_items.labels(query).inc()
                logger.warning("skipping unusable search item", extra={"query": query, "error": str(exc)[:300]})
        return events

    async def _publish(self, query: str, fresh: list[VideoEvent]) -> int:
        events = await self._enrich(fresh)
        token = self._lease.check()  # a deposed leader publishes nothing
        await self._publisher.publish_videos(events, token)
        confirmed = self._clock.now()
        progress = self._progress[query]
        for event in events:
            progress.seen[event.video_id] = event.published_at
            self._metrics.publish_lag.observe(max(0.0, (confirmed - event.published_at).total_seconds()))
        progress.videos_published += len(events)
        self._metrics.published.labels(query).inc(len(events))
        logger.debug("published a page of videos", extra={"query": query, "count": len(events)})
        await self._store.add_seen(query, events)
        return len(events)

    async def _enrich(self, events: list[VideoEvent]) -> list[VideoEvent]:
        """Add videos.list details (1 unit for up to 50 videos); on any failure keep the snippets."""
        try:
            body = await self._gateway.videos([event.video_id for event in events])
        except LeaseLostError:
            raise
        except Exception as exc:
            self._metrics.enrichment.labels("failed").inc()
            logger.warning("videos.list failed; publishing search snippets only", extra={"error": str(exc)[:300]})
            return events
        if body is None:
            self._metrics.enrichment.labels("skipped").inc()
            return events
        items = body.get("items")
        resources = {
            item["id"]: item
            for item in (items if isinstance(items, list) else [])
            if isinstance(item, dict) and isinstance(item.get("id"), str)
        }
        enriched = []
        for event in events:
            resource = resources.get(event.video_id)
            try:
                enriched.append(enrich_event(event, resource) if resource else event)
            except ValueError:
                enriched.append(event)
        self._metrics.enrichment.labels("ok").inc()
        return enriched

    # Budget and health -----------------------------------------------------------------------

    def _refresh_budget(self, now: datetime) -> Plan:
        plan = self._planner.plan(self._pool, now)
        counts = self._pool.counts(now)
        self.plan = plan
        self._metrics.effective_interval.set(plan.effective_interval)
        self._metrics.calls_left.set(plan.calls_left)
        self._metrics.seconds_to_reset.set(plan.seconds_to_reset)
        self._metrics.all_keys_parked.set(1 if self.resume_at is not None else 0)
        for state, count in (("live", counts.live), ("parked", counts.parked), ("disabled", counts.disabled)):
            self._metrics.keys.labels(state).set(count)
        return plan

    async def _save_budget(self, now: datetime) -> None:
        plan = self.plan or self._refresh_budget(now)
        counts = self._pool.counts(now)
        token = self._lease.token
        if token is None:
            return
        await self._store.save_keys(self._pool.take_dirty(now), token)
        await self._store.save_budget(
            BudgetDoc(
                calls_left_today=plan.calls_left,
                effective_interval_seconds=plan.effective_interval,
                reset_at=plan.reset_at,
                keys_live=counts.live,
                keys_parked=counts.parked,
                keys_disabled=counts.disabled,
                updated_at=now,
                calls_spent_today=self._pool.calls_spent(now),
                search_calls_per_day=self._pool.search_calls_per_day,
                projects=len(self._pool.projects()),
                calls_per_cycle=plan.calls_per_cycle,
                all_keys_parked=self.resume_at is not None,
                resume_at=self.resume_at,
                leader=self._lease.holder,
            ),
            token,
        )

    def health(self) -> dict[str, Any]:
        """What /healthz adds: role and lease, and (as leader) the budget and the keys' states."""
        health: dict[str, Any] = {
            "role": self.role,
            "holder": self._lease.holder,
            "lease_token": self._lease.token,
            "cycles": self.cycles,
            "last_cycle_at": format_rfc3339(self.last_cycle_at) if self.last_cycle_at else None,
            "next_cycle_at": format_rfc3339(self.next_cycle_at) if self.next_cycle_at else None,
        }
        if self.role != "leader":
            return health  # a standby's view of the quota would be stale: the leader's is in MongoDB
        now = self._clock.now()
        plan = self.plan or self._planner.plan(self._pool, now)
        counts = self._pool.counts(now)
        health.update(
            {
                "all_keys_parked": self.resume_at is not None,
                "resume_at": format_rfc3339(self.resume_at) if self.resume_at else None,
                "budget": {
                    "calls_left_today": plan.calls_left,
                    "calls_per_cycle": round(plan.calls_per_cycle, 3),
                    "effective_interval_seconds": round(plan.effective_interval, 3),
                    "seconds_to_reset": round(plan.seconds_to_reset, 1),
                    "reset_at": format_rfc3339(plan.reset_at),
                },
                "keys": {"live": counts.live, "parked": counts.parked, "disabled": counts.disabled},
            }
        )
        return health
