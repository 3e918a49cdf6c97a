"""Atom feeds without a store: published_within and the feed's parameters, the document's head and
entries, hostile text, and the conditional-GET decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import feedparser  # type: ignore[import-untyped]
import pytest
from aiohttp.test_utils import make_mocked_request

from services.api.atom import ATOM_NS, FeedHead, atom_feed, xml_text
from services.api.conditional import is_fresh, validator_headers
from services.api.errors import ApiError
from services.api.handlers.feeds import feed_head, filter_pairs
from services.api.params import FeedParams, FilterParams, HistogramParams, VideoListParams, parse_query_string
from services.common.timefmt import format_duration, parse_duration
from services.common.video_query import Filters, build_query
from tests.atom_schema import RNC, RNG, atom_validator, convert

HOUR_MS = 3_600_000


def _error(raw: str, model: type) -> ApiError:
    with pytest.raises(ApiError) as caught:
        parse_query_string(raw, model)
    assert caught.value.status == 400
    return caught.value


@pytest.mark.parametrize(
    ("text", "span", "canonical"),
    [
        ("P1D", timedelta(days=1), "P1D"),
        ("PT1H", timedelta(hours=1), "PT1H"),
        ("PT24H", timedelta(days=1), "P1D"),
        ("P1W", timedelta(days=7), "P7D"),
        ("P1DT12H", timedelta(days=1, hours=12), "P1DT12H"),
        ("PT90M", timedelta(minutes=90), "PT1H30M"),
        ("PT30S", timedelta(seconds=30), "PT30S"),
    ],
)
def test_durations_of_fixed_length_parse_and_print_canonically(text: str, span: timedelta, canonical: str) -> None:
    assert parse_duration(text) == span
    assert format_duration(span) == canonical


@pytest.mark.parametrize("text", ["P", "PT", "P1DT", "p1d", "PT1.5H", "1D", "P-1D", "P1D2W", " P1D"])
def test_malformed_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="ISO 8601 duration"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["P1Y", "P2M", "P1M2D", "P1YT1H"])
def test_years_and_months_are_refused_as_of_no_fixed_length(text: str) -> None:
    with pytest.raises(ValueError, match="no fixed length"):
        parse_duration(text)


@pytest.mark.parametrize("model", [VideoListParams, HistogramParams, FeedParams])
def test_published_within_is_a_filter_of_the_list_the_histogram_and_the_feed(model: type[FilterParams]) -> None:
    params = parse_query_string("published_within=PT6H", model)
    assert params.filters().published_within_ms == 6 * HOUR_MS
    for value in ("P0D", "PT0S", "P3661D", "P1Y", "soon"):
        assert _error(f"published_within={value}", model).parameter == "published_within"


def test_within_becomes_a_lower_bound_at_a_moment_and_stays_relative_in_the_fingerprint() -> None:
    filters = parse_query_string("q=cricket&published_within=PT1H", VideoListParams).filters()
    assert filters.canonical()["within"] == HOUR_MS
    resolved = filters.at(10 * HOUR_MS)
    assert (resolved.published_after_ms, resolved.published_within_ms) == (9 * HOUR_MS, None)
    # An absolute bound later than the relative one wins; an earlier one gives way.
    later = 9 * HOUR_MS + HOUR_MS // 2
    assert Filters(published_after_ms=later, published_within_ms=HOUR_MS).at(10 * HOUR_MS) == Filters(
        published_after_ms=later
    )
    assert Filters(published_after_ms=1, published_within_ms=HOUR_MS).at(10 * HOUR_MS).published_after_ms == 9 * HOUR_MS
    # Without published_within the fingerprint input is what it was before the parameter existed.
    assert "within" not in Filters(q="x").canonical()


def test_a_query_is_never_built_from_an_unresolved_relative_bound() -> None:
    with pytest.raises(ValueError, match="resolved"):
        build_query(Filters(published_within_ms=HOUR_MS), None, scored=False)


@pytest.mark.parametrize("name", ["sort", "cursor", "limit"])
def test_list_only_parameters_are_refused_by_the_feed_with_a_reason(name: str) -> None:
    error = _error(f"q=x&{name}=1", FeedParams)
    assert error.parameter == name
    assert "not a feed parameter" in error.message


def test_the_feed_validates_its_filters_like_the_list() -> None:
    assert _error("nope=1", FeedParams).parameter == "nope"
    assert _error("q=%20", FeedParams).parameter == "q"
    assert _error("published_after=2026-02-02&published_before=2026-02-01", FeedParams).parameter == "published_after"
    assert _error("channel_id=bad%20id", FeedParams).parameter == "channel_id"
    assert _error("q=a&q=b", FeedParams).parameter == "q"


def _video(video_id: str = "abcdefghijk", **fields: Any) -> dict[str, Any]:
    return {
        "video_id": video_id,
        "title": "A title",
        "description": "A description",
        "published_at": "2026-11-24T12:00:00Z",
        "channel_id": "UCchannel",
        "channel_title": "A channel",
        "thumbnails": {"high": {"url": "https://i.ytimg.com/vi/x/hq.jpg", "width": 480, "height": 360}},
        "url": f"https://www.youtube.com/watch?v={video_id}",
        "duration_seconds": None,
        "view_count": None,
    } | fields


HOSTILE = "<img src=x onerror=alert(1)> & </title><script>alert(2)</script> ]]> \"'"


def test_hostile_text_is_literal_text_and_the_document_stays_valid() -> None:
    videos = [_video(title=HOSTILE, description=HOSTILE + "\x00\x07\ufffe", channel_title=HOSTILE)]
    body = atom_feed(feed_head(Filters(q=HOSTILE), "http://127.0.0.1:8080"), videos)
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.get("bozo_exception")
    entry = parsed.entries[0]
    assert entry.title == HOSTILE
    assert entry.title_detail.type == "text/plain"
    assert entry.summary == HOSTILE  # the characters XML cannot carry are gone, nothing else
    assert entry.author == HOSTILE
    assert f"“{HOSTILE}”" in parsed.feed.title
    validator = atom_validator()
    tree = validator.parse(body)
    assert validator.validate(tree), validator.error_log
    titles = tree.findall(f".//{{{ATOM_NS}}}title")
    assert len(titles) == 2
    assert all(len(title) == 0 for title in titles)  # text only: no element of any namespace inside


def test_an_empty_feed_is_valid_and_fixed() -> None:
    head = feed_head(Filters(q="nothing"), "http://h")
    body = atom_feed(head, [])
    assert body == atom_feed(head, [])
    parsed = feedparser.parse(body)
    assert not parsed.bozo
    assert parsed.entries == []
    validator = atom_validator()
    assert validator.validate(validator.parse(body)), validator.error_log


def test_the_head_comes_from_the_filters_in_one_canonical_order() -> None:
    one = parse_query_string(
        "query=cricket&channel_id=UCb&channel_id=UCa&published_within=PT24H&q=world+cup", FeedParams
    ).filters()
    other = parse_query_string(
        "q=world%20cup&channel_id=UCa&channel_id=UCb&channel_id=UCa&published_within=P1D&query=cricket", FeedParams
    ).filters()
    assert feed_head(one, "https://tw.example") == feed_head(other, "https://tw.example")
    head = feed_head(one, "https://tw.example/sub")
    assert head.feed_id.startswith("tag:tubewatch,2026:feeds/videos/")
    assert head.feed_id == feed_head(one, "http://elsewhere:1").feed_id  # the id does not depend on the address
    query = "q=world%20cup&channel_id=UCa&channel_id=UCb&published_within=P1D&query=cricket"
    assert head.self_url == f"https://tw.example/sub/api/v1/feeds/videos.atom?{query}"
    assert head.alternate_url == f"https://tw.example/sub/?{query}"
    assert head.title == (
        "tubewatch: newest videos matching “world cup”, from channels UCa, UCb, "
        "found by the search query “cricket”, published in the last 1 day"
    )
    assert feed_head(Filters(), "http://h").title == "tubewatch: newest videos"
    assert feed_head(Filters(), "http://h").self_url == "http://h/api/v1/feeds/videos.atom"
    bounded = parse_query_string("published_after=2026-11-01&published_before=2026-11-02T06:00:00%2B02:00", FeedParams)
    assert filter_pairs(bounded.filters()) == [
        ("published_after", "2026-11-01T00:00:00Z"),
        ("published_before", "2026-11-02T04:00:00Z"),
    ]


def test_entries_carry_id_links_dates_author_and_thumbnail() -> None:
    body = atom_feed(FeedHead("tag:t,2026:x", "t", "http://h/f", "http://h/"), [_video(), _video("bcdefghijkl")])
    parsed = feedparser.parse(body)
    assert [e.id for e in parsed.entries] == ["yt:video:abcdefghijk", "yt:video:bcdefghijkl"]
    entry = parsed.entries[0]
    assert entry.link == "https://www.youtube.com/watch?v=abcdefghijk"
    assert entry.published == entry.updated == "2026-11-24T12:00:00Z"
    assert entry.author_detail == {"name": "A channel", "href": "https://www.youtube.com/channel/UCchannel"}
    assert entry.media_thumbnail == [{"url": "https://i.ytimg.com/vi/x/hq.jpg", "width": "480", "height": "360"}]
    assert parsed.feed.updated == "2026-11-24T12:00:00Z"
    assert {link.rel: link.href for link in parsed.feed.links} == {"self": "http://h/f", "alternate": "http://h/"}


def test_characters_xml_cannot_carry_are_dropped() -> None:
    assert xml_text("a\x00b\x1fc\ud800d\ufffee\tf\ng") == "abcde\tf\ng"


LAST = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)


def _fresh(**headers: str) -> bool:
    validators = validator_headers(b"<feed/>", LAST, "public, max-age=1")
    return is_fresh(make_mocked_request("GET", "/", headers=headers), validators)


def test_conditional_requests() -> None:
    etag = validator_headers(b"<feed/>", LAST, "x")["ETag"]
    assert validator_headers(b"<feed/>", LAST, "x")["Last-Modified"] == "Tue, 24 Nov 2026 12:00:00 GMT"
    assert _fresh(**{"If-None-Match": etag})
    assert _fresh(**{"If-None-Match": f'"other", W/{etag}'})  # weak comparison
    assert _fresh(**{"If-None-Match": "*"})
    assert not _fresh(**{"If-None-Match": '"other"'})
    assert not _fresh()
    assert _fresh(**{"If-Modified-Since": "Tue, 24 Nov 2026 12:00:00 GMT"})
    assert _fresh(**{"If-Modified-Since": "Tue, 24 Nov 2026 13:00:00 GMT"})
    assert not _fresh(**{"If-Modified-Since": "Tue, 24 Nov 2026 11:59:59 GMT"})
    assert not _fresh(**{"If-Modified-Since": "yesterday"})
    # If-None-Match decides when both are sent.
    assert not _fresh(**{"If-None-Match": '"other"', "If-Modified-Since": "Tue, 24 Nov 2026 13:00:00 GMT"})


def test_the_schema_is_rfc_4287_appendix_b_converted_by_rnc2rng() -> None:
    assert RNG.read_text() == convert()
    compact = RNC.read_text()
    assert compact.startswith("# -*- rnc -*-\n# RELAX NG Compact Syntax Grammar for the\n# Atom Format Specification")
    assert compact.endswith("# EOF\n")
    validator = atom_validator()
    not_atom = b'<feed xmlns="http://www.w3.org/2005/Atom"><title>no id, no updated</title></feed>'
    assert not validator.validate(validator.parse(not_atom))
