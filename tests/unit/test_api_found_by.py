"""found_by in the API without a store: the public field (also for documents stored before it
existed), the found_by filter of the list, histogram and feed, the queries both stores are given,
the feed's head, and the OpenAPI schema."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter

from services.api.errors import ApiError
from services.api.handlers.feeds import feed_head, filter_pairs
from services.api.models import FoundByEntry, Video
from services.api.mongo_store import mongo_filter
from services.api.openapi import build_openapi
from services.api.params import FeedParams, FilterParams, HistogramParams, VideoListParams, parse_query_string
from services.common.events import FoundBy
from services.common.video_query import Filters, build_query
from services.common.video_shape import public_found_by, public_video

CHANNEL = "UC" + "a" * 22
SEARCH_FIND = {"source": "search", "query": "cricket"}
CHANNEL_FIND = {"source": "channel", "channel_id": CHANNEL, "via": "poll"}


def _doc(**fields: Any) -> dict[str, Any]:
    return {
        "video_id": "abcdefghijk",
        "title": "t",
        "published_at": "2026-11-24T12:00:00Z",
        "channel_id": CHANNEL,
        "first_seen_at": "2026-11-24T12:00:01Z",
    } | fields


def test_the_public_video_lists_the_stored_finds_in_the_models_shape() -> None:
    doc = _doc(found_by=[FoundBy.channel(CHANNEL).as_document(), FoundBy.search("cricket").as_document()])
    video = public_video(doc | {"queries": ["cricket"]})
    assert video["found_by"] == [CHANNEL_FIND, SEARCH_FIND]
    assert Video.model_validate(video).found_by[0].source == "channel"


def test_a_document_stored_before_found_by_is_found_by_the_search_of_its_queries() -> None:
    assert public_found_by(_doc(queries=["cricket", "football"])) == [
        SEARCH_FIND,
        {"source": "search", "query": "football"},
    ]
    assert public_found_by(_doc(queries=["cricket"], found_by=[])) == [SEARCH_FIND]
    assert public_found_by(_doc()) == []
    Video.model_validate(public_video(_doc(queries=["cricket"])))


def test_entries_are_shaped_by_their_source_and_listed_once() -> None:
    stored = [
        SEARCH_FIND | {"extra": 1},
        SEARCH_FIND,
        CHANNEL_FIND,
        {"source": "channel", "channel_id": CHANNEL, "via": "carrier pigeon"},
        {"source": "rumour"},
        "search",
    ]
    assert public_found_by(_doc(found_by=stored)) == [SEARCH_FIND, CHANNEL_FIND]


@pytest.mark.parametrize("model", [VideoListParams, HistogramParams, FeedParams])
def test_found_by_is_a_filter_of_the_list_the_histogram_and_the_feed(model: type[FilterParams]) -> None:
    assert parse_query_string("found_by=channel", model).filters().found_by == "channel"
    assert parse_query_string("found_by=search", model).filters().found_by == "search"
    assert parse_query_string("", model).filters().found_by is None
    for raw in ("found_by=Channel", "found_by=", "found_by=push", "found_by=search&found_by=channel"):
        with pytest.raises(ApiError) as caught:
            parse_query_string(raw, model)
        assert (caught.value.status, caught.value.parameter) == (400, "found_by")


def test_found_by_binds_cursors_and_leaves_other_walks_fingerprints_alone() -> None:
    plain = Filters(q="x")
    assert "found_by" not in plain.canonical()  # cursors issued before the filter existed stay valid
    canonicals = [Filters(q="x", found_by=source).canonical() for source in ("search", "channel")]
    assert canonicals[0] != canonicals[1]
    assert plain.canonical() not in canonicals


def test_elasticsearch_filters_on_the_source_and_counts_queries_alone_as_search() -> None:
    channel = build_query(Filters(found_by="channel", include_removed=True), None, scored=False)
    assert channel == {"bool": {"filter": [{"term": {"found_by.source": "channel"}}], "must": [], "must_not": []}}
    search = build_query(Filters(found_by="search"), None, scored=False)["bool"]["filter"][0]["bool"]
    assert search["minimum_should_match"] == 1
    assert {"term": {"found_by.source": "search"}} in search["should"]
    assert {
        "bool": {"filter": [{"exists": {"field": "queries"}}], "must_not": [{"exists": {"field": "found_by"}}]}
    } in search["should"]


def test_mongodb_filters_on_the_source_and_counts_queries_alone_as_search() -> None:
    assert mongo_filter(Filters(found_by="channel", include_removed=True), None) == {"found_by.source": "channel"}
    search = mongo_filter(Filters(found_by="search", query="cricket"), None)
    assert search["queries"] == "cricket"
    assert search["$or"] == [
        {"found_by.source": "search"},
        {"found_by.0": {"$exists": False}, "queries.0": {"$type": "string"}},
    ]


def test_the_feed_says_how_its_videos_were_found_and_links_with_the_filter() -> None:
    filters = parse_query_string("found_by=channel&q=cricket", FeedParams).filters()
    assert filter_pairs(filters) == [("q", "cricket"), ("found_by", "channel")]
    head = feed_head(filters, "https://tw.example")
    assert head.title == "tubewatch: newest videos matching “cricket”, found in followed channels' uploads"
    assert head.self_url == "https://tw.example/api/v1/feeds/videos.atom?q=cricket&found_by=channel"
    assert head.alternate_url == "https://tw.example/?q=cricket&found_by=channel"
    search = feed_head(Filters(found_by="search"), "https://tw.example")
    assert search.title == "tubewatch: newest videos found by search"
    assert search.feed_id != head.feed_id != feed_head(Filters(q="cricket"), "https://tw.example").feed_id


def test_the_openapi_document_describes_each_kind_of_find_and_the_filter() -> None:
    spec = build_openapi()
    schemas = spec["components"]["schemas"]
    items = schemas["Video"]["properties"]["found_by"]["items"]
    assert items["discriminator"]["propertyName"] == "source"
    assert set(items["discriminator"]["mapping"]) == {"search", "channel"}
    assert schemas["SearchFind"]["required"] == ["source", "query"]
    assert schemas["ChannelFind"]["required"] == ["source", "channel_id", "via"]
    assert schemas["ChannelFind"]["properties"]["via"]["enum"] == ["poll", "push"]
    assert "found_by" in schemas["Video"]["required"]
    for path in ("/api/v1/videos", "/api/v1/histogram", "/api/v1/feeds/videos.atom"):
        (found_by,) = [p for p in spec["paths"][path]["get"]["parameters"] if p["name"] == "found_by"]
        assert found_by["schema"] == {"type": "string", "enum": ["search", "channel"]}
    entries = TypeAdapter(list[FoundByEntry])
    assert entries.validate_python([SEARCH_FIND, CHANNEL_FIND])
    with pytest.raises(ValueError, match="query"):
        entries.validate_python([{"source": "search", "channel_id": CHANNEL}])
