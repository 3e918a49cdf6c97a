"""Response models: the OpenAPI document is generated from these, and tests check responses against them.

Handlers build plain dicts for speed (no per-item model construction); the unit and schemathesis
tests validate what they build against these models, so the schema and the output cannot drift.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.api.channel_status import AutoFollowStatus, FollowedChannel, UnitsPool
from services.api.errors import ErrorCode
from services.common.events import ChannelVia
from services.common.video_query import MatchedBy


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Thumbnail(_Model):
    url: str
    width: int | None
    height: int | None


class Thumbnails(_Model):
    default: Thumbnail | None = None
    medium: Thumbnail | None = None
    high: Thumbnail | None = None


class SearchFind(_Model):
    """Found by the search of a configured query."""

    source: Literal["search"]
    query: str = Field(description="The configured search query (see /api/v1/queries).", examples=["cricket"])


class ChannelFind(_Model):
    """Found in a followed channel's uploads."""

    source: Literal["channel"]
    channel_id: str = Field(description="The followed channel.", examples=["UCiWLfSweyRNmLpgEHekhoAg"])
    via: ChannelVia = Field(
        description="poll: a read of the channel's uploads playlist; push: a WebSub notification of its feed."
    )


FoundByEntry = Annotated[SearchFind | ChannelFind, Field(discriminator="source")]


class Video(_Model):
    video_id: str = Field(examples=["dQw4w9WgXcQ"])
    title: str
    description: str
    published_at: datetime = Field(description="RFC 3339, UTC, with a trailing Z.")
    channel_id: str
    channel_title: str
    thumbnails: Thumbnails
    url: str = Field(examples=["https://www.youtube.com/watch?v=dQw4w9WgXcQ"])
    duration_seconds: int | None = Field(description="null where unknown.")
    view_count: int | None = Field(description="null where unknown.")
    found_by: list[FoundByEntry] = Field(
        description=(
            "How the video was found, each way once: by a configured search query, or in a followed channel's "
            "uploads. A video stored before channels were followed lists the queries whose search found it."
        )
    )
    matched: dict[str, MatchedBy] = Field(
        description=(
            "The configured queries the video belongs to (it is listed under query= for each): search when the "
            "query's search found it, text when it was found in a followed channel's uploads and its title, "
            "channel title or description matches the query (whole words, stemmed as q is), until search finds it."
        ),
        examples=[{"cricket": "search", "test match": "text"}],
    )
    removed_at: datetime | None = Field(
        description=(
            "When YouTube said the video was deleted (RFC 3339, UTC); null while it is not. Removed videos are "
            "listed only with include_removed=true, and lose it when a later search or channel read finds them."
        )
    )


class Total(_Model):
    value: int = Field(ge=0)
    relation: Literal["eq", "gte"] = Field(description="gte: at least value videos match (counting stops there).")


class VideoPage(_Model):
    items: list[Video]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null on the last page.")
    total: Total


class Channel(_Model):
    channel_id: str
    channel_title: str
    video_count: int = Field(ge=0)


class ChannelList(_Model):
    items: list[Channel]


class HistogramBucket(_Model):
    start: datetime = Field(description="Start of the bucket (UTC).")
    count: int = Field(ge=0)


class Histogram(_Model):
    interval: Literal["hour", "day"]
    buckets: list[HistogramBucket]


class QueryStatus(_Model):
    query: str
    paused: bool = Field(description="Paused through the admin API: listed, not searched.")
    videos_stored: int | None = Field(description="Videos in the catalogue found by this query; null if unknown.")
    last_poll_at: datetime | None
    last_sweep_at: datetime | None
    watermark: datetime | None = Field(description="Newest publish time the fetcher has confirmed for this query.")
    videos_published: int | None = Field(description="Videos the fetcher published for this query.")
    upload_rate_per_hour: float | None = Field(
        description="New videos an hour the fetcher's recent polls of this query found (smoothed); null if unknown."
    )
    planned_interval_seconds: float | None = Field(description="Seconds between two polls of this query, as planned.")
    calls_per_day: float | None = Field(description="Search calls a day this query spends at its planned interval.")
    expected_mean_delay_seconds: float | None = Field(
        description="Mean wait of a new video for the next poll at the planned interval (half of it)."
    )
    freshness_videos: int | None = Field(
        description="Videos the fetcher published first for this query in the last 24 hours (the freshness sample)."
    )
    freshness_p50_seconds: float | None = Field(
        description="Median, over the last 24 hours, of the broker's confirm of a new video minus its publishedAt."
    )
    freshness_p99_seconds: float | None = Field(description="The same delay's 99th percentile.")


class QueryList(_Model):
    items: list[QueryStatus]


class KeyStatus(_Model):
    fingerprint: str
    project: str
    state: Literal["live", "parked", "disabled"]
    parked_until: datetime | None
    disabled_reason: str | None
    quota_day: str
    search_calls_spent: int
    units_spent: int
    updated_at: datetime


class KeyCounts(_Model):
    live: int
    parked: int
    disabled: int


class Leader(_Model):
    holder: str
    token: int
    renewed_at: datetime
    expires_at: datetime
    active: bool = Field(description="false when the lease has expired (no fetcher is leading).")


class FetcherStatus(_Model):
    keys: KeyCounts
    key_details: list[KeyStatus]
    calls_left_today: int | None
    effective_interval_seconds: float | None
    quota_resets_at: datetime | None
    budget_updated_at: datetime | None
    last_poll_at: datetime | None
    leader: Leader | None
    scheduling: Literal["rate", "equal"] | None = Field(
        description="rate: each query's interval by its upload rate; equal: one interval for every query."
    )
    max_query_interval_seconds: float | None
    budget_too_small: bool | None = Field(
        description="true while the calls left cannot poll every query every max_query_interval_seconds."
    )
    followed_channels: list[FollowedChannel] = Field(
        description="FOLLOW_CHANNELS in their order, then the auto-followed channels by rank, with how each is read."
    )
    auto_follow: AutoFollowStatus | None = Field(description="null until a fetcher chose the followed channels.")
    units: UnitsPool | None = Field(description="The units pool (channel reads, videos.list); null until planned.")


class QueueStatus(_Model):
    name: str
    messages: int | None = Field(description="Messages waiting; null when RabbitMQ could not be asked.")
    consumers: int | None
    error: str | None


class IndexerStatus(_Model):
    queue: QueueStatus
    dead_letters: QueueStatus


class VideoCounts(_Model):
    stored: int | None = Field(description="Videos in MongoDB (system of record); null when it is unreachable.")
    indexed: int | None = Field(description="Videos searchable in Elasticsearch; null when it is unreachable.")


class PipelineStatus(_Model):
    generated_at: datetime
    served_by: Literal["elasticsearch", "mongodb"] = Field(description="Which store serves listings right now.")
    fetcher: FetcherStatus
    indexer: IndexerStatus
    videos: VideoCounts


class ErrorDetail(_Model):
    code: ErrorCode
    message: str
    parameter: str | None = Field(default=None, description="The query parameter at fault, when one is.")
    request_id: str | None = Field(default=None, description="On 500: the id of the request in the server log.")


class ErrorResponse(_Model):
    error: ErrorDetail
