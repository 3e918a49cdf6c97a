from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.api.buckets import HistogramTooLargeError, fill_buckets
from services.api.mongo_store import mongo_text_search
from services.common.timefmt import format_epoch_ms, to_epoch_ms
from services.common.video_query import parse_text_query, text_query
from services.common.video_shape import public_video


@pytest.mark.parametrize(
    ("q", "head", "prefix"),
    [
        ("crick", "", "crick"),
        ("world crick", "world", "crick"),
        ("world cup ", "world cup", None),
        ('"world cup"', '"world cup"', None),
        ('"world cu', '"world cu', None),
        ("cricket -test", "cricket -test", None),
        ("a | b", "a | b", None),
        ("cric*", "cric*", None),
    ],
)
def test_the_last_plain_word_is_the_prefix_being_typed(q: str, head: str, prefix: str | None) -> None:
    parsed = parse_text_query(q)
    assert (parsed.head, parsed.prefix_word) == (head, prefix)


def test_user_text_only_ever_goes_into_simple_query_string_over_our_fields() -> None:
    query = text_query('title:x "a b" -c d*')
    sqs = query["simple_query_string"]
    assert sqs["query"] == 'title:x "a b" -c d*'
    assert sqs["fields"] == ["title^3", "channel_title^2", "description"]
    assert "PREFIX" not in sqs["flags"]
    prefixed = text_query("world crick")
    assert prefixed["bool"]["must"][0]["simple_query_string"]["query"] == "world"


@pytest.mark.parametrize(
    ("q", "search"),
    [
        ("cricket", '"cricket"'),
        ("world cup", '"world" "cup"'),
        ('"world cup" final -women', '"world cup" "final" -women'),
        ('a\\"b', None),
        ("-only", None),
        ("(a | b)", '"a" "b"'),
    ],
)
def test_mongo_text_search_requires_every_word(q: str, search: str | None) -> None:
    result = mongo_text_search(q)
    if search is None:
        assert result is None or '"' in result
    else:
        assert result == search


def test_timestamps_are_utc_with_z_and_milliseconds_only_when_present() -> None:
    assert format_epoch_ms(to_epoch_ms(datetime(2026, 11, 24, 12, tzinfo=UTC))) == "2026-11-24T12:00:00Z"
    assert format_epoch_ms(1764000000123) == "2025-11-24T16:00:00.123Z"
    assert format_epoch_ms(to_epoch_ms(datetime(1901, 1, 1, tzinfo=UTC))) == "1901-01-01T00:00:00Z"


def test_histogram_buckets_are_dense_and_bounded() -> None:
    hour = 3_600_000
    start = to_epoch_ms(datetime(2026, 11, 24, tzinfo=UTC))
    buckets = fill_buckets({start: 2, start + 3 * hour: 1}, "hour", None, None)
    assert [b["count"] for b in buckets] == [2, 0, 0, 1]
    assert buckets[1]["start"] == "2026-11-24T01:00:00Z"
    assert fill_buckets({}, "day", None, None) == []
    assert len(fill_buckets({}, "day", start, start + 86_400_000 * 2 + 5)) == 3
    with pytest.raises(HistogramTooLargeError):
        fill_buckets({0: 1}, "hour", None, start)


def test_public_video_keeps_the_three_thumbnail_sizes_and_nulls_unknowns() -> None:
    video = public_video(
        {
            "video_id": "aB3dE5fG7hI",
            "title": "t",
            "published_at": "2026-11-24T12:00:00+00:00",
            "channel_id": "UC1",
            "thumbnails": {"default": {"url": "u", "width": 1, "height": 2}, "maxres": {"url": "m"}},
        }
    )
    assert video["thumbnails"] == {"default": {"url": "u", "width": 1, "height": 2}}
    assert video["published_at"] == "2026-11-24T12:00:00Z"
    assert video["duration_seconds"] is None and video["view_count"] is None
    assert video["description"] == "" and video["channel_title"] == ""
