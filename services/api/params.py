"""Query parameters: parsed strictly from the raw query string and validated by pydantic models.

The same models generate the OpenAPI parameter schemas, so the documented contract is the one
enforced. The rules that tie parameters together (bounds in order, relevance needs q, a histogram
of at most so many buckets) are validators of the models too; a model may also name parameters of
its neighbours it refuses with a reason (a feed takes no sort). Every failure is an ApiError naming
the parameter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Annotated, Any, ClassVar, Self, TypeVar
from urllib.parse import parse_qsl

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from services.api.buckets import TOO_MANY_BUCKETS, HistogramInterval, too_many_buckets
from services.api.errors import ApiError, invalid
from services.common.events import VIDEO_ID_PATTERN
from services.common.video_filters import VideoFilters, broken_rule, rule_parameter
from services.common.video_query import Filters, SortOrder

MAX_LIMIT = 100
DEFAULT_LIMIT = 20
MAX_CHANNEL_Q_LENGTH = 100
MAX_QUERY_FIELDS = 100
# A feed is always this many of the newest matches.
FEED_SIZE = 50

_DIGITS = re.compile(r"[0-9]{1,9}")


def _digits_only(value: object) -> object:
    """Only plain decimal digits are an integer here (not "1e1", "+5", "1_0" or " 5")."""
    if isinstance(value, str):
        if not _DIGITS.fullmatch(value):
            raise ValueError("must be a whole number")
        return int(value)
    return value


Limit = Annotated[
    int,
    Field(ge=1, le=MAX_LIMIT, description=f"Items per page, 1-{MAX_LIMIT}."),
    BeforeValidator(_digits_only),
]


def _true_or_false(value: object) -> object:
    """Only the words true and false are a flag here (not 1, yes, on or True)."""
    if isinstance(value, str):
        if value not in ("true", "false"):
            raise ValueError("must be true or false")
        return value == "true"
    return value


Flag = Annotated[bool, BeforeValidator(_true_or_false)]


class Params(BaseModel):
    """The parameters of one endpoint: unknown ones are refused, the values cannot change.

    ``refused``: parameters of related endpoints this one does not take, each with the reason given
    in its 400 (instead of the plain "unknown parameter").
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    refused: ClassVar[Mapping[str, str]] = {}


class FilterParams(Params, VideoFilters):
    """The filters of a listing (services/common/video_filters.py) as query parameters."""


class VideoListParams(FilterParams):
    sort: SortOrder = Field(
        default="-published_at",
        description="-published_at (newest first), published_at (oldest first), or relevance (needs q).",
    )
    limit: Limit = DEFAULT_LIMIT
    cursor: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description="The next_cursor of the previous page, with the same q, filters and sort.",
    )
    include_removed: Flag = Field(
        default=False,
        description="true: also the videos YouTube deleted, each with its removed_at; left out otherwise.",
    )

    def filters(self) -> Filters:
        """The filters of the list: those of every listing, and whether removed videos are included."""
        return replace(super().filters(), include_removed=self.include_removed)

    @model_validator(mode="after")
    def _relevance_needs_q(self) -> Self:
        if self.sort == "relevance" and self.q is None:
            raise broken_rule("sort", "sort=relevance needs q")
        return self


class HistogramParams(FilterParams):
    interval: HistogramInterval = Field(default="day", description="Bucket width; buckets start on UTC hours or days.")

    @model_validator(mode="after")
    def _not_too_many_buckets(self) -> Self:
        filters = self.filters()
        after, before = filters.published_after_ms, filters.published_before_ms
        if after is not None and before is not None and too_many_buckets(after, before, self.interval):
            raise broken_rule("interval", TOO_MANY_BUCKETS)
        return self


class FeedParams(FilterParams):
    """The filters of the video list and nothing else: a feed is always the FEED_SIZE newest matches.

    Every filter of FilterParams is a feed parameter, so a filter added there (found_by, for
    instance) is one here too, validated the same way.
    """

    refused: ClassVar[Mapping[str, str]] = {
        name: f"{name} is not a feed parameter: a feed is always the {FEED_SIZE} newest matches, newest first"
        for name in ("sort", "cursor", "limit")
    }


class ChannelListParams(Params):
    q: Annotated[str, Field(min_length=1, max_length=MAX_CHANNEL_Q_LENGTH, pattern=r"\S")] | None = Field(
        default=None, description="Only channels whose title has a word starting with this text."
    )
    limit: Limit = DEFAULT_LIMIT


class NoParams(Params):
    """Endpoints without query parameters: any parameter is unknown."""


class VideoPathParams(Params):
    video_id: str = Field(pattern=VIDEO_ID_PATTERN, description="The 11-character YouTube video id.")


ParamsT = TypeVar("ParamsT", bound=Params)


def parse_query_string(raw_query: str, model: type[ParamsT], path_values: Mapping[str, str] | None = None) -> ParamsT:
    """Validate the raw (still percent-encoded) query string against ``model``.

    ``path_values`` are the parameters that came in the path (``{video_id}``): fields of the model
    too, but never accepted from the query string.
    """
    path_values = path_values or {}
    try:
        pairs = parse_qsl(
            raw_query, keep_blank_values=True, strict_parsing=False, errors="strict", max_num_fields=MAX_QUERY_FIELDS
        )
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_parameter", "the query string is not valid UTF-8") from None
    except ValueError:
        raise ApiError(400, "invalid_parameter", f"at most {MAX_QUERY_FIELDS} query parameters") from None
    values: dict[str, list[str]] = {}
    for name, value in pairs:
        values.setdefault(name, []).append(value)
    fields = [name for name in model.model_fields if name not in path_values]
    refused = sorted(set(values) & set(model.refused))
    if refused:
        raise invalid(refused[0], model.refused[refused[0]])
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise invalid(unknown[0], f"unknown parameter(s): {', '.join(unknown)}; allowed: {', '.join(fields)}")
    data: dict[str, Any] = {}
    for name, given in values.items():
        if _is_list_field(model, name):
            data[name] = given
        elif len(given) > 1:
            raise invalid(name, f"{name} given {len(given)} times; give it once")
        else:
            data[name] = given[0]
    return validate_params(model, data | dict(path_values))


def validate_params(model: type[ParamsT], data: dict[str, Any]) -> ParamsT:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        parameter = rule_parameter(error)
        if parameter is not None:
            raise invalid(parameter, error["msg"]) from None
        name = str(error["loc"][0]) if error["loc"] else "query"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown parameter"
        raise invalid(name, f"{name}: {message}") from None


def _is_list_field(model: type[Params], name: str) -> bool:
    annotation = model.model_fields[name].annotation
    return getattr(annotation, "__origin__", None) is list
