"""The shared query builder (services/common/video_query.py) and the rules that moved out of the handlers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.api.cursors import Cursor, CursorCodec, InvalidCursorError
from services.api.errors import ApiError
from services.api.page_cache import PageCache
from services.api.params import HistogramParams, VideoListParams, parse_query_string
from services.common.video_query import Filters, after_bound, build_query, sort_clauses, text_query


def _has_prefix_query(query: Any) -> bool:
    return "multi_match" in json.dumps(query)


def test_whole_words_only_drops_the_prefix_on_the_last_word() -> None:
    assert _has_prefix_query(text_query("world crick"))
    whole = text_query("world crick", whole_words=True)
    assert not _has_prefix_query(whole)
    assert whole["simple_query_string"]["query"] == "world crick"
    assert whole["simple_query_string"]["default_operator"] == "and"
    # Text without a prefix word is the same query either way.
    assert text_query("world cup ", whole_words=True) == text_query("world cup ")


def test_build_query_scores_q_only_for_relevance_and_keeps_the_filters() -> None:
    filters = Filters(q="crick", channel_ids=("UCa",), published_after_ms=1, published_before_ms=2, query="cricket")
    listing = build_query(filters, 5, scored=False)
    assert listing["bool"]["must"] == []
    assert len(listing["bool"]["filter"]) == 5  # channels, dates, query, snapshot, q
    assert listing["bool"]["must_not"] == [{"exists": {"field": "removed_at"}}]
    relevance = build_query(filters, None, scored=True)
    assert relevance["bool"]["must"] == [text_query("crick")]
    assert not _has_prefix_query(build_query(filters, None, scored=True, whole_words=True))
    assert build_query(Filters(include_removed=True), None, scored=False) == {"match_all": {}}


def test_every_sort_ends_with_the_video_id() -> None:
    for sort in ("-published_at", "published_at", "relevance"):
        assert next(iter(sort_clauses(sort)[-1])) == "video_id"
    assert sort_clauses("relevance")[0] == {"_score": "desc"}


def _error(raw: str, model: type) -> ApiError:
    with pytest.raises(ApiError) as caught:
        parse_query_string(raw, model)
    return caught.value


def test_a_date_ordered_next_page_is_bounded_by_its_cursor_including_ties_and_relevance_is_not() -> None:
    # Inclusive: videos of the cursor's own millisecond come next when their video_id does.
    assert after_bound("-published_at", (1_700_000_000_000, "abcdefghijk")) == {
        "range": {"published_at": {"lte": 1_700_000_000_000, "format": "epoch_millis"}}
    }
    assert after_bound("published_at", (1_700_000_000_000, "abcdefghijk")) == {
        "range": {"published_at": {"gte": 1_700_000_000_000, "format": "epoch_millis"}}
    }
    assert after_bound("-published_at", None) is None
    assert after_bound("relevance", (1.5, 1_700_000_000_000, "abcdefghijk")) is None


def test_rules_between_parameters_live_in_the_models() -> None:
    relevance = _error("sort=relevance", VideoListParams)
    assert (relevance.parameter, relevance.message) == ("sort", "sort=relevance needs q")
    backwards = _error("published_after=2026-11-25&published_before=2026-11-24", VideoListParams)
    assert (backwards.parameter, backwards.message) == (
        "published_after",
        "published_after is later than published_before",
    )
    # The bounds are checked before relevance, as the handler used to.
    assert _error(
        "sort=relevance&published_after=2026-11-25&published_before=2026-11-24", VideoListParams
    ).parameter == ("published_after")
    too_many = _error("interval=hour&published_after=2000-01-01&published_before=2026-01-01", HistogramParams)
    assert too_many.parameter == "interval"
    assert too_many.message.startswith("more than 10000 buckets")
    assert parse_query_string("interval=day&published_after=2000-01-01&published_before=2026-01-01", HistogramParams)
    assert parse_query_string("q=a&sort=relevance", VideoListParams).filters().q == "a"


def test_the_codec_checks_the_shape_of_a_cursor_for_its_sort() -> None:
    codec = CursorCodec(b"k" * 48)
    date = codec.encode(Cursor("f", 1, (1764000000000, "aB3dE5fG7hI")))
    relevance = codec.encode(Cursor("f", 1, (1.5, 1764000000000, "aB3dE5fG7hI"), pit_id="pit"))
    assert codec.decode(date, "f", "-published_at").search_after[1] == "aB3dE5fG7hI"
    assert codec.decode(relevance, "f", "relevance").pit_id == "pit"
    for text, sort in ((date, "relevance"), (relevance, "published_at")):
        with pytest.raises(InvalidCursorError, match="not one this API issued"):
            codec.decode(text, "f", sort)
    assert codec.decode(relevance, "f").pit_id == "pit"  # without a sort, no shape check


def test_the_page_cache_keeps_only_date_ordered_pages_from_elasticsearch() -> None:
    cache = PageCache(60)
    cache.offer(("a", None, 20), b"es", "elasticsearch", "-published_at")
    cache.offer(("b", None, 20), b"mongo", "mongodb", "-published_at")
    cache.offer(("c", None, 20), b"rel", "elasticsearch", "relevance")
    assert len(cache) == 1
    hit = cache.lookup(("a", None, 20), "-published_at")
    assert hit is not None and hit.body == b"es"
    assert cache.lookup(("a", None, 20), "relevance") is None
    off = PageCache(0)
    off.offer(("a", None, 20), b"es", "elasticsearch", "-published_at")
    assert len(off) == 0 and off.lookup(("a", None, 20), "-published_at") is None
