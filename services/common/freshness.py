"""Measured freshness of one item: a compact histogram of delays per hour, and its percentiles over a day.

The fetcher records, for every video it publishes first, the delay from the video's ``publishedAt``
to the broker's confirm of its message. Delays are counted in logarithmic bins 5% wide (1 s to
about 12 days; under 1 s in one bin) per clock hour, and the last 25 hours are kept, so the state
stays small however busy the query; a percentile is the middle of its bin, within 2.5% of the true
value. ``window_percentiles`` reads the hours that started within the last 24 hours.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

BIN_RATIO = 1.05
_LOG_RATIO = math.log(BIN_RATIO)
MAX_BIN = 440  # about 12 days
KEPT_HOURS = 25
WINDOW = timedelta(hours=24)


def bin_of(seconds: float) -> int:
    if seconds < 1.0:
        return 0
    return min(MAX_BIN, 1 + math.floor(math.log(seconds) / _LOG_RATIO))


def bin_value(index: int) -> float:
    """The middle of a bin (geometric, so within half a bin's width of any delay in it)."""
    if index <= 0:
        return 0.5
    return BIN_RATIO ** (index - 1) * math.sqrt(BIN_RATIO)


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


@dataclass
class HourCounts:
    hour: datetime  # the start of the clock hour (UTC)
    counts: dict[int, int] = field(default_factory=dict)


@dataclass
class FreshnessDigest:
    hours: list[HourCounts] = field(default_factory=list)

    def add(self, delays: Iterable[float], now: datetime) -> None:
        hour = hour_of(now)
        if not self.hours or self.hours[-1].hour != hour:
            self.hours.append(HourCounts(hour))
        counts = self.hours[-1].counts
        for delay in delays:
            index = bin_of(max(0.0, delay))
            counts[index] = counts.get(index, 0) + 1
        self.hours = [h for h in self.hours if h.hour > hour - timedelta(hours=KEPT_HOURS)]

    def window_percentiles(self, now: datetime, quantiles: Iterable[float]) -> tuple[int, list[float | None]]:
        """How many delays the last 24 hours hold, and each quantile (0 to 1) of them (None without any)."""
        since = hour_of(now) - WINDOW
        merged: dict[int, int] = {}
        for hour in self.hours:
            if hour.hour > since:
                for index, count in hour.counts.items():
                    merged[index] = merged.get(index, 0) + count
        total = sum(merged.values())
        return total, [_quantile(merged, total, q) for q in quantiles]


def _quantile(merged: dict[int, int], total: int, q: float) -> float | None:
    if total == 0:
        return None
    rank = max(1, math.ceil(q * total))
    running = 0
    for index in sorted(merged):
        running += merged[index]
        if running >= rank:
            return bin_value(index)
    return bin_value(max(merged))
