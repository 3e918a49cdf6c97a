"""Per-channel progress: the uploads playlist, the videos known by id, and what the reads measured.

Newness is judged by video id: a public video of the playlist is new when its id is not known,
whatever its position or time, because the playlist is ordered by upload and a scheduled or
late-published video sits below newer uploads. Only what the broker confirmed becomes known
(``record``), so a crash loses nothing: the next read meets the rest again. A read whose new
videos were not all confirmed, or that was cut short, leaves the channel **unsettled**: known ids
may then sit above videos never published, so the next read is deep (every page), not one that
stops at the first known id.

What is known stays bounded: ids published within ``KNOWN_HORIZON`` (at most
``MAX_KNOWN_VIDEOS``, newest first). A video published before the **floor** — the channel's
origin (its first read, less the initial lookback), ``KNOWN_HORIZON`` ago, or the oldest known
id once the list is full — is never new, so forgetting old ids never publishes a video again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.common.fetcher_state import (
    MAX_KNOWN_VIDEOS,
    ChannelStateDoc,
    ChannelStatus,
    KnownVideoDoc,
    PollStatsDoc,
    as_utc,
    freshness_digest,
    freshness_docs,
)
from services.common.freshness import FreshnessDigest
from services.common.poll_stats import PollStats

KNOWN_HORIZON = timedelta(days=8)
# Each channel is read to its last page this often (late-published videos sit below newer uploads).
DEEP_READ_EVERY = timedelta(days=1)


@dataclass
class ChannelProgress:
    channel_id: str
    origin: datetime
    status: ChannelStatus = "ok"
    config_digest: str | None = None
    uploads_playlist_id: str | None = None
    known: dict[str, datetime] = field(default_factory=dict)
    last_read_at: datetime | None = None
    last_deep_read_at: datetime | None = None
    unsettled: bool = False
    videos_published: int = 0
    units_last_read: int = 0
    interval_seconds: float | None = None
    poll_stats: PollStats = field(default_factory=PollStats)
    freshness: FreshnessDigest = field(default_factory=FreshnessDigest)

    @classmethod
    def fresh(cls, channel_id: str, now: datetime, lookback_seconds: float) -> ChannelProgress:
        # The first read stands for a deep one: everything older than the origin is history.
        return cls(channel_id=channel_id, origin=now - timedelta(seconds=lookback_seconds), last_deep_read_at=now)

    @classmethod
    def from_doc(cls, doc: ChannelStateDoc, now: datetime, lookback_seconds: float) -> ChannelProgress:
        progress = cls.fresh(doc.channel_id, now, lookback_seconds)
        progress.origin = as_utc(doc.origin) if doc.origin else progress.origin
        progress.status = doc.status
        progress.config_digest = doc.config_digest
        progress.uploads_playlist_id = doc.uploads_playlist_id
        progress.known = {k.video_id: as_utc(k.published_at) for k in doc.known_videos}
        progress.last_read_at = as_utc(doc.last_read_at) if doc.last_read_at else None
        progress.last_deep_read_at = as_utc(doc.last_deep_read_at) if doc.last_deep_read_at else now
        progress.unsettled = doc.unsettled
        progress.videos_published = doc.videos_published
        progress.units_last_read = doc.units_last_read
        progress.interval_seconds = doc.interval_seconds
        progress.poll_stats = doc.poll_stats.stats()
        progress.freshness = freshness_digest(doc.freshness)
        return progress

    def to_doc(self, now: datetime) -> ChannelStateDoc:
        known = sorted(self.known.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)
        return ChannelStateDoc(
            channel_id=self.channel_id,
            status=self.status,
            config_digest=self.config_digest,
            uploads_playlist_id=self.uploads_playlist_id,
            origin=self.origin,
            known_videos=[KnownVideoDoc(video_id=v, published_at=p) for v, p in known],
            last_read_at=self.last_read_at,
            last_deep_read_at=self.last_deep_read_at,
            unsettled=self.unsettled,
            videos_published=self.videos_published,
            units_last_read=self.units_last_read,
            poll_stats=PollStatsDoc.of(self.poll_stats),
            interval_seconds=self.interval_seconds,
            freshness=freshness_docs(self.freshness),
            updated_at=now,
        )

    def floor(self, now: datetime) -> datetime:
        """No video published before this is new (see the module's docstring)."""
        floor = max(self.origin, now - KNOWN_HORIZON)
        if len(self.known) >= MAX_KNOWN_VIDEOS:
            floor = max(floor, min(self.known.values()))
        return floor

    def is_new(self, video_id: str, published_at: datetime, now: datetime) -> bool:
        return video_id not in self.known and published_at >= self.floor(now)

    def deep_read_due(self, now: datetime) -> bool:
        """Once a day, and after a read that left videos unconfirmed or was cut short (``unsettled``)."""
        return self.unsettled or self.last_deep_read_at is None or now - self.last_deep_read_at >= DEEP_READ_EVERY

    def record(self, published: dict[str, datetime], now: datetime) -> None:
        """Videos the broker confirmed: known from now on; the oldest beyond the bounds forgotten."""
        self.known.update(published)
        self.videos_published += len(published)
        horizon = now - KNOWN_HORIZON
        kept = sorted(((v, p) for v, p in self.known.items() if p >= horizon), key=lambda kv: kv[1], reverse=True)
        self.known = dict(kept[:MAX_KNOWN_VIDEOS])
