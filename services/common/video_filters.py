"""The filters of a video listing as the API takes them: one pydantic model, shared.

``VideoFilters`` validates the video list's, the histogram's and the feed's filter parameters
(services/api/params.py builds those endpoints' parameter models on it) and a saved search's
filters (services/common/saved_searches.py), so a saved search holds exactly what a list query
may. The rules that tie filters together (bounds in order, matched needs query) are validators
here too; their errors carry the parameter at fault (``rule_parameter``).

The JSON form (``model_dump(mode="json")``) spells times in RFC 3339 with a Z and
published_within as an ISO 8601 duration, the spellings the parameters accept.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_serializer,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from services.common.events import FoundBySource
from services.common.timefmt import format_duration, format_rfc3339, parse_duration, to_epoch_ms
from services.common.video_query import Filters, MatchedBy

MAX_Q_LENGTH = 200
CHANNEL_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
MAX_CHANNEL_FILTERS = 50
# The longest published_within: about ten years.
MAX_WITHIN = timedelta(days=3660)
# The error type of a rule that ties filters together; its context names the parameter at fault.
PARAMETER_RULE = "parameter_rule"

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)

_TIME_FORMS = "must be an RFC 3339 timestamp with a time zone (2026-11-24T12:00:00Z) or a date (2026-11-24)"


def parse_time_parameter(value: object) -> object:
    """An RFC 3339 timestamp with a zone, or a date alone meaning midnight UTC (a datetime as it is)."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):  # in JSON too: never a number read as a Unix time
        raise ValueError(_TIME_FORMS)
    try:
        if _DATE.fullmatch(value):
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        if _DATE_TIME.fullmatch(value):
            return datetime.fromisoformat(value.upper()).astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError("is not a possible date or time") from None
    raise ValueError(_TIME_FORMS)


def parse_within_parameter(value: object) -> object:
    """An ISO 8601 duration of fixed length (P1D, PT6H, P1W), more than zero and at most MAX_WITHIN."""
    if isinstance(value, timedelta):
        span = value
    elif isinstance(value, str):
        span = parse_duration(value)
    else:
        raise ValueError("must be an ISO 8601 duration such as P1D, PT6H or P1DT12H")
    if span <= timedelta(0) or span > MAX_WITHIN:
        raise ValueError(f"must be more than zero and at most P{MAX_WITHIN.days}D")
    return span


TimeParameter = Annotated[
    datetime,
    BeforeValidator(parse_time_parameter),
    WithJsonSchema({"type": "string", "anyOf": [{"format": "date-time"}, {"format": "date"}]}),
]
Within = Annotated[
    timedelta,
    BeforeValidator(parse_within_parameter),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^P([0-9]{1,7}W|([0-9]{1,7}D)?(T([0-9]{1,7}H)?([0-9]{1,9}M)?([0-9]{1,10}S)?)?)$",
        }
    ),
]
SearchText = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_Q_LENGTH,
        pattern=r"\S",
        description=(
            "Full-text search over title, description and channel title: stemmed words (running finds run), "
            'the last word also as a prefix while typing (crick finds cricket), "quoted phrases", -word to '
            "exclude, a | b for either. All other words are required."
        ),
    ),
]
ChannelId = Annotated[str, Field(pattern=CHANNEL_ID_PATTERN)]


def broken_rule(parameter: str, message: str) -> PydanticCustomError:
    """The error of a rule that ties filters together, naming ``parameter``."""
    return PydanticCustomError(PARAMETER_RULE, message, {"parameter": parameter})


def rule_parameter(error: ErrorDetails) -> str | None:
    """The parameter a ``broken_rule`` error names; None for any other error."""
    if error["type"] != PARAMETER_RULE:
        return None
    return str(error.get("ctx", {})["parameter"])


class VideoFilters(BaseModel):
    """The filters of a listing; unknown ones are refused, the values cannot change."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    q: SearchText | None = None
    channel_id: list[ChannelId] = Field(
        default_factory=list,
        max_length=MAX_CHANNEL_FILTERS,
        description="Only videos of these channels (repeat the parameter for several).",
    )
    published_after: TimeParameter | None = Field(
        default=None,
        description="Only videos published at or after this time (RFC 3339; a date alone is midnight UTC).",
    )
    published_before: TimeParameter | None = Field(
        default=None,
        description="Only videos published at or before this time (RFC 3339; a date alone is midnight UTC).",
    )
    published_within: Within | None = Field(
        default=None,
        description=(
            "Only videos published in this span back from now (a list walk: from its first page), an ISO 8601 "
            "duration: P1D, PT6H, P1W, P1DT12H; no years or months."
        ),
    )
    query: str | None = Field(
        default=None,
        min_length=1,
        max_length=500,
        description=(
            "Only videos that belong to this configured search query (see /api/v1/queries): found by its search, "
            "or found in a followed channel's uploads with text matching it (see matched)."
        ),
    )
    matched: MatchedBy | None = Field(
        default=None,
        description=(
            "With query: only the videos search found for it (search), or only those whose text matched it and "
            "that its search has not found (yet) (text)."
        ),
    )
    found_by: FoundBySource | None = Field(
        default=None,
        description=(
            "Only videos found this way at least once: search (by a configured search query) or channel "
            "(in a followed channel's uploads). A video found both ways matches either."
        ),
    )

    def filters(self) -> Filters:
        """The filters as the stores take them: times as epoch milliseconds, truncated as stored.

        published_within stays relative: ``Filters.at(moment)`` fixes it once the moment is known.
        """
        within = self.published_within
        return Filters(
            q=self.q,
            channel_ids=tuple(self.channel_id),
            published_after_ms=None if self.published_after is None else to_epoch_ms(self.published_after),
            published_before_ms=None if self.published_before is None else to_epoch_ms(self.published_before),
            query=self.query,
            published_within_ms=None if within is None else within // timedelta(milliseconds=1),
            found_by=self.found_by,
            matched=self.matched,
        )

    @field_serializer("published_after", "published_before", when_used="json-unless-none")
    def _rfc3339(self, moment: datetime) -> str:
        return format_rfc3339(moment)

    @field_serializer("published_within", when_used="json-unless-none")
    def _duration(self, span: timedelta) -> str:
        return format_duration(span)

    @model_validator(mode="after")
    def _bounds_in_order(self) -> Self:
        filters = self.filters()
        after, before = filters.published_after_ms, filters.published_before_ms
        if after is not None and before is not None and after > before:
            raise broken_rule("published_after", "published_after is later than published_before")
        if self.matched is not None and self.query is None:
            raise broken_rule("matched", "matched needs query")
        return self
