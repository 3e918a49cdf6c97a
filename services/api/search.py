"""What the stores are asked: one normalised request per endpoint, shared by both backends."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from services.api.params import SortOrder

# Counting matches stops here (the response then says relation "gte"): exact totals of large result
# sets would cost a visit of every match on every page.
TOTAL_EXACT_UP_TO = 1000
MAX_HISTOGRAM_BUCKETS = 10_000
HistogramInterval = Literal["hour", "day"]
INTERVAL_MS: dict[HistogramInterval, int] = {"hour": 3_600_000, "day": 86_400_000}

# The fields a public video is built from.
VIDEO_SOURCE_FIELDS = (
    "video_id",
    "title",
    "description",
    "published_at",
    "channel_id",
    "channel_title",
    "thumbnails",
    "duration_seconds",
    "view_count",
)


class StoreUnavailableError(Exception):
    """The store could not answer (down, overloaded, index missing); another store may."""


class PitExpiredError(Exception):
    """The point-in-time of a relevance walk is gone (kept alive too long, or Elasticsearch restarted)."""


class HistogramTooLargeError(Exception):
    pass


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


def to_ms(moment: datetime) -> int:
    """Epoch milliseconds, truncated like both stores truncate."""
    return (moment - _EPOCH) // _ONE_MS


def from_ms(ms: int) -> datetime:
    return _EPOCH + ms * _ONE_MS


@dataclass(frozen=True)
class Filters:
    q: str | None = None
    channel_ids: tuple[str, ...] = ()
    published_after_ms: int | None = None
    published_before_ms: int | None = None
    query: str | None = None

    def canonical(self) -> dict[str, Any]:
        return {
            "q": self.q,
            "channel_id": sorted(set(self.channel_ids)),
            "after": self.published_after_ms,
            "before": self.published_before_ms,
            "query": self.query,
        }


@dataclass(frozen=True)
class PageRequest:
    filters: Filters
    sort: SortOrder
    limit: int
    snapshot_ms: int
    search_after: tuple[Any, ...] | None = None  # None on the first page
    pit_id: str | None = None

    @property
    def first_page(self) -> bool:
        return self.search_after is None


@dataclass
class Page:
    items: list[dict[str, Any]]
    total: dict[str, Any]
    next_search_after: list[Any] | None  # sort values of the last item when another page exists
    pit_id: str | None = None


@dataclass(frozen=True)
class TextQuery:
    """q split into what both stores understand: the whole text, and the last word typed (for prefixes)."""

    text: str
    head: str  # everything before the prefix word (may be empty)
    prefix_word: str | None  # the last word, when it is a plain word still being typed


_PLAIN_WORD = re.compile(r"[^\s\"()|+\-*~\\][^\s\"()|*~\\]*")


def parse_text_query(q: str) -> TextQuery:
    text = q.strip()
    if q[-1:].isspace() or text.count('"') % 2:
        return TextQuery(text, text, None)
    head, _, last = text.rpartition(" ")
    if not _PLAIN_WORD.fullmatch(last) or head.rstrip().endswith("|"):
        return TextQuery(text, text, None)
    return TextQuery(text, head.strip(), last)


def format_timestamp_ms(ms: int) -> str:
    """RFC 3339 in UTC with a Z; milliseconds only when present (as tubewatch writes every time)."""
    moment = from_ms(ms)
    text = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    millis = ms % 1000
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"


def floor_to_interval(ms: int, interval: HistogramInterval) -> int:
    width = INTERVAL_MS[interval]
    return ms - ms % width


def fill_buckets(
    counts: dict[int, int], interval: HistogramInterval, start_ms: int | None, end_ms: int | None
) -> list[dict[str, Any]]:
    """Dense buckets from the start bound (or first data) to the end bound (or last data), zeros included."""
    if start_ms is None and counts:
        start_ms = min(counts)
    if end_ms is None and counts:
        end_ms = max(counts)
    if start_ms is None or end_ms is None:
        return []
    start, end = floor_to_interval(start_ms, interval), floor_to_interval(end_ms, interval)
    width = INTERVAL_MS[interval]
    if end < start:
        return []
    if (end - start) // width + 1 > MAX_HISTOGRAM_BUCKETS:
        raise HistogramTooLargeError
    return [
        {"start": format_timestamp_ms(key), "count": counts.get(key, 0)} for key in range(start, end + width, width)
    ]
