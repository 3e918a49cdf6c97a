"""Time as tubewatch stores and writes it: UTC, millisecond precision, RFC 3339 with a 'Z'.

Both stores keep milliseconds, so every moment is truncated to the millisecond before it is
stored or compared; epoch milliseconds are what cursors and Elasticsearch sort values carry.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
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
