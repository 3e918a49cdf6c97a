"""The public shape of a video, built from a stored document (Elasticsearch _source or MongoDB)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.common.events import video_url
from services.common.timefmt import format_epoch_ms, parse_rfc3339, to_epoch_ms

# The fields a public video is built from.
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
)
_THUMBNAIL_NAMES = ("default", "medium", "high")


def published_ms(doc: dict[str, Any]) -> int:
    published = doc["published_at"]
    if isinstance(published, str):
        published = parse_rfc3339(published)
    assert isinstance(published, datetime)
    return to_epoch_ms(published)


def public_video(doc: dict[str, Any], published_at_ms: int | None = None) -> dict[str, Any]:
    """``published_at_ms`` saves parsing the stored date when the caller has it (a sort value)."""
    video_id = doc["video_id"]
    stored_thumbnails = doc.get("thumbnails") or {}
    thumbnails = {}
    for name in _THUMBNAIL_NAMES:
        thumb = stored_thumbnails.get(name)
        if isinstance(thumb, dict):
            thumbnails[name] = {"url": thumb.get("url"), "width": thumb.get("width"), "height": thumb.get("height")}
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
    }
