"""Histogram buckets: their widths, the most a histogram may have, and dense filling with zeros."""

from __future__ import annotations

from typing import Any, Literal

from services.common.timefmt import format_epoch_ms

MAX_HISTOGRAM_BUCKETS = 10_000
HistogramInterval = Literal["hour", "day"]
INTERVAL_MS: dict[HistogramInterval, int] = {"hour": 3_600_000, "day": 86_400_000}
TOO_MANY_BUCKETS = (
    f"more than {MAX_HISTOGRAM_BUCKETS} buckets: narrow published_after/published_before or use a wider interval"
)


class HistogramTooLargeError(Exception):
    """The histogram would have more than MAX_HISTOGRAM_BUCKETS buckets."""


def too_many_buckets(start_ms: int, end_ms: int, interval: HistogramInterval) -> bool:
    """Whether bounds this far apart make more buckets than a histogram may have."""
    return (end_ms - start_ms) // INTERVAL_MS[interval] >= MAX_HISTOGRAM_BUCKETS


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
    return [{"start": format_epoch_ms(key), "count": counts.get(key, 0)} for key in range(start, end + width, width)]
