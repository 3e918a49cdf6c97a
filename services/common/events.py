"""The message the fetcher publishes and the indexer consumes: one video, and how it was found.

Version 1 named the search query that found the video; version 2 says how it was found in
``found_by`` (a search query, or a followed channel's uploads), so a video found through a
channel has no query. The indexer accepts both; fetchers publish version 2, so indexers are
upgraded first.

``VideoRemoved`` is the other message on the same queue: YouTube said the video was deleted (a
push's tombstone). Its body says so in ``kind``, since copies of a message (retries, replays of
dead letters) reach the queue under another routing key.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

EVENT_SCHEMA_VERSION: Literal[2] = 2
# YouTube went public in 2005; nothing can have been published before.
EARLIEST_PUBLISH_DATE = datetime(2005, 4, 1, tzinfo=UTC)
# Clocks drift and scheduled broadcasts exist, but a publish date further ahead than this is garbage,
# and a garbage future date would push a query's watermark past every real video.
MAX_FUTURE_SKEW = timedelta(days=1)
VIDEO_ID_PATTERN = r"^[A-Za-z0-9_-]{11}$"
ThumbnailName = Literal["default", "medium", "high", "standard", "maxres"]
CHANNEL_ID_PATTERN = r"^UC[A-Za-z0-9_-]{22}$"
FoundBySource = Literal["search", "channel"]
# How a channel's video reached the fetcher: a read of its uploads playlist (a push comes later).
ChannelVia = Literal["poll", "push"]


class Thumbnail(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    url: str = Field(max_length=2048)
    width: int | None = Field(default=None, ge=0)
    height: int | None = Field(default=None, ge=0)


class FoundBy(BaseModel):
    """One way a video was found: by a search query, or through a followed channel.

    ``as_document`` is the entry stored in a video's ``found_by`` list (MongoDB and Elasticsearch):
    always the same keys in the same order, so equal entries are equal documents.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: FoundBySource
    query: str | None = Field(default=None, min_length=1, max_length=500)
    channel_id: str | None = Field(default=None, pattern=CHANNEL_ID_PATTERN)
    via: ChannelVia | None = None

    @model_validator(mode="after")
    def _fields_of_the_source(self) -> FoundBy:
        if self.source == "search" and (self.query is None or self.channel_id is not None or self.via is not None):
            raise ValueError("a search find names its query, and no channel or via")
        if self.source == "channel" and (self.channel_id is None or self.via is None or self.query is not None):
            raise ValueError("a channel find names its channel_id and via, and no query")
        return self

    @classmethod
    def search(cls, query: str) -> FoundBy:
        return cls(source="search", query=query)

    @classmethod
    def channel(cls, channel_id: str, via: ChannelVia = "poll") -> FoundBy:
        return cls(source="channel", channel_id=channel_id, via=via)

    def as_document(self) -> dict[str, str]:
        if self.source == "search":
            assert self.query is not None
            return {"source": "search", "query": self.query}
        assert self.channel_id is not None and self.via is not None
        return {"source": "channel", "channel_id": self.channel_id, "via": self.via}


class VideoEvent(BaseModel):
    """A snapshot of a video as the fetcher saw it. Text fields hold raw (unescaped) text.

    ``fetched_at`` orders snapshots of the same video: a consumer never lets an older snapshot
    overwrite a newer one. Unknown fields are ignored so a newer producer does not poison an
    older consumer; an incompatible change bumps ``schema_version``.

    ``found_by`` says how this snapshot was found; ``query`` is its query when search found it and
    None otherwise (a version 1 message has only ``query``: it was found by that search). Build
    one with ``found_by=FoundBy.search(q)`` or ``FoundBy.channel(id)``, or, as before,
    ``query=q`` alone.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: Literal[1, 2] = EVENT_SCHEMA_VERSION
    video_id: str = Field(pattern=VIDEO_ID_PATTERN)
    query: str | None = Field(default=None, min_length=1, max_length=500)
    found_by: FoundBy = None  # type: ignore[assignment]  # filled from ``query`` when absent
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

    @model_validator(mode="before")
    @classmethod
    def _found_by_of_version_1(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("found_by") is None:
            if data.get("query") is None:
                raise ValueError("an event names how the video was found: found_by, or (version 1) query")
            return {**data, "found_by": {"source": "search", "query": data["query"]}}
        return data

    @model_validator(mode="after")
    def _query_of_the_find(self) -> VideoEvent:
        if self.query != self.found_by.query:
            if self.query is not None:
                raise ValueError("query differs from found_by's query")
            object.__setattr__(self, "query", self.found_by.query)
        return self

    @model_validator(mode="after")
    def _plausible_publish_date(self) -> VideoEvent:
        if not EARLIEST_PUBLISH_DATE <= self.published_at <= self.fetched_at + MAX_FUTURE_SKEW:
            raise ValueError(f"published_at {self.published_at.isoformat()} is not a plausible YouTube publish date")
        return self


REMOVAL_SCHEMA_VERSION: Literal[1] = 1


class VideoRemoved(BaseModel):
    """YouTube deleted the video at ``removed_at`` (a tombstone's ``when``), as the fetcher heard it.

    The indexer marks the stored video removed unless a snapshot fetched after ``removed_at`` says it
    is there (the later of the two wins, whatever order they arrive in); the API then hides it unless
    asked for removed videos. Unknown fields are ignored, as in ``VideoEvent``.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    kind: Literal["removed"] = "removed"
    schema_version: Literal[1] = REMOVAL_SCHEMA_VERSION
    video_id: str = Field(pattern=VIDEO_ID_PATTERN)
    removed_at: AwareDatetime
    # The channel the tombstone came from, when the fetcher knows it (a push names its topic).
    channel_id: str | None = Field(default=None, pattern=CHANNEL_ID_PATTERN)
    # When the fetcher received the tombstone.
    observed_at: AwareDatetime

    @field_validator("removed_at", "observed_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _plausible_removal_date(self) -> VideoRemoved:
        if not EARLIEST_PUBLISH_DATE <= self.removed_at <= self.observed_at + MAX_FUTURE_SKEW:
            raise ValueError(f"removed_at {self.removed_at.isoformat()} is not a plausible removal date")
        return self


def video_url(video_id: str) -> str:
    return f"https://www.youtube.com/watch?v={video_id}"
