"""Builders of realistic test data."""

from __future__ import annotations

import random
import string
from datetime import UTC, datetime, timedelta

from services.common.events import Thumbnail, VideoEvent

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
) -> VideoEvent:
    vid = vid or video_id(rng)
    channel = rng.randrange(20) if channel is None else channel
    return VideoEvent(
        video_id=vid,
        query=query,
        title=title or f"{query.title()} highlights #{rng.randrange(10_000)}",
        description=f"Full {query} highlights and analysis.",
        published_at=published_at or BASE_TIME - timedelta(seconds=rng.randrange(86_400)),
        channel_id=f"UC{channel:022d}",
        channel_title=f"Channel {channel}",
        thumbnails={"default": Thumbnail(url=f"https://i.ytimg.com/vi/{vid}/default.jpg", width=120, height=90)},
        fetched_at=fetched_at or BASE_TIME,
    )
