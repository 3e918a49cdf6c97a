"""The admin API's bodies and answers: what it accepts (create, merge patch) and what it returns.

The same models validate the requests and write the OpenAPI document. A query answer is its
source document (services/common/sources.py) with the statistics ``/api/v1/queries`` shows of it;
a channel answer says whether and why it is read, with how it is read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from services.api.models import QueryStatus
from services.api.params import Limit, Params
from services.common.sources import (
    CHANNEL_ID_PATTERN,
    MAX_QUERY_TEXT_LENGTH,
    MAX_WEIGHT,
    MIN_WEIGHT,
    QUERY_ID_PATTERN,
    normalize_query_text,
    query_text_problem,
)

Weight = Annotated[
    float,
    Field(
        strict=True,
        ge=MIN_WEIGHT,
        le=MAX_WEIGHT,
        description=f"Scales the query's share of the search budget, {MIN_WEIGHT}-{MAX_WEIGHT:g} (1: an even share).",
    ),
]
ChannelIdText = Annotated[str, Field(pattern=CHANNEL_ID_PATTERN, examples=["UCiWLfSweyRNmLpgEHekhoAg"])]
QueryId = Annotated[str, Field(pattern=QUERY_ID_PATTERN, description="The query's opaque id.")]
MAX_PLAN_CHANGES = 20


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QueryCreate(_Body):
    text: str = Field(
        min_length=1,
        max_length=MAX_QUERY_TEXT_LENGTH,
        description="What to search for; surrounding spaces are trimmed, no control characters.",
        examples=["world cup"],
    )
    weight: Weight = 1.0

    @field_validator("text")
    @classmethod
    def _normalised(cls, value: str) -> str:
        text = normalize_query_text(value)
        problem = query_text_problem(text)
        if problem is not None:
            raise ValueError(problem)
        return text


class QueryPatch(_Body):
    """A JSON merge patch: a member given changes it, null resets it (weight 1, not paused)."""

    weight: Weight | None = None
    paused: StrictBool | None = Field(default=None, description="true: not searched until set false again.")


class ChannelCreate(_Body):
    channel_id: ChannelIdText


class ChannelPatch(_Body):
    """A JSON merge patch: a member given changes it, null resets it to false."""

    paused: StrictBool | None = Field(default=None, description="true: not read until set false again.")
    pinned: StrictBool | None = Field(default=None, description="true: followed whatever auto-follow decides.")
    excluded: StrictBool | None = Field(default=None, description="true: never auto-followed and never read.")


class QueryPathParams(Params):
    query_id: QueryId


class ChannelPathParams(Params):
    channel_id: ChannelIdText


class PlanParams(Params):
    add_query: list[Annotated[str, Field(min_length=1, max_length=MAX_QUERY_TEXT_LENGTH)]] = Field(
        default_factory=list, max_length=MAX_PLAN_CHANGES, description="Texts of queries to add (repeatable)."
    )
    remove_query: list[QueryId] = Field(
        default_factory=list, max_length=MAX_PLAN_CHANGES, description="Ids of queries to remove (repeatable)."
    )
    reweight_query: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list,
        max_length=MAX_PLAN_CHANGES,
        description=f"<query id>:<weight> ({MIN_WEIGHT} to {MAX_WEIGHT}) of a followed query (repeatable).",
        examples=[["q_0123456789abcdef:2.5"]],
    )
    add_channel: list[ChannelIdText] = Field(
        default_factory=list, max_length=MAX_PLAN_CHANGES, description="Channels to follow (repeatable)."
    )
    remove_channel: list[ChannelIdText] = Field(
        default_factory=list, max_length=MAX_PLAN_CHANGES, description="Channels to stop reading (repeatable)."
    )


class AuditParams(Params):
    cursor: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{24}$", description="The next_cursor of the previous page."
    )
    limit: Limit = 50


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AdminQuery(QueryStatus):
    id: str = Field(description="Opaque; names the query in the admin API.")
    text: str
    weight: float
    paused: bool
    created_at: datetime
    updated_at: datetime
    next_poll_at: datetime | None = Field(description="The last poll plus the planned interval; null if unknown.")


class AdminQueryList(_Answer):
    items: list[AdminQuery]
    managed_by_environment: bool = Field(
        description="true with SOURCES_FROM_ENV=always: the environment sets the sources and changes are refused."
    )


class AdminChannel(_Answer):
    channel_id: str
    followed: bool = Field(description="Followed explicitly (FOLLOW_CHANNELS or POST /api/v1/admin/channels).")
    pinned: bool
    excluded: bool
    paused: bool
    auto: bool = Field(description="Auto-follow chose it (rank and count say why).")
    read: bool = Field(description="The fetcher reads it: followed, pinned or auto, and neither paused nor excluded.")
    rank: int | None
    count: int | None
    status: Literal["ok", "not_found"] | None
    interval_seconds: float | None
    last_read_at: datetime | None
    next_read_at: datetime | None
    videos_published: int | None
    units_per_day: float | None = Field(description="Units a day its reads spend at the planned interval.")
    freshness_p50_seconds: float | None
    freshness_p99_seconds: float | None
    created_at: datetime | None = Field(description="When the operator's entry was made; null for auto alone.")
    updated_at: datetime | None


class AdminChannelList(_Answer):
    items: list[AdminChannel]
    managed_by_environment: bool


class PlanFigures(_Answer):
    interval_seconds: float
    expected_mean_delay_seconds: float
    calls_per_day: float = Field(description="Search calls (queries) or units (channels) a day.")


class PlanItem(_Answer):
    name: str = Field(description="The query's text or the channel's id.")
    id: str | None = Field(description="The query's id; null for channels and for queries not added yet.")
    now: PlanFigures | None = Field(description="As planned now; null for an item the change adds.")
    after: PlanFigures | None = Field(description="After the change; null for an item the change removes.")


class PlanSummary(_Answer):
    mean_delay_now_seconds: float | None
    mean_delay_after_seconds: float | None
    starved_now: bool
    starved_after: bool
    based_on: datetime | None = Field(description="When the fetcher saved the inputs (null: never, all defaults).")


class WhatIfPlan(_Answer):
    queries: list[PlanItem]
    channels: list[PlanItem]
    search: PlanSummary
    units: PlanSummary


class AuditRecord(_Answer):
    id: str
    at: datetime
    actor: str = Field(description="The admin token's label, or environment for the seeding.")
    action: Literal["create", "update", "delete"]
    kind: Literal["query", "channel", "saved_search"]
    target: str = Field(description="The query's, the channel's or the saved search's id.")
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class AuditPage(_Answer):
    items: list[AuditRecord]
    next_cursor: str | None
