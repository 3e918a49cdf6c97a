"""The search walk: read one window of a query's results newest first, publishing what is new.

A walk asks search.list for a page (``order=date``, 50 results), classifies it (a page of
results, or a broken answer that cuts the walk there), hands the videos nobody published yet to
``publish`` and chooses what to read next: the next page, the rest of the window below the oldest
video reached (a window holding more than search's ~500-result cap is split with
``publishedBefore``), or nothing, because the window is read to its end. A stale page token
restarts the walk at page one, once. A walk never raises: what stopped it is ``outcome.error``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from services.common.events import VideoEvent
from services.common.timefmt import format_rfc3339
from services.fetcher.clock import Clock
from services.fetcher.gateway import YouTubeGateway
from services.fetcher.metrics import FetcherMetrics
from services.fetcher.progress import WalkOutcome, Window
from services.fetcher.snippets import event_from_search_item
from services.fetcher.youtube_client import ErrorKind, YouTubeApiError

logger = logging.getLogger(__name__)

# search.list serves at most ~500 results per search; a walk that got this many splits its window.
SEARCH_RESULT_CAP = 500
PAGE_SIZE = 50
SPLIT_AFTER_ITEMS = SEARCH_RESULT_CAP - PAGE_SIZE

WalkKind = Literal["head", "gap", "sweep"]

# Publishes a page's new videos (confirmed by the broker) and returns how many went out.
Publish = Callable[[list[VideoEvent]], Awaitable[int]]


class MalformedPageError(Exception):
    """A search answer that parsed as JSON but is not a page of results; the walk is cut there."""


@dataclass
class PageAllowance:
    """Search pages a poll may still read, shared by the walks of that poll."""

    left: int


@dataclass
class _Walk:
    """One walk in progress: what it reads, where it is, and what it met."""

    query: str
    window: Window
    seen: Mapping[str, datetime]  # ids the query published before (grows as this walk publishes)
    known_up_to: datetime | None
    publish: Publish
    outcome: WalkOutcome = field(default_factory=WalkOutcome)
    page_token: str | None = None
    in_window: int = 0  # results read in ``window`` since its first page
    walked: set[str] = field(default_factory=set)  # ids met on the pages of this walk (since its last restart)
    published_here: set[str] = field(default_factory=set)  # ids this walk published
    restarted: bool = False

    def restart(self) -> None:
        self.restarted, self.page_token, self.in_window, self.walked = True, None, 0, set()

    def known_before(self, event: VideoEvent) -> bool:
        """Published before this walk, at or below the watermark a head poll started from."""
        return (
            event.video_id in self.seen
            and event.video_id not in self.published_here
            and self.known_up_to is not None
            and event.published_at <= self.known_up_to
        )


def search_params(query: str, window: Window, page_token: str | None) -> dict[str, str]:
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


class Walker:
    def __init__(self, *, gateway: YouTubeGateway, clock: Clock, metrics: FetcherMetrics) -> None:
        self._gateway = gateway
        self._clock = clock
        self._metrics = metrics

    async def walk(
        self,
        kind: WalkKind,
        query: str,
        window: Window,
        *,
        seen: Mapping[str, datetime],
        known_up_to: datetime | None,
        pages: PageAllowance,
        publish: Publish,
    ) -> WalkOutcome:
        """Read ``window`` newest first, publishing what is new; never raises (see ``outcome.error``).

        With ``known_up_to`` (a head poll: the watermark), the walk ends at the first page whose
        videos were all published before, at or below that watermark: everything there was read.
        Videos published before but above the watermark are what a walk cut short by a crash
        left behind, with the window below them unread: such pages do not end the walk.
        """
        walk = _Walk(query, Window(window.after, window.before), seen, known_up_to, publish)
        try:
            while pages.left > 0:
                pages.left -= 1
                page = await self._fetch(walk)
                if page is not None and await self._read(walk, page):
                    walk.outcome.complete = True
                    break
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            walk.outcome.error = exc
        self._metrics.walks.labels(kind, "complete" if walk.outcome.complete else "cut").inc()
        return walk.outcome

    async def _fetch(self, walk: _Walk) -> dict[str, Any] | None:
        """The next page, or None when a stale page token sent the walk back to page one."""
        try:
            return await self._gateway.search(search_params(walk.query, walk.window, walk.page_token))
        except YouTubeApiError as exc:
            if exc.kind is ErrorKind.INVALID_PAGE_TOKEN and not walk.restarted:
                logger.info("stale page token: restarting the walk at page one", extra={"query": walk.query})
                walk.restart()
                return None
            raise

    async def _read(self, walk: _Walk, page: dict[str, Any]) -> bool:
        """Publish what the page holds that is new and choose what comes next; True: the window is read."""
        items = page.get("items")
        if not isinstance(items, list):
            # Not a page of results (a broken proxy, a bad deploy): read as an empty last
            # page it would end the walk and drop the rest of the window.
            raise MalformedPageError(f"search page for {walk.query!r} without a list of items")
        walk.outcome.pages += 1
        reached_known = await self._take(walk, self._events(items, walk.query))
        walk.in_window += len(items)
        next_token = page.get("nextPageToken")
        if next_token is not None and not isinstance(next_token, str):
            # This page's videos are published and counted as read; the rest of the
            # window waits as a gap rather than being taken for the end of the results.
            raise MalformedPageError(f"search page for {walk.query!r} with a nextPageToken that is not text")
        walk.page_token = next_token or None
        return reached_known or self._window_done(walk)

    async def _take(self, walk: _Walk, events: list[VideoEvent]) -> bool:
        """Publish the page's new videos; True when the page shows the walk has nothing left to find."""
        fresh = list({e.video_id: e for e in events if e.video_id not in walk.seen}.values())
        known_before = [e for e in events if walk.known_before(e)]
        new_to_walk = [e for e in events if e.video_id not in walk.walked]
        walk.walked.update(e.video_id for e in events)
        if fresh:
            walk.outcome.published += await walk.publish(fresh)
            walk.published_here.update(e.video_id for e in fresh)
        # Only a page whose new videos the broker confirmed counts as read: if publishing
        # fails, the window must still reach over this page.
        for event in events:
            walk.outcome.met(event.published_at)
        if not events:
            return False
        # Either the tokens loop back over pages already read, or the walk reached videos
        # published before it.
        return not new_to_walk or len(known_before) == len(events)

    def _window_done(self, walk: _Walk) -> bool:
        """After a page: False to read on (the next page, or the window split below the oldest video)."""
        if walk.page_token and walk.in_window < SEARCH_RESULT_CAP:
            return False
        current, oldest = walk.window, walk.outcome.oldest
        if (
            walk.in_window >= SPLIT_AFTER_ITEMS
            and oldest is not None
            and oldest > current.after
            and (current.before is None or oldest < current.before)
        ):
            # More than search serves for one window: walk the rest below the oldest reached.
            self._metrics.window_splits.inc()
            logger.debug(
                "window over the result cap: splitting",
                extra={"query": walk.query, "window": str(current), "below": oldest.isoformat()},
            )
            walk.window, walk.page_token, walk.in_window = Window(current.after, oldest), None, 0
            return False
        return True

    def _events(self, items: list[Any], query: str) -> list[VideoEvent]:
        """The page's usable videos; an item that cannot be one is skipped, logged and counted."""
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
