"""New videos of followed channels out: batched across channels, enriched, published with confirms.

The reads of a cycle hand their new videos here; they go out 50 at a time (one videos.list call,
1 unit, for the videos of several channels), the rest at the end of the cycle (``flush``). A video
that videos.list does not return although it answered is not public now (made private or deleted
since the read): it is not published, and its channel meets it again later. If videos.list fails,
or no project has units left, the videos go out with what the playlist said. Publishing checks the
lease first (a deposed leader publishes nothing); only then is each channel told what the broker
confirmed, so its state moves only past what was confirmed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from services.common.events import VideoEvent
from services.fetcher.clock import Clock
from services.fetcher.gateway import YouTubeGateway
from services.fetcher.lease import LeaderLease, LeaseLostError
from services.fetcher.metrics import FetcherMetrics
from services.fetcher.publisher import VideoPublisher
from services.fetcher.snippets import enrich_event

logger = logging.getLogger(__name__)

BATCH_SIZE = 50  # videos.list takes at most 50 ids


class ConfirmedSink(Protocol):
    @property
    def channel_id(self) -> str: ...

    async def confirmed(self, events: Sequence[VideoEvent], at: datetime) -> None:
        """The broker confirmed these videos of the channel."""
        ...


class ChannelDelivery:
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
        self._pending: list[tuple[ConfirmedSink, VideoEvent]] = []

    def pending_ids(self, channel_id: str) -> set[str]:
        """The channel's videos handed over and not yet published (a read must not hand them again)."""
        return {event.video_id for sink, event in self._pending if sink.channel_id == channel_id}

    async def add(self, sink: ConfirmedSink, events: Sequence[VideoEvent]) -> None:
        """Take a read's new videos; a full batch goes out at once."""
        self._pending.extend((sink, event) for event in events)
        while len(self._pending) >= BATCH_SIZE:
            await self._send_batch()

    async def flush(self) -> None:
        """Send what is left (the end of a cycle)."""
        while self._pending:
            await self._send_batch()

    async def _send_batch(self) -> None:
        # Taken off first: a batch that fails is dropped, and its channels meet its videos again.
        batch, self._pending = self._pending[:BATCH_SIZE], self._pending[BATCH_SIZE:]
        events = await self._enrich([event for _, event in batch])
        token = self._lease.check()  # a deposed leader publishes nothing
        await self._publisher.publish_videos(list(events.values()), token)
        confirmed = self._clock.now()
        by_sink: dict[str, tuple[ConfirmedSink, list[VideoEvent]]] = {}
        for sink, event in batch:
            sent = events.get(event.video_id)
            if sent is not None:
                by_sink.setdefault(sink.channel_id, (sink, []))[1].append(sent)
        for channel_id, (sink, published) in by_sink.items():
            for video in published:
                self._metrics.publish_lag.observe(max(0.0, (confirmed - video.published_at).total_seconds()))
            self._metrics.channel_published.labels(channel_id).inc(len(published))
            logger.info("published new videos", extra={"channel_id": channel_id, "count": len(published)})
            await sink.confirmed(published, confirmed)

    async def _enrich(self, events: list[VideoEvent]) -> dict[str, VideoEvent]:
        """The events to publish, by id: with videos.list's details, without those it says are not public."""
        unique = {event.video_id: event for event in events}
        try:
            body = await self._gateway.videos(list(unique))
        except LeaseLostError:
            raise
        except Exception as exc:
            self._metrics.enrichment.labels("failed").inc()
            logger.warning("videos.list failed; publishing playlist snippets only", extra={"error": str(exc)[:300]})
            return unique
        if body is None:
            self._metrics.enrichment.labels("skipped").inc()
            return unique
        items = body.get("items")
        resources = {
            item["id"]: item
            for item in (items if isinstance(items, list) else [])
            if isinstance(item, dict) and isinstance(item.get("id"), str)
        }
        enriched = {}
        for video_id, event in unique.items():
            resource = resources.get(video_id)
            if resource is None:
                logger.info("not public any more; not published", extra={"video_id": video_id})
                continue
            enriched[video_id] = _enriched(event, resource)
        self._metrics.enrichment.labels("ok").inc()
        return enriched


def _enriched(event: VideoEvent, resource: dict[str, Any]) -> VideoEvent:
    """The event with videos.list's details and its broadcast state (a playlist item has none)."""
    snippet = resource.get("snippet")
    live = snippet.get("liveBroadcastContent") if isinstance(snippet, dict) else None
    if live in ("none", "upcoming", "live"):
        event = event.model_copy(update={"live_broadcast_content": live})
    try:
        return enrich_event(event, resource)
    except ValueError:
        return event
