"""New videos out: enriched through videos.list, published with publisher confirms, counted.

A page's new videos get one videos.list call (1 unit for up to 50): full raw description, tags,
duration and counts. If videos.list fails, or no key has units left today, they go out with the
search snippet. Publishing checks the lease first, so a deposed leader publishes nothing; the
messages carry its fencing token.
"""

from __future__ import annotations

import logging

from services.common.events import VideoEvent
from services.fetcher.clock import Clock
from services.fetcher.gateway import YouTubeGateway
from services.fetcher.lease import LeaderLease, LeaseLostError
from services.fetcher.metrics import FetcherMetrics
from services.fetcher.publisher import VideoPublisher
from services.fetcher.snippets import enrich_event

logger = logging.getLogger(__name__)


class Delivery:
    def __init__(
        self,
        *,
        gateway: YouTubeGateway,
        publisher: VideoPublisher,
        lease: LeaderLease,
        clock: Clock,
        metrics: FetcherMetrics,
    ) -> None:
        self._gateway = gateway
        self._publisher = publisher
        self._lease = lease
        self._clock = clock
        self._metrics = metrics

    async def deliver(self, query: str, fresh: list[VideoEvent]) -> list[VideoEvent]:
        """Enrich and publish ``fresh``; returns the events as the broker confirmed them."""
        events = await self._enrich(fresh)
        token = self._lease.check()  # a deposed leader publishes nothing
        await self._publisher.publish_videos(events, token)
        confirmed = self._clock.now()
        for event in events:
            self._metrics.publish_lag.observe(max(0.0, (confirmed - event.published_at).total_seconds()))
        self._metrics.published.labels(query).inc(len(events))
        logger.debug("published a page of videos", extra={"query": query, "count": len(events)})
        return events

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
