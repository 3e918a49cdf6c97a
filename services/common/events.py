"""The message the fetcher publishes and the indexer consumes: one video found by one query."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

EVENT_SCHEMA_VERSION: Literal[1] = 1
# YouTube went public in 2005; nothing can have been published before.
EARLIEST_PUBLISH_DATE = datetime(2005, 4, 1, tzinfo=UTC)
# Clocks drift and scheduled broadcasts exist, but a publish date further ahead than this is garbage,
# and a garbage future date would push a query's watermark past every real video.
MAX_FUTURE_SKEW = timedelta(days=1)
VIDEO_ID_PATTERN = r"^[A-Za-z0-9_-]{11}$"
ThumbnailName = Literal["default", "medium", "high", "standard", "maxres"]


class Thumbnail(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    url: str = Field(max_length=2048)
    width: int | None = Field(default=None, ge=0)
    height: int | None = Field(default=None, ge=0)


class VideoEvent(BaseModel):
    """A snapshot of a video as the fetcher saw it. Text fields hold raw (unescaped) text.

    ``fetched_at`` orders snapshots of the same video: a consumer never lets an older snapshot
    overwrite a newer one. Unknown fields are ignored so a newer producer does not poison an
    older consumer; an incompatible change bumps ``schema_version``.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: Literal[1] = EVENT_SCHEMA_VERSION
    video_id: str = Field(pattern=VIDEO_ID_PATTERN)
    query: str = Field(min_length=1, max_length=500)
    title: str = Field(max_length=1000)
    description: str = Field(default="", max_length=10_000)
    published_at: AwareDatetime
    channel_id: str = Field(min_length=1, max_length=64)
    channel_title: str = Field(default="", max_length=500)
    thumbnails: dict[ThumbnailName, Thumbnail] = Field(default_factory=dict)
    live_broadcast_content: Literal["none", "upcoming", "live"] = "none"
    fetched_at: AwareDatetime
    duration_seconds: int | None = Field(default=None, ge=0)
    view_count: int | None = Field(default=None, ge=0)
    like_count: int | None = Field(default=None, ge=0)
    tags: list[str] | None = None

    @field_validator("published_at", "fetched_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _plausible_publish_date(self) -> VideoEvent:
        if not EARLIEST_PUBLISH_DATE <= self.published_at <= self.fetched_at + MAX_FUTURE_SKEW:
            raise ValueError(f"published_at {self.published_at.isoformat()} is not a plausible YouTube publish date")
        return self


def video_url(video_id: str) -> str:
    return f"https://www.youtube.com/watch?v={video_id}"
