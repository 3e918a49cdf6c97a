"""What one video is: its channel, its times (upload, publish, searchable), privacy and content.

A video is *uploaded* (it enters its channel's uploads playlist), *published* (videos.list and,
after the search lag, search.list show it) and *visible* (search.list returns it). Normally the three
coincide; a scheduled video is uploaded before it is published, a late one becomes searchable after
it, and a private or deleted one is never published at all.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from services.youtube_emulator.content import CATEGORY_IDS, make_text

LiveState = Literal["none", "upcoming", "live"]
EventType = Literal["upcoming", "live", "completed"]
Privacy = Literal["public", "private", "deleted"]


@dataclass(frozen=True, slots=True)
class Channel:
    channel_id: str
    title: str

    @property
    def uploads_playlist_id(self) -> str:
        """The uploads playlist: the channel id with ``UC`` replaced by ``UU`` (reference §2)."""
        return "UU" + self.channel_id[2:]


@dataclass(frozen=True, slots=True)
class Broadcast:
    """A live broadcast: ``upcoming`` before start, ``live`` until end, then ``none``."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Core:
    """What filtering, counting and playlists need, computed without building the whole video."""

    index: int
    published_at: int
    visible_at: int
    channel: int
    broadcast: Broadcast | None
    uploaded_at: int
    privacy: Privacy


@dataclass(frozen=True, slots=True)
class Video:
    video_id: str
    query: str | None
    published_at: int
    visible_at: int
    channel: Channel
    title: str
    description: str
    tags: tuple[str, ...]
    category_id: str
    duration_seconds: int
    definition: str
    caption: bool
    licensed: bool
    broadcast: Broadcast | None
    popularity: float
    like_ratio: float
    comment_ratio: float
    hide_likes: bool
    has_maxres: bool
    default_audio_language: str | None
    injected: bool
    # Newest first sorts on this descending: (publishedAt, source rank, index in source).
    sort_key: tuple[int, int, int] = field(compare=False)
    uploaded_at: int = 0
    privacy: Privacy = "public"

    def is_public(self, now: float) -> bool:
        """Whether videos.list (and, once visible, search.list) may show it at ``now``."""
        return self.privacy == "public" and self.published_at <= now

    def live_state(self, now: float) -> LiveState:
        if self.broadcast is None:
            return "none"
        return live_state(self.broadcast, now)

    def views(self, now: float) -> int:
        started = self.broadcast.start if self.broadcast else self.published_at
        hours = max(0.0, now - started) / 3600
        return int(self.popularity * hours**0.85)

    def statistics(self, now: float) -> dict[str, str]:
        views = self.views(now)
        stats = {"viewCount": str(views)}
        if not self.hide_likes:
            stats["likeCount"] = str(int(views * self.like_ratio))
        stats["favoriteCount"] = "0"
        stats["commentCount"] = str(int(views * self.comment_ratio))
        return stats

    def duration(self, now: float) -> str:
        if self.broadcast is not None and now < self.broadcast.end:
            return "P0D"  # what YouTube reports for an upcoming or running broadcast
        return iso_duration(self.duration_seconds)


def live_state(broadcast: Broadcast, now: float) -> LiveState:
    if now < broadcast.start:
        return "upcoming"
    if now < broadcast.end:
        return "live"
    return "none"


def event_matches(broadcast: Broadcast | None, event: EventType, now: float) -> bool:
    if broadcast is None:
        return False
    if event == "completed":
        return now >= broadcast.end
    return live_state(broadcast, now) == event


def iso_duration(seconds: int) -> str:
    if seconds <= 0:
        return "P0D"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = "PT"
    if hours:
        text += f"{hours}H"
    if minutes:
        text += f"{minutes}M"
    if secs:
        text += f"{secs}S"
    return text


@dataclass(frozen=True, slots=True)
class Times:
    """When a video was uploaded, published and became searchable, and who may see it."""

    uploaded_at: int
    published_at: int
    visible_at: int
    privacy: Privacy = "public"


def build_video(
    rng: random.Random,
    *,
    video_id: str,
    query: str | None,
    times: Times,
    channel: Channel,
    broadcast: Broadcast | None,
    sort_key: tuple[int, int, int],
    title: str | None = None,
    description: str | None = None,
) -> Video:
    day = datetime.fromtimestamp(times.published_at, tz=UTC)
    live = broadcast is not None
    text = make_text(query or "video", rng, live=live, year=day.year, month=day.month, day=day.day)
    final_title = text.title if title is None else title
    if broadcast is not None:
        duration = broadcast.end - broadcast.start
    elif "#shorts" in final_title:
        duration = rng.randint(15, 59)
    else:
        duration = rng.randint(61, 2700)
    return Video(
        video_id=video_id,
        query=query,
        published_at=times.published_at,
        visible_at=times.visible_at,
        channel=channel,
        title=final_title,
        description=text.description if description is None else description,
        tags=text.tags if title is None else (),
        category_id=rng.choice(CATEGORY_IDS),
        duration_seconds=duration,
        definition="hd" if rng.random() < 0.85 else "sd",
        caption=rng.random() < 0.3,
        licensed=rng.random() < 0.6,
        broadcast=broadcast,
        popularity=10 ** rng.uniform(1, 4),
        like_ratio=rng.uniform(0.01, 0.06),
        comment_ratio=rng.uniform(0.001, 0.01),
        hide_likes=rng.random() < 0.03,
        has_maxres=rng.random() < 0.7,
        default_audio_language=rng.choice(("en", "en", "en", "hi", None)),
        injected=title is not None,
        sort_key=sort_key,
        uploaded_at=times.uploaded_at,
        privacy=times.privacy,
    )
