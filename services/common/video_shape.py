"""The public shape of a video, built from a stored document (Elasticsearch _source or MongoDB)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, get_args

from services.common.catalogue import REMOVED_AT_FIELD
from services.common.events import ChannelVia, video_url
from services.common.timefmt import format_epoch_ms, parse_rfc3339, to_epoch_ms

# The fields a public video is built from (queries: found_by of a video stored before it existed).
VIDEO_SOURCE_FIELDS = (
    "video_id",
    "title",
    "description",
    "published_at",
    "channel_id",
    "channel_title",
    "thumbnails",
    "duration_seconds",
    "view_count",
    "found_by",
    "queries",
    REMOVED_AT_FIELD,
)
_THUMBNAIL_NAMES = ("default", "medium", "high")
_CHANNEL_VIAS = get_args(ChannelVia)


def published_ms(doc: dict[str, Any]) -> int:
    return _stored_time_ms(doc["published_at"])


def _stored_time_ms(stored: object) -> int:
    """A stored time (MongoDB's datetime, Elasticsearch's RFC 3339 string) as epoch milliseconds."""
    if isinstance(stored, str):
        stored = parse_rfc3339(stored)
    assert isinstance(stored, datetime)
    return to_epoch_ms(stored)


def public_found_by(doc: dict[str, Any]) -> list[dict[str, str]]:
    """How the video was found, each way once: the stored entries, in the public keys of their source.

    A document stored before found_by existed has only the queries whose search found it; those are
    its finds then (the reindex writes the same entries into it).
    """
    stored = doc.get("found_by")
    if not stored:
        return [{"source": "search", "query": query} for query in doc.get("queries") or [] if isinstance(query, str)]
    entries: list[dict[str, str]] = []
    for entry in stored:
        if not isinstance(entry, dict):
            continue
        if entry.get("source") == "search" and isinstance(entry.get("query"), str):
            shaped = {"source": "search", "query": entry["query"]}
        elif (
            entry.get("source") == "channel"
            and isinstance(entry.get("channel_id"), str)
            and entry.get("via") in _CHANNEL_VIAS
        ):
            shaped = {"source": "channel", "channel_id": entry["channel_id"], "via": entry["via"]}
        else:
            continue
        if shaped not in entries:
            entries.append(shaped)
    return entries


def public_matched(doc: dict[str, Any], found_by: list[dict[str, str]]) -> dict[str, str]:
    """The configured queries the video belongs to, each ``search`` (its search found the video) or
    ``text`` (a followed channel's video whose text matches it, not found by its search yet).

    Read from ``queries`` and the search entries of ``found_by`` alone, which both stores hold the
    same way (the indexer's ``text_matched_queries`` lists the same text matches, in MongoDB only).
    """
    searched = {entry["query"] for entry in found_by if entry["source"] == "search"}
    queries = [query for query in doc.get("queries") or [] if isinstance(query, str)]
    return {query: "search" if query in searched else "text" for query in sorted(set(queries))}


def public_video(doc: dict[str, Any], published_at_ms: int | None = None) -> dict[str, Any]:
    """``published_at_ms`` saves parsing the stored date when the caller has it (a sort value)."""
    video_id = doc["video_id"]
    stored_thumbnails = doc.get("thumbnails") or {}
    thumbnails = {}
    for name in _THUMBNAIL_NAMES:
        thumb = stored_thumbnails.get(name)
        if isinstance(thumb, dict):
            thumbnails[name] = {"url": thumb.get("url"), "width": thumb.get("width"), "height": thumb.get("height")}
    found_by = public_found_by(doc)
    removed_at = doc.get(REMOVED_AT_FIELD)
    return {
        "video_id": video_id,
        "title": doc.get("title") or "",
        "description": doc.get("description") or "",
        "published_at": format_epoch_ms(published_ms(doc) if published_at_ms is None else published_at_ms),
        "channel_id": doc.get("channel_id") or "",
        "channel_title": doc.get("channel_title") or "",
        "thumbnails": thumbnails,
        "url": video_url(video_id),
        "duration_seconds": doc.get("duration_seconds"),
        "view_count": doc.get("view_count"),
        "found_by": found_by,
        "matched": public_matched(doc, found_by),
        "removed_at": None if removed_at is None else format_epoch_ms(_stored_time_ms(removed_at)),
    }
