"""Polls search.list for each configured query and publishes every video not yet published.

Per query the poller keeps a watermark (the newest ``publishedAt`` of a completed walk) and the
ids it already published above it. A head poll asks ``publishedAfter = watermark`` (inclusive, so
boundary videos repeat and are dropped by the seen set) and walks pages newest first until a page
brings nothing new. The watermark only moves when a walk completed and every message of it was
confirmed by the broker, so a failure mid-walk is retried next cycle without gaps.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.common.events import VideoEvent
from services.common.timefmt import format_rfc3339, utc_now
from services.fetcher.publisher import VideoPublisher
from services.fetcher.settings import Settings
from services.fetcher.snippets import event_from_search_item
from services.fetcher.youtube_client import YouTubeApiError, YouTubeClient, YouTubeTransportError

logger = logging.getLogger(__name__)

# How long ids stay in a query's seen set below its watermark (covers inclusive-bound repeats).
SEEN_RETENTION = timedelta(hours=6)


class FetcherMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.calls = Counter(
            "tubewatch_fetcher_search_calls", "search.list calls, by outcome", ["outcome"], registry=registry
        )
        self.published = Counter(
            "tubewatch_fetcher_videos_published",
            "Videos published (confirmed by the broker)",
            ["query"],
            registry=registry,
        )
        self.skipped_items = Counter(
            "tubewatch_fetcher_items_skipped", "Search items skipped as unusable", ["query"], registry=registry
        )
        self.cycle_seconds = Histogram("tubewatch_fetcher_cycle_seconds", "One poll cycle", registry=registry)
        self.effective_interval = Gauge(
            "tubewatch_fetcher_effective_interval_seconds", "Seconds between poll cycles", registry=registry
        )


@dataclass
class QueryState:
    watermark: datetime
    seen: dict[str, datetime] = field(default_factory=dict)

    def prune(self) -> None:
        horizon = self.watermark - SEEN_RETENTION
        self.seen = {vid: published for vid, published in self.seen.items() if published >= horizon}


class Poller:
    def __init__(
        self, settings: Settings, client: YouTubeClient, publisher: VideoPublisher, metrics: FetcherMetrics
    ) -> None:
        self._settings = settings
        self._client = client
        self._publisher = publisher
        self._metrics = metrics
        self._keys = itertools.cycle(settings.youtube_api_keys)
        self._states: dict[str, QueryState] = {}
        self._stopping = asyncio.Event()
        self.last_poll: datetime | None = None

    def stop(self) -> None:
        """Finish the cycle in hand, then return from ``run``."""
        self._stopping.set()

    async def run(self) -> None:
        interval = self._settings.poll_interval_seconds
        self._metrics.effective_interval.set(interval)
        while not self._stopping.is_set():
            started = asyncio.get_running_loop().time()
            with self._metrics.cycle_seconds.time():
                await self.poll_cycle()
            elapsed = asyncio.get_running_loop().time() - started
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=max(0.0, interval - elapsed))

    async def poll_cycle(self) -> None:
        for query in self._settings.search_queries:
            try:
                await self.poll_query(query)
            except (YouTubeApiError, YouTubeTransportError) as exc:
                self._metrics.calls.labels("error").inc()
                logger.warning("poll failed; retrying next cycle", extra={"query": query, "error": str(exc)})
            except Exception:
                # e.g. the broker is down: nothing was confirmed, so the watermark stays and the
                # next cycle retries; the loop must survive.
                self._metrics.calls.labels("error").inc()
                logger.exception("poll failed; retrying next cycle", extra={"query": query})
        self.last_poll = utc_now()

    async def poll_query(self, query: str) -> int:
        """Walk the head of ``query``'s results; return how many videos were published."""
        state = self._states.get(query)
        if state is None:
            start = utc_now() - timedelta(seconds=self._settings.initial_lookback_seconds)
            state = self._states[query] = QueryState(watermark=start)
        newest = state.watermark
        published = 0
        page_token: str | None = None
        for _ in range(self._settings.max_pages_per_cycle):
            params = {
                "part": "snippet",
                "type": "video",
                "order": "date",
                "maxResults": "50",
                "q": query,
                "publishedAfter": format_rfc3339(state.watermark),
            }
            if page_token:
                params["pageToken"] = page_token
            page = await self._client.search(next(self._keys), params)
            self._metrics.calls.labels("ok").inc()
            fresh = self._new_events(page, query, state)
            if fresh:
                await self._publisher.publish_videos(fresh)
                for event in fresh:
                    state.seen[event.video_id] = event.published_at
                    newest = max(newest, event.published_at)
                published += len(fresh)
                self._metrics.published.labels(query).inc(len(fresh))
            page_token = page.get("nextPageToken")
            if not page_token or not fresh:
                break
        state.watermark = newest
        state.prune()
        if published:
            logger.info("published videos", extra={"query": query, "count": published})
        return published

    def _new_events(self, page: dict[str, object], query: str, state: QueryState) -> list[VideoEvent]:
        fetched_at = utc_now()
        events: dict[str, VideoEvent] = {}
        items = page.get("items")
        for item in items if isinstance(items, list) else []:
            try:
                event = event_from_search_item(item, query, fetched_at)
            except ValueError as exc:
                self._metrics.skipped_items.labels(query).inc()
                logger.warning("skipping unusable search item", extra={"query": query, "error": str(exc)[:300]})
                continue
            if event.video_id not in state.seen:
                events[event.video_id] = event
        return list(events.values())
