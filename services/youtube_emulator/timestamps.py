"""RFC 3339 as search.list accepts it (protobuf Timestamp JSON) and as YouTube prints it."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

# 'Z' or ±hh:mm is mandatory and 0-9 fractional digits are allowed (protobuf timestamp.proto).
_RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:(Z)|([+-])(\d{2}):(\d{2}))$")


def parse_rfc3339(text: str) -> float | None:
    """Seconds since the epoch, or None when YouTube would reject the value."""
    match = _RFC3339.match(text)
    if not match:
        return None
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    fraction, zulu, sign, off_h, off_m = match.group(7, 8, 9, 10, 11)
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None
    if not zulu:
        if int(off_h) > 23 or int(off_m) > 59:
            return None
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        moment = moment - offset if sign == "+" else moment + offset
    seconds = moment.timestamp()
    if fraction:
        seconds += int(fraction) / 10 ** len(fraction)
    return seconds


def format_timestamp(epoch: float) -> str:
    """YouTube's form: whole seconds, UTC, 'Z' (``2026-11-24T09:41:07Z``)."""
    return datetime.fromtimestamp(math.floor(epoch), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_precise(epoch: float) -> str:
    """The admin endpoints' form: microseconds kept, so a clock set by a test reads back exactly."""
    text = datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="microseconds")
    return text.replace("+00:00", "Z")
