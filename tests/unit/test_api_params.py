from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.api.errors import ApiError
from services.api.params import ChannelListParams, HistogramParams, NoParams, VideoListParams, parse_query_string


def _error(raw: str, model: type = VideoListParams) -> ApiError:
    with pytest.raises(ApiError) as caught:
        parse_query_string(raw, model)
    assert caught.value.status == 400
    assert caught.value.code == "invalid_parameter"
    return caught.value


def test_defaults() -> None:
    params = parse_query_string("", VideoListParams)
    assert (params.limit, params.sort, params.q, params.channel_id, params.cursor) == (
        20,
        "-published_at",
        None,
        [],
        None,
    )


def test_values_are_percent_decoded_and_channel_id_repeats() -> None:
    params = parse_query_string("q=world+cup%21&channel_id=UCa&channel_id=UCb&limit=100", VideoListParams)
    assert params.q == "world cup!"
    assert params.channel_id == ["UCa", "UCb"]
    assert params.limit == 100


@pytest.mark.parametrize("limit", ["0", "101", "-1", "1.0", "1e1", "+5", "1_0", " 5", "", "\uff15"])
def test_limit_must_be_plain_digits_in_range(limit: str) -> None:
    assert _error(f"limit={limit}").parameter == "limit"


def test_unknown_and_repeated_parameters_are_named() -> None:
    error = _error("limit=5&page=2&zebra=1")
    assert error.parameter == "page"
    assert "zebra" in error.message
    assert _error("limit=5&limit=6").parameter == "limit"
    assert _error("x=1", NoParams).parameter == "x"


def test_invalid_utf8_is_refused() -> None:
    _error("q=%C3%28")
    _error("q=%ED%A0%80")  # an encoded surrogate


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-24", datetime(2026, 11, 24, tzinfo=UTC)),
        ("2026-11-24T12:30:00Z", datetime(2026, 11, 24, 12, 30, tzinfo=UTC)),
        ("2026-11-24t12:30:00.250z", datetime(2026, 11, 24, 12, 30, 0, 250_000, tzinfo=UTC)),
        ("2026-11-24T14:30:00%2B02:00", datetime(2026, 11, 24, 12, 30, tzinfo=UTC)),
    ],
)
def test_times_are_rfc3339_or_a_date_meaning_midnight_utc(text: str, expected: datetime) -> None:
    assert parse_query_string(f"published_after={text}", VideoListParams).published_after == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-02-30",
        "2026-11-24T12:30:00",
        "2026-11-24T24:00:00Z",
        "24/11/2026",
        "now",
        "2026-11-24T12:30Z",
        "0000-01-01",
    ],
)
def test_impossible_or_zoneless_times_are_refused(text: str) -> None:
    assert _error(f"published_before={text}").parameter == "published_before"


def test_q_limits() -> None:
    assert parse_query_string("q=" + "a" * 200, VideoListParams).q == "a" * 200
    assert _error("q=" + "a" * 201).parameter == "q"
    assert _error("q=").parameter == "q"
    assert _error("q=%20%09").parameter == "q"


def test_other_models() -> None:
    assert parse_query_string("interval=hour", HistogramParams).interval == "hour"
    assert _error("interval=minute", HistogramParams).parameter == "interval"
    assert _error("sort=relevance", HistogramParams).parameter == "sort"
    assert parse_query_string("q=chan", ChannelListParams).q == "chan"
    assert _error("limit=0", ChannelListParams).parameter == "limit"
