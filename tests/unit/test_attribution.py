"""Attribution's pure parts: the percolator index derived from the catalogue's, its stored queries built
like the API's q with whole words, the public matched, and the matched filter in both stores."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from services.api.errors import ApiError
from services.api.handlers.feeds import feed_head, filter_pairs
from services.api.models import Video
from services.api.mongo_store import mongo_filter
from services.api.params import FeedParams, HistogramParams, VideoListParams, parse_query_string
from services.common.catalogue import (
    PERCOLATED_FIELDS,
    SEARCH_INDEX_MAPPINGS,
    SEARCH_INDEX_SETTINGS,
    percolator_alias,
    percolator_index_body,
)
from services.common.events import FoundBy
from services.common.percolated_text import PercolatedText
from services.common.video_query import TEXT_FIELDS, Filters, build_query, text_query
from services.common.video_shape import public_video
from services.indexer.percolator import percolator_fingerprint, query_id, stored_query

CHANNEL = "UC" + "a" * 22


def catalogue_index(settings: dict[str, Any] | None = None, mappings: dict[str, Any] | None = None) -> dict[str, Any]:
    """An entry of indices.get for a catalogue index (settings under index., as Elasticsearch answers)."""
    return {
        "settings": {"index": settings or SEARCH_INDEX_SETTINGS},
        "mappings": mappings or SEARCH_INDEX_MAPPINGS,
    }


def fingerprint_of(catalogue: dict[str, Any]) -> str:
    layout = PercolatedText.for_catalogue(catalogue)
    return percolator_fingerprint(*percolator_index_body(catalogue, layout.mappings), layout)


def test_the_percolator_index_copies_the_catalogues_analysis_into_one_text_field_without_sub_fields() -> None:
    layout = PercolatedText.for_catalogue(catalogue_index())
    settings, mappings = percolator_index_body(catalogue_index(), layout.mappings)
    assert settings["analysis"] == SEARCH_INDEX_SETTINGS["analysis"]
    for name in PERCOLATED_FIELDS:
        assert SEARCH_INDEX_MAPPINGS["properties"][name]["analyzer"] == "english"
        assert name not in mappings["properties"]  # percolated videos are analysed once, into "text"
    # Whole-word queries read no prefix or keyword sub-field, so percolated videos are not analysed into
    # them; the gap between the three values keeps a phrase inside one of them.
    assert mappings["properties"]["text"] == {"type": "text", "analyzer": "english", "position_increment_gap": 100}
    assert layout.query_fields == ("text",)
    assert mappings["properties"]["query"] == {"type": "percolator"}
    assert mappings["dynamic"] == "strict"
    assert percolator_alias("videos") == "videos-queries"


def test_a_catalogue_analysing_its_text_fields_differently_keeps_the_three_fields_in_the_percolator() -> None:
    mapping = copy.deepcopy(SEARCH_INDEX_MAPPINGS)
    mapping["properties"]["description"]["analyzer"] = "standard"
    layout = PercolatedText.for_catalogue(catalogue_index(mappings=mapping))
    assert layout.query_fields == tuple(TEXT_FIELDS)
    assert layout.mappings["description"] == {"type": "text", "analyzer": "standard"}  # without sub-fields
    assert layout.mappings["title"] == {"type": "text", "analyzer": "english"}
    video = {"title": "Cricket final", "channel_title": "Sky", "channel_id": CHANNEL}
    assert layout.of(video) == {"title": "Cricket final", "channel_title": "Sky", "description": ""}
    for name in PERCOLATED_FIELDS:
        mapping["properties"][name]["analyzer"] = "standard"
    assert PercolatedText.for_catalogue(catalogue_index(mappings=mapping)).mappings["text"]["analyzer"] == "standard"


def test_a_percolated_videos_text_is_its_title_channel_title_and_description_present() -> None:
    layout = PercolatedText.for_catalogue(catalogue_index())
    video = {"title": "Cricket final", "channel_title": "Sky", "description": "", "channel_id": CHANNEL}
    assert layout.of(video) == {"text": ["Cricket final", "Sky"]}
    assert layout.of(video | {"description": "Highlights"}) == {"text": ["Cricket final", "Sky", "Highlights"]}
    assert layout.of({"title": None}) == {"text": []}


def test_an_analyser_or_mapping_change_of_the_catalogue_changes_the_percolator_fingerprint() -> None:
    base = fingerprint_of(catalogue_index())
    analysis = copy.deepcopy(SEARCH_INDEX_SETTINGS)
    analysis["analysis"]["filter"]["prefix_edge"]["max_gram"] = 15
    all_standard = copy.deepcopy(SEARCH_INDEX_MAPPINGS)
    for name in PERCOLATED_FIELDS:
        all_standard["properties"][name]["analyzer"] = "standard"
    title_only = copy.deepcopy(SEARCH_INDEX_MAPPINGS)
    title_only["properties"]["title"]["analyzer"] = "standard"
    fingerprints = {
        base,
        fingerprint_of(catalogue_index(settings=analysis)),
        fingerprint_of(catalogue_index(mappings=all_standard)),
        fingerprint_of(catalogue_index(mappings=title_only)),
    }
    assert len(fingerprints) == 4
    assert fingerprint_of(catalogue_index()) == base


def test_a_stored_query_is_the_apis_q_with_whole_words_and_no_prefix() -> None:
    layout = PercolatedText.for_catalogue(catalogue_index())
    stored = stored_query("test match", layout)
    assert stored["query"] == text_query("test match", whole_words=True, fields=["text"])
    api_words = build_query(Filters(q="test match"), None, scored=True, whole_words=True)["bool"]["must"][0]
    # The API's query but for where its words are searched: the one field holding the three.
    assert api_words["simple_query_string"]["fields"] == ["title^3", "channel_title^2", "description"]
    assert stored["query"]["simple_query_string"] == api_words["simple_query_string"] | {"fields": ["text"]}
    assert "prefix" not in str(stored["query"])  # the API's q prefixes the last word; attribution never
    assert "prefix" in str(text_query("test match"))
    assert stored["query_text"] == "test match"
    assert query_id("test match") == query_id("test match") != query_id("test matches")


def _doc(**fields: Any) -> dict[str, Any]:
    return {"video_id": "abcdefghijk", "title": "t", "published_at": "2026-11-24T12:00:00Z"} | fields


def test_matched_says_search_for_the_queries_search_found_and_text_for_the_others() -> None:
    found_by = [FoundBy.channel(CHANNEL).as_document(), FoundBy.search("bowl").as_document()]
    video = public_video(_doc(found_by=found_by, queries=["test match", "bowl"]))
    assert video["matched"] == {"bowl": "search", "test match": "text"}
    Video.model_validate(video)
    # Stored before found_by: every query was a search find.
    assert public_video(_doc(queries=["cricket"]))["matched"] == {"cricket": "search"}
    assert public_video(_doc(found_by=found_by[:1]))["matched"] == {}


@pytest.mark.parametrize("model", [VideoListParams, HistogramParams, FeedParams])
def test_matched_narrows_query_and_needs_it(model: Any) -> None:
    assert parse_query_string("query=bowl&matched=text", model).filters().matched == "text"
    for raw in ("matched=search", "query=bowl&matched=push", "query=bowl&matched="):
        with pytest.raises(ApiError) as caught:
            parse_query_string(raw, model)
        assert (caught.value.status, caught.value.parameter) == (400, "matched")


def test_matched_binds_cursors_and_feeds_and_leaves_other_fingerprints_alone() -> None:
    plain = Filters(query="bowl")
    assert "matched" not in plain.canonical()
    assert Filters(query="bowl", matched="text").canonical() != Filters(query="bowl", matched="search").canonical()
    filters = Filters(query="bowl", matched="search")
    assert filter_pairs(filters) == [("query", "bowl"), ("matched", "search")]
    assert feed_head(filters, "https://tw.example").title.endswith("“bowl”, confirmed by its search")


def test_elasticsearch_tells_search_from_text_by_the_search_entries_of_found_by() -> None:
    search = build_query(Filters(query="bowl", matched="search"), None, scored=False)["bool"]["filter"]
    assert search[0] == {"term": {"queries": "bowl"}}
    assert {"term": {"found_by.query": "bowl"}} in search[1]["bool"]["should"]
    text = build_query(Filters(query="bowl", matched="text"), None, scored=False)["bool"]["filter"]
    assert text[1] == {
        "bool": {"filter": [{"exists": {"field": "found_by"}}], "must_not": [{"term": {"found_by.query": "bowl"}}]}
    }


def test_mongodb_tells_search_from_text_by_the_indexers_text_matched_queries() -> None:
    assert mongo_filter(Filters(query="bowl", matched="text", include_removed=True), None) == {
        "queries": "bowl",
        "text_matched_queries": "bowl",
    }
    assert mongo_filter(Filters(query="bowl", matched="search", include_removed=True), None) == {
        "queries": "bowl",
        "text_matched_queries": {"$ne": "bowl"},
    }
