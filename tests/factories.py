"""Builders of realistic test data."""

from __future__ import annotations

import random
import string
from datetime import UTC, datetime, timedelta

from services.common.events import FoundBy, Thumbnail, VideoEvent

_ID_ALPHABET = string.ascii_letters + string.digits + "-_"
BASE_TIME = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def video_id(rng: random.Random) -> str:
    return "".join(rng.choice(_ID_ALPHABET) for _ in range(11))


def make_event(
    rng: random.Random,
    *,
    query: str = "cricket",
    published_at: datetime | None = None,
    fetched_at: datetime | None = None,
    vid: str | None = None,
    title: str | None = None,
    channel: int | None = None,
    found_by: FoundBy | None = None,
) -> VideoEvent:
    """A video event; a search find of ``query`` unless ``found_by`` says otherwise (e.g. a channel)."""
    vid = vid or video_id(rng)
    channel = rng.randrange(20) if channel is None else channel
    found_by = found_by or FoundBy.search(query)
    topic = found_by.query or query
    return VideoEvent(
        video_id=vid,
        found_by=found_by,
        title=title or f"{topic.title()} highlights #{rng.randrange(10_000)}",
        description=f"Full {topic} highlights and analysis.",
        published_at=published_at or BASE_TIME - timedelta(seconds=rng.randrange(86_400)),
        channel_id=f"UC{channel:022d}",
        channel_title=f"Channel {channel}",
        thumbnails={"default": Thumbnail(url=f"https://i.ytimg.com/vi/{vid}/default.jpg", width=120, height=90)},
        fetched_at=fetched_at or BASE_TIME,
    )
