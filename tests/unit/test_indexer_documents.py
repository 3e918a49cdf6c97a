"""The pure parts of storing a batch: MongoDB's documents and merge, and reading the stores' answers."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest
from aiormq.abc import DeliveredMessage
from bson.errors import InvalidDocument
from pymongo.errors import DocumentTooLarge, OperationFailure

from services.common.catalogue import SEARCH_DOCUMENT_FIELDS, SEARCH_INDEX_MAPPINGS
from services.common.errors import StoreUnavailableError
from services.common.events import FoundBy
from services.indexer.es_bulk import search_source
from services.indexer.es_errors import describe_item_error, sort_bulk_response
from services.indexer.mongo_documents import MONGO_SEARCH_PROJECTION, SNAPSHOT_FIELDS, merge_pipeline, new_document
from services.indexer.mongo_errors import describe_refusal, is_document_refusal
from services.indexer.settlement import ATTEMPTS_HEADER, attempts_so_far
from tests.factories import make_event

NOW = datetime(2026, 11, 25, 8, 30, 1, 123000, tzinfo=UTC)


def test_a_first_snapshot_becomes_a_document_at_revision_1_with_milliseconds_only() -> None:
    event = make_event(random.Random(1), fetched_at=datetime(2026, 11, 25, 8, 0, 0, 123456, tzinfo=UTC))
    doc = new_document(event, NOW)
    assert doc["video_id"] == event.video_id
    assert doc["queries"] == [event.query]
    assert (doc["rev"], doc["first_seen_at"], doc["updated_at"]) == (1, NOW, NOW)
    assert doc["fetched_at"].microsecond == 123000
    assert doc["published_at"].microsecond % 1000 == 0
    assert doc["thumbnails"]["default"]["width"] == 120
    assert set(SNAPSHOT_FIELDS) <= set(doc)


CHANNEL = "UCabcdefghijklmnopqrstuv"


def test_a_first_search_find_records_its_query_and_one_search_entry() -> None:
    doc = new_document(make_event(random.Random(3), query="golf"), NOW)
    assert doc["queries"] == ["golf"]
    assert doc["found_by"] == [{"source": "search", "query": "golf"}]


def test_a_first_channel_find_adds_no_query_and_one_channel_entry() -> None:
    doc = new_document(make_event(random.Random(4), found_by=FoundBy.channel(CHANNEL)), NOW)
    assert doc["queries"] == []
    assert doc["found_by"] == [{"source": "channel", "channel_id": CHANNEL, "via": "poll"}]


def test_the_merge_unions_the_find_the_stored_entries_and_those_of_the_stored_queries() -> None:
    (stage,) = merge_pipeline(make_event(random.Random(5), found_by=FoundBy.channel(CHANNEL)), NOW, {"golf"})
    fields = stage["$set"]
    stored_queries = {"$ifNull": ["$queries", []]}
    # The channel find adds no query of its own, and the queries its text matched.
    assert fields["queries"] == {"$setUnion": [stored_queries, {"$literal": []}, {"$literal": ["golf"]}]}
    stored, of_queries, found = fields["found_by"]["$setUnion"]
    assert stored == {"$ifNull": ["$found_by", []]}
    # The stored queries but those matched by text alone: no search found the video for them.
    assert of_queries["$map"]["input"] == {
        "$setDifference": [{"$ifNull": ["$queries", []]}, {"$ifNull": ["$text_matched_queries", []]}]
    }
    # A text match is listed as such unless search found the video for that query already.
    assert fields["text_matched_queries"] == {
        "$setUnion": [
            {"$setDifference": [{"$ifNull": ["$text_matched_queries", []]}, {"$literal": []}]},
            {"$setDifference": [{"$literal": ["golf"]}, {"$setUnion": [stored_queries, {"$literal": []}]}]},
        ]
    }
    assert found == {"$literal": [{"source": "channel", "channel_id": CHANNEL, "via": "poll"}]}


def test_found_by_is_read_from_mongodb_and_mapped_in_elasticsearch() -> None:
    assert "found_by" in SEARCH_DOCUMENT_FIELDS
    assert MONGO_SEARCH_PROJECTION["found_by"] == 1
    entry = SEARCH_INDEX_MAPPINGS["properties"]["found_by"]["properties"]
    assert {name: field["type"] for name, field in entry.items()} == dict.fromkeys(
        ("source", "query", "channel_id", "via"), "keyword"
    )


def test_the_merge_takes_stored_text_literally_and_keeps_known_enrichment() -> None:
    event = make_event(random.Random(2), title="$concat")
    assert event.view_count is None
    (stage,) = merge_pipeline(event, NOW)
    fields = stage["$set"]
    _newer, value, kept = fields["title"]["$cond"]
    assert value == {"$literal": "$concat"}
    assert kept == "$title"
    assert fields["view_count"]["$cond"][1] == {"$ifNull": ["$view_count", None]}
    assert fields["rev"] == {"$add": [{"$ifNull": ["$rev", 0]}, 1]}
    assert fields["updated_at"] == {"$literal": NOW}


def test_the_search_document_carries_the_write_time_as_indexed_at() -> None:
    source = search_source({"video_id": "v", "title": "t", "updated_at": NOW, "rev": 3})
    assert source["indexed_at"] == NOW
    assert source["title"] == "t"
    assert "updated_at" not in source


def _item(status: int, error: dict[str, Any] | None = None, video_id: str = "v1") -> dict[str, Any]:
    return {"index": {"_id": video_id, "status": status} | ({"error": error} if error else {})}


def test_a_bulk_answer_without_errors_rejects_nothing() -> None:
    assert sort_bulk_response({"errors": False, "items": [_item(201)]}) == {}


def test_a_bulk_answer_rejects_documents_refused_on_their_merits_and_ignores_version_conflicts() -> None:
    mapping = {"type": "document_parsing_exception", "reason": "bad field"}
    answer = {
        "errors": True,
        "items": [_item(201), _item(409, {"type": "version_conflict_engine_exception"}), _item(400, mapping, "v3")],
    }
    assert sort_bulk_response(answer) == {"v3": "elasticsearch 400: document_parsing_exception: bad field"}


@pytest.mark.parametrize(
    "item",
    [_item(429), _item(503), _item(403, {"type": "cluster_block_exception", "reason": "read-only"})],
    ids=["429", "503", "read-only"],
)
def test_a_bulk_answer_with_one_overloaded_or_blocked_item_is_an_outage(item: dict[str, Any]) -> None:
    with pytest.raises(StoreUnavailableError) as raised:
        sort_bulk_response({"errors": True, "items": [_item(201), item]})
    assert raised.value.store == "elasticsearch"


def test_an_item_error_names_its_cause() -> None:
    error = {"type": "a", "reason": "b", "caused_by": {"type": "c", "reason": "d"}}
    assert describe_item_error(400, error) == "elasticsearch 400: a: b (caused by c: d)"
    assert describe_item_error(400, "plain") == "elasticsearch 400: plain"


def test_only_size_and_encoding_failures_of_a_whole_request_are_a_documents_fault() -> None:
    assert is_document_refusal(DocumentTooLarge("too large"))
    assert is_document_refusal(InvalidDocument("cannot encode"))
    assert is_document_refusal(OperationFailure("BSONObjectTooLarge", code=10334))
    assert not is_document_refusal(OperationFailure("not authorized", code=13))
    too_large = OperationFailure("x", code=17419, details={"codeName": "TooLarge", "errmsg": "too big"})
    assert describe_refusal(too_large) == "mongodb 17419 TooLarge: too big"


@pytest.mark.parametrize(("header", "attempts"), [(None, 0), (3, 3), (-1, 0), ("2", 0)])
def test_attempts_come_from_the_header_when_it_is_a_count(header: object, attempts: int) -> None:
    headers = {} if header is None else {ATTEMPTS_HEADER: header}
    message = SimpleNamespace(header=SimpleNamespace(properties=SimpleNamespace(headers=headers)))
    assert attempts_so_far(cast(DeliveredMessage, message)) == attempts
