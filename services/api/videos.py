"""The public shape of a video, built from a stored document."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.common.events import video_url
from services.common.timefmt import format_rfc3339, parse_rfc3339


def public_video(doc: dict[str, Any]) -> dict[str, Any]:
    published = doc.get("published_at")
    if isinstance(published, str):
        published = parse_rfc3339(published)
    assert isinstance(published, datetime)
    return {
        "video_id": doc["video_id"],
        "title": doc.get("title", ""),
        "description": doc.get("description", ""),
        "published_at": format_rfc3339(published),
        "channel_id": doc.get("channel_id", ""),
        "channel_title": doc.get("channel_title", ""),
        "thumbnails": {
            name: {"url": t.get("url"), "width": t.get("width"), "height": t.get("height")}
            for name, t in (doc.get("thumbnails") or {}).items()
            if name in ("default", "medium", "high") and isinstance(t, dict)
        },
        "url": video_url(doc["video_id"]),
        "duration_seconds": doc.get("duration_seconds"),
        "view_count": doc.get("view_count"),
    }
