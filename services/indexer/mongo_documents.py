"""The MongoDB video document: a first snapshot as a new document, a later one as a merge pipeline.

Idempotence: documents key on ``video_id``; a snapshot older than the stored one (``fetched_at``)
leaves the video's fields alone but still merges how it was found: ``found_by`` (unique
``FoundBy.as_document`` entries) and, for a search find, ``queries``, both unions whatever the
order. Every write bumps ``rev``, which Elasticsearch receives as the document's external version.

A removed video (``removed_at``, set by ``removal``) is found again by a snapshot fetched after
``removed_at``: the merge drops the field, so the video is listed again. A snapshot fetched at or
before it (one arriving late) keeps it: the later of the two wins whatever their order. A first
snapshot never holds ``removed_at``.

A video stored before ``found_by`` existed has only ``queries``: each query is a search entry
(``FOUND_BY_OF_QUERIES``), which the merge adds too, so a document an older indexer wrote during an
upgrade is completed by the next write.

Attribution (``services/indexer/attribution.py``) adds to ``queries`` the configured queries a
channel-found video matches by text, and lists those search has not confirmed in
``text_matched_queries`` (MongoDB only: Elasticsearch tells them apart from ``found_by``, whose search
entries are the confirmed ones). A search find of such a query takes it out of that list, so it turns
from "text" to "search"; the two writes commute, whichever lands first.
"""

from __future__ import annotations

from collections.abc import Set
from datetime import datetime
from typing import Any

from services.common.catalogue import REMOVED_AT_FIELD, SEARCH_DOCUMENT_FIELDS
from services.common.events import VideoEvent
from services.common.timefmt import truncate_to_ms

# Fields a newer snapshot replaces. Query membership and first/updated times are merged separately.
SNAPSHOT_FIELDS = (
    "title",
    "description",
    "published_at",
    "channel_id",
    "channel_title",
    "thumbnails",
    "live_broadcast_content",
    "duration_seconds",
    "view_count",
    "like_count",
    "tags",
    "fetched_at",
)
# Enrichment a snapshot may lack (e.g. videos.list failed): keep what is known instead of nulling it.
_KEEP_WHEN_MISSING = frozenset({"duration_seconds", "view_count", "like_count", "tags"})

# What is read back from MongoDB to build the Elasticsearch document. ``indexed_at`` in the index is
# the MongoDB ``updated_at`` of the write, so a reindex reproduces it exactly (the API's walks rely on it).
MONGO_SEARCH_PROJECTION: dict[str, Any] = {
    "_id": 0,
    "updated_at": 1,
    **{name: 1 for name in SEARCH_DOCUMENT_FIELDS if name != "indexed_at"},
}


def _snapshot(event: VideoEvent) -> dict[str, Any]:
    snapshot: dict[str, Any] = {name: getattr(event, name) for name in SNAPSHOT_FIELDS}
    snapshot["thumbnails"] = {name: thumb.model_dump() for name, thumb in event.thumbnails.items()}
    return snapshot


# The queries of a video attributed by text that no search has found it for yet.
TEXT_MATCHED_FIELD = "text_matched_queries"

# The search entries of a document's queries, in ``FoundBy.as_document`` form (same keys, same order):
# all of them but those matched by text alone, which no search found.
FOUND_BY_OF_QUERIES: dict[str, Any] = {
    "$map": {
        "input": {"$setDifference": [{"$ifNull": ["$queries", []]}, {"$ifNull": [f"${TEXT_MATCHED_FIELD}", []]}]},
        "as": "query",
        "in": {"source": {"$literal": "search"}, "query": "$$query"},
    }
}


def _queries(event: VideoEvent) -> list[str]:
    """What the event adds to ``queries``: its search query; nothing for a channel find."""
    # found_by, not query: it is what the event says about how the video was found (the two agree
    # in every event that was validated).
    query = event.found_by.query
    return [] if query is None else [query]


def new_document(event: VideoEvent, now: datetime, text_matches: Set[str] = frozenset()) -> dict[str, Any]:
    """The MongoDB document of a video's first snapshot: what the merge pipeline makes of nothing.

    ``text_matches``: the configured queries the snapshot's text matches (attribution)."""
    doc = _snapshot(event)
    found = _queries(event)
    doc |= {
        "video_id": event.video_id,
        "queries": sorted(set(found) | text_matches),
        "found_by": [event.found_by.as_document()],
        "first_seen_at": now,
        "updated_at": now,
        "rev": 1,
    }
    if text_only := sorted(text_matches - set(found)):
        doc[TEXT_MATCHED_FIELD] = text_only
    # MongoDB keeps milliseconds: the copy sent to Elasticsearch must equal what a read (or a reindex)
    # of the stored document gives.
    for name in ("published_at", "fetched_at"):
        doc[name] = truncate_to_ms(doc[name])
    return doc


def merge_pipeline(event: VideoEvent, now: datetime, text_matches: Set[str] = frozenset()) -> list[dict[str, Any]]:
    """An update pipeline that merges one snapshot into the stored document atomically, with the
    configured queries its text matches (``text_matches``, attribution)."""
    snapshot = _snapshot(event)
    found = {"$literal": _queries(event)}
    matched = {"$literal": sorted(text_matches)}
    stored = {"$ifNull": ["$queries", []]}
    is_newer = {
        "$or": [
            {"$eq": [{"$type": "$fetched_at"}, "missing"]},
            {"$gte": [{"$literal": event.fetched_at}, "$fetched_at"]},
        ]
    }
    # Only a date compares: a missing or null removed_at leaves nothing to drop.
    found_again = {
        "$and": [
            {"$eq": [{"$type": f"${REMOVED_AT_FIELD}"}, "date"]},
            {"$gt": [{"$literal": truncate_to_ms(event.fetched_at)}, f"${REMOVED_AT_FIELD}"]},
        ]
    }
    fields: dict[str, Any] = {}
    for name in SNAPSHOT_FIELDS:
        # $literal: stored text must never be read as an expression (a title may start with "$").
        value: Any = {"$literal": snapshot[name]}
        if name in _KEEP_WHEN_MISSING and snapshot[name] is None:
            value = {"$ifNull": [f"${name}", None]}
        fields[name] = {"$cond": [is_newer, value, f"${name}"]}
    return [
        {
            "$set": {
                **fields,
                "video_id": {"$literal": event.video_id},
                "queries": {"$setUnion": [stored, found, matched]},
                # Search found it for this query: no longer matched by text alone. A text match of a
                # query the video holds already (found by search) stays a search find.
                TEXT_MATCHED_FIELD: {
                    "$setUnion": [
                        {"$setDifference": [{"$ifNull": [f"${TEXT_MATCHED_FIELD}", []]}, found]},
                        {"$setDifference": [matched, {"$setUnion": [stored, found]}]},
                    ]
                },
                # Whole entries compare equal only with the same keys in the same order, which
                # as_document and FOUND_BY_OF_QUERIES guarantee; $setUnion then keeps one of each.
                "found_by": {
                    "$setUnion": [
                        {"$ifNull": ["$found_by", []]},
                        FOUND_BY_OF_QUERIES,
                        {"$literal": [event.found_by.as_document()]},
                    ]
                },
                "first_seen_at": {"$ifNull": ["$first_seen_at", {"$literal": now}]},
                # Found again after the removal: no longer removed. $$REMOVE leaves the field absent
                # (as on a video never removed), not null.
                REMOVED_AT_FIELD: {"$cond": [found_again, "$$REMOVE", f"${REMOVED_AT_FIELD}"]},
                "updated_at": {"$literal": now},
                "rev": {"$add": [{"$ifNull": ["$rev", 0]}, 1]},
            }
        }
    ]


def attribution_pipeline(queries: list[str], now: datetime) -> list[dict[str, Any]]:
    """An update pipeline adding ``queries`` (matched by text) to a video: to ``queries``, and to
    ``text_matched_queries`` those no search found it for (not in ``queries`` yet)."""
    matched = {"$literal": sorted(queries)}
    stored = {"$ifNull": ["$queries", []]}
    return [
        {
            "$set": {
                "queries": {"$setUnion": [stored, matched]},
                TEXT_MATCHED_FIELD: {
                    "$setUnion": [{"$ifNull": [f"${TEXT_MATCHED_FIELD}", []]}, {"$setDifference": [matched, stored]}]
                },
                "updated_at": {"$literal": now},
                "rev": {"$add": [{"$ifNull": ["$rev", 0]}, 1]},
            }
        }
    ]
