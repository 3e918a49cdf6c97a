"""The pure parts of a removal: MongoDB's conditional update, and what the merge of a later find does to it."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

import pytest

from services.common.catalogue import REMOVED_AT_FIELD, SEARCH_INDEX_MAPPINGS
from services.common.events import VideoRemoved
from services.indexer.decoding import decode_message
from services.indexer.es_bulk import search_source
from services.indexer.mongo_documents import MONGO_SEARCH_PROJECTION, merge_pipeline, new_document
from services.indexer.removal import removal_update
from tests.factories import make_event

NOW = datetime(2026, 11, 25, 8, 30, 1, 123000, tzinfo=UTC)
WHEN = datetime(2026, 11, 24, 12, 0, 0, 123456, tzinfo=UTC)
REMOVAL = VideoRemoved(video_id="aB3dE5fG7hI", removed_at=WHEN, observed_at=WHEN)


def test_a_removal_applies_only_over_an_older_or_equal_snapshot_and_an_older_removal() -> None:
    update = removal_update(REMOVAL, NOW)
    when = datetime(2026, 11, 24, 12, 0, 0, 123000, tzinfo=UTC)  # milliseconds, as MongoDB compares
    assert update._filter == {
        "video_id": REMOVAL.video_id,
        # A snapshot fetched after the removal says the video is there: it wins.
        "fetched_at": {"$lte": when},
        # A later removal stored already is kept; a missing removed_at matches.
        REMOVED_AT_FIELD: {"$not": {"$gte": when}},
    }
    # Bumps the revision, so the Elasticsearch copy with the new version replaces the old one.
    assert update._doc == {"$set": {REMOVED_AT_FIELD: when, "updated_at": NOW}, "$inc": {"rev": 1}}
    # An unknown video is not created: there is nothing to hide.
    assert not update._upsert


def test_a_first_snapshot_is_never_removed_and_its_search_document_says_so() -> None:
    doc = new_document(make_event(random.Random(1)), NOW)
    assert REMOVED_AT_FIELD not in doc
    assert search_source(doc)[REMOVED_AT_FIELD] is None


def test_the_merge_drops_removed_at_only_for_a_snapshot_fetched_after_it() -> None:
    event = make_event(random.Random(2), fetched_at=WHEN)
    (stage,) = merge_pipeline(event, NOW)
    found_again, dropped, kept = stage["$set"][REMOVED_AT_FIELD]["$cond"]
    assert (dropped, kept) == ("$$REMOVE", f"${REMOVED_AT_FIELD}")
    is_date, fetched_after = found_again["$and"]
    assert is_date == {"$eq": [{"$type": f"${REMOVED_AT_FIELD}"}, "date"]}
    # Strictly after: a snapshot fetched at the removal's very time does not undo it.
    assert fetched_after == {"$gt": [{"$literal": datetime(2026, 11, 24, 12, 0, 0, 123000, tzinfo=UTC)}, "$removed_at"]}


def test_removed_at_is_read_back_from_mongodb_and_a_date_in_the_index() -> None:
    assert MONGO_SEARCH_PROJECTION[REMOVED_AT_FIELD] == 1
    assert SEARCH_INDEX_MAPPINGS["properties"][REMOVED_AT_FIELD] == {"type": "date"}


@pytest.mark.parametrize("kind", [None, "renamed"], ids=["no kind", "another kind"])
def test_only_a_body_saying_it_is_a_removal_is_decoded_or_refused_as_one(kind: str | None) -> None:
    body = json.loads(REMOVAL.model_dump_json())
    if kind is None:
        del body["kind"]
    else:
        body["kind"] = kind
    # Not a find either: refused with the event's reason, not the removal's.
    with pytest.raises(ValueError, match="how the video was found"):
        decode_message(json.dumps(body).encode())


def test_a_broken_find_gets_the_reason_of_a_find() -> None:
    find = json.loads(make_event(random.Random(3)).model_dump_json())
    del find["title"]
    # A find carries no kind: its reason is about the find, never about what a removal lacks.
    with pytest.raises(ValueError, match=r"^1 schema error\(s\); title: Field required"):
        decode_message(json.dumps(find).encode())
