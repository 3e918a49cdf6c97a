"""The leader's handling of push notices: confirm each video with videos.list, publish it as found by push.

A push is a trigger, never a source of truth: every video id it names is asked of videos.list (one
call, 1 unit of the units pool, for up to 50 ids of any channels), which says whether it is public,
whose it is, when it was published and its full text. A video videos.list does not return, or
returns as another channel's, is not published. What it confirms is published like any other find,
``found_by`` ``{"source": "channel", "channel_id", "via": "push"}``, fenced by the lease, and then
known to its followed channel (so polling does not publish it again). A push for a video already
known (a title or description change) refreshes it the same way.

Each channel may have at most ``WEBSUB_MAX_CONFIRMS_PER_CHANNEL_HOUR`` ids confirmed in any hour: a
hub's flood of old videos cannot spend the day's units; the ids over the cap are dropped and counted
(polling still finds a new one among them). A notice for a channel no longer followed is dropped.
When no project has units left, or videos.list fails, the ids are dropped: polling finds them.

A tombstone (the hub says the video was deleted) of a video its followed channel knows (published
for that channel before) becomes a ``VideoRemoved``: ``removed_at`` the tombstone's ``when`` (the
notice's receipt when it gives none), its channel, ``observed_at`` now, published fenced like the
finds. A tombstone of any other video is dropped and counted (``tombstone_unknown``): a
subscription's tombstones remove only its own channel's videos; one whose ``when`` is no plausible
removal time is dropped too (``tombstone_implausible``).
"""

from __future__ import annotations

import logging
from collections import defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import ValidationError

from services.common.events import FoundBy, VideoEvent, VideoRemoved
from services.common.timefmt import parse_rfc3339
from services.fetcher.clock import Clock
from services.fetcher.gateway import YouTubeGateway
from services.fetcher.lease import LeaderLease, LeaseLostError
from services.fetcher.metrics import FetcherMetrics
from services.fetcher.publisher import VideoPublisher
from services.fetcher.snippets import enrich_event
from services.fetcher.websub_notices import PushNotice

logger = logging.getLogger(__name__)

BATCH_SIZE = 50  # videos.list takes at most 50 ids
CAP_WINDOW = timedelta(hours=1)


class KnownSink(Protocol):
    """A followed channel, told what the broker confirmed (``FollowedChannel.confirmed``)."""

    @property
    def channel_id(self) -> str: ...

    async def confirmed(self, events: Sequence[VideoEvent], at: datetime) -> None: ...

    def knows(self, video_id: str) -> bool: ...


class PushConfirmer:
    def __init__(
        self,
        *,
        gateway: YouTubeGateway,
        publisher: VideoPublisher,
        lease: LeaderLease,
        clock: Clock,
        metrics: FetcherMetrics,
        followed: Callable[[], Mapping[str, KnownSink]],
        max_confirms_per_hour: int,
    ) -> None:
        self._gateway = gateway
        self._publisher = publisher
        self._lease = lease
        self._clock = clock
        self._metrics = metrics
        self._followed = followed
        self._cap = max_confirms_per_hour
        self._confirms: dict[str, deque[datetime]] = defaultdict(deque)
        self.notices_handled = 0  # handled or given up (the benchmark waits for it)

    async def handle(self, notices: Sequence[PushNotice]) -> None:
        """Confirm and publish what the notices name; raises LeaseLostError (the notices go back)."""
        try:
            await self._handle(notices)
        finally:
            self.notices_handled += len(notices)

    async def _handle(self, notices: Sequence[PushNotice]) -> None:
        self._lease.check()
        now = self._clock.now()
        followed = self._followed()
        wanted: dict[str, str] = {}  # video id -> channel
        for notice in notices:
            if notice.channel_id not in followed:
                self._count(notice.channel_id, "not_followed", len(notice.video_ids) + len(notice.tombstones))
                continue
            for video_id in notice.video_ids:
                if video_id in wanted:
                    continue
                if not self._take(notice.channel_id, now):
                    self._count(notice.channel_id, "capped")
                    continue
                wanted[video_id] = notice.channel_id
            if notice.tombstones:
                await self._tombstones(notice, followed[notice.channel_id], now)
        ids = list(wanted)
        for start in range(0, len(ids), BATCH_SIZE):
            await self._confirm({i: wanted[i] for i in ids[start : start + BATCH_SIZE]}, followed)

    def _take(self, channel_id: str, now: datetime) -> bool:
        """One confirm of the channel's hourly allowance, if any is left."""
        recent = self._confirms[channel_id]
        while recent and now - recent[0] >= CAP_WINDOW:
            recent.popleft()
        if len(recent) >= self._cap:
            return False
        recent.append(now)
        return True

    async def _confirm(self, wanted: dict[str, str], followed: Mapping[str, KnownSink]) -> None:
        try:
            body = await self._gateway.videos(list(wanted))
        except LeaseLostError:
            raise
        except Exception as exc:
            for channel_id in wanted.values():
                self._count(channel_id, "videos_list_failed")
            logger.warning("videos.list failed; pushed videos left to polling", extra={"error": str(exc)[:300]})
            return
        if body is None:
            for channel_id in wanted.values():
                self._count(channel_id, "no_units")
            return
        fetched_at = self._clock.now()
        resources = _resources(body)
        by_channel: dict[str, list[VideoEvent]] = defaultdict(list)
        for video_id, channel_id in wanted.items():
            event = _event(resources.get(video_id), channel_id, fetched_at)
            if event is None:
                self._count(channel_id, "not_confirmed")
                continue
            by_channel[channel_id].append(event)
        if not by_channel:
            return
        token = self._lease.check()  # a deposed leader publishes nothing
        await self._publisher.publish_videos([e for events in by_channel.values() for e in events], token)
        confirmed = self._clock.now()
        for channel_id, events in by_channel.items():
            sink = followed[channel_id]
            new = [e for e in events if not sink.knows(e.video_id)]
            for event in new:
                self._metrics.publish_lag.observe(max(0.0, (confirmed - event.published_at).total_seconds()))
            self._metrics.channel_published.labels(channel_id).inc(len(events))
            self._metrics.websub_confirms.labels(channel_id, "published").inc(len(events))
            logger.info(
                "published pushed videos",
                extra={"channel_id": channel_id, "count": len(events), "new": len(new)},
            )
            if new:
                await sink.confirmed(new, confirmed)

    async def _tombstones(self, notice: PushNotice, sink: KnownSink, now: datetime) -> None:
        """Publish the removals of the notice's deleted videos that are its channel's (fenced)."""
        channel_id = notice.channel_id
        removals: list[VideoRemoved] = []
        for tombstone in notice.tombstones:
            if not sink.knows(tombstone.video_id):
                self._count(channel_id, "tombstone_unknown")
                continue
            try:
                removal = VideoRemoved(
                    video_id=tombstone.video_id,
                    removed_at=tombstone.when or notice.received_at,
                    channel_id=channel_id,
                    observed_at=now,
                )
            except ValidationError:
                self._count(channel_id, "tombstone_implausible")
                continue
            removals.append(removal)
        ids = [r.video_id for r in removals]
        if removals:
            token = self._lease.check()  # a deposed leader publishes nothing
            await self._publisher.publish_removals(removals, token)
            self._count(channel_id, "removed", len(removals))
        logger.info(
            "push says videos were deleted",
            extra={
                "channel_id": channel_id,
                "video_ids": [t.video_id for t in notice.tombstones],
                "removals_published": ids,
            },
        )

    def _count(self, channel_id: str, outcome: str, count: int = 1) -> None:
        if count:
            self._metrics.websub_confirms.labels(channel_id, outcome).inc(count)


def _resources(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    items = body.get("items")
    return {
        item["id"]: item
        for item in (items if isinstance(items, list) else [])
        if isinstance(item, dict) and isinstance(item.get("id"), str)
    }


def _event(resource: dict[str, Any] | None, channel_id: str, fetched_at: datetime) -> VideoEvent | None:
    """The video as videos.list describes it, found by push; None unless it is public and the channel's."""
    if resource is None:
        return None
    snippet = resource.get("snippet")
    if not isinstance(snippet, dict) or snippet.get("channelId") != channel_id:
        return None
    try:
        live = snippet.get("liveBroadcastContent")
        event = VideoEvent(
            video_id=resource["id"],
            found_by=FoundBy.channel(channel_id, via="push"),
            title=snippet.get("title", ""),
            description=snippet.get("description", ""),
            published_at=parse_rfc3339(str(snippet.get("publishedAt", ""))),
            channel_id=channel_id,
            channel_title=snippet.get("channelTitle", ""),
            thumbnails=snippet.get("thumbnails") or {},
            live_broadcast_content=live if live in ("none", "upcoming", "live") else "none",
            fetched_at=fetched_at,
        )
        return enrich_event(event, resource)
    except (ValueError, TypeError):  # pydantic's ValidationError is a ValueError
        return None
