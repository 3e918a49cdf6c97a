"""Time as tubewatch stores and writes it: UTC, millisecond precision, RFC 3339 with a 'Z'; and
spans of time as ISO 8601 durations (``P1D``, ``PT6H``).

Both stores keep milliseconds, so every moment is truncated to the millisecond before it is
stored or compared; epoch milliseconds are what cursors and Elasticsearch sort values carry.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# ISO 8601 durations of fixed length: weeks alone, or days and/or a time part of hours, minutes and
# whole seconds. Years and months are refused: their length depends on the calendar.
_DURATION = re.compile(
    r"P(?:(?P<weeks>[0-9]{1,7})W|(?:(?P<days>[0-9]{1,7})D)?"
    r"(?:T(?:(?P<hours>[0-9]{1,7})H)?(?:(?P<minutes>[0-9]{1,9})M)?(?:(?P<seconds>[0-9]{1,10})S)?)?)"
)
_CALENDAR_DURATION = re.compile(r"P(?:[0-9]+Y)?(?:[0-9]+M)?(?:[0-9]+[WD])?(?:T.*)?")
_ONE_MS = timedelta(milliseconds=1)


def utc_now() -> datetime:
    return datetime.now(UTC)


def truncate_to_ms(moment: datetime) -> datetime:
    """The same moment as MongoDB and Elasticsearch keep it: microseconds cut to milliseconds."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def to_epoch_ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime, truncated as both stores truncate."""
    return (moment - _EPOCH) // _ONE_MS


def from_epoch_ms(ms: int) -> datetime:
    return _EPOCH + ms * _ONE_MS


def format_rfc3339(moment: datetime) -> str:
    """Format an aware datetime as UTC with a trailing Z (milliseconds only when present)."""
    return format_epoch_ms(to_epoch_ms(moment))


def format_epoch_ms(ms: int) -> str:
    """``format_rfc3339`` of epoch milliseconds; spelled out by hand, as strftime is slow on hot paths."""
    moment = from_epoch_ms(ms)
    text = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    millis = ms % 1000
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 timestamp that carries a zone ('Z' or an offset); naive input is refused."""
    moment = datetime.fromisoformat(text.replace("z", "Z"))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no time zone")
    return moment.astimezone(UTC)


def parse_duration(text: str) -> timedelta:
    """An ISO 8601 duration of fixed length: ``P1W``, ``P1D``, ``PT6H``, ``P1DT12H``, ``PT90M``, ``PT30S``."""
    match = _DURATION.fullmatch(text)
    if match is None or text in ("P", "PT") or text.endswith("T"):
        if ("Y" in text or "M" in text.partition("T")[0]) and _CALENDAR_DURATION.fullmatch(text):
            raise ValueError("years and months have no fixed length; give days (P30D) or weeks (P4W)")
        raise ValueError("must be an ISO 8601 duration such as P1D, PT6H or P1DT12H")
    parts = {name: int(value) for name, value in match.groupdict().items() if value is not None}
    return timedelta(**parts)


def format_duration(span: timedelta) -> str:
    """The ISO 8601 form of a span of whole seconds, in days and hours, minutes, seconds (P1D, PT1H, P7D)."""
    seconds = int(span.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    time = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M"), (seconds, "S")) if n)
    text = "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "")
    return text if text != "P" else "PT0S"
