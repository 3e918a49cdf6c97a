"""Turns search.list items into video events."""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

from services.common.events import VideoEvent
from services.common.timefmt import parse_rfc3339


def event_from_search_item(item: dict[str, Any], query: str, fetched_at: datetime) -> VideoEvent:
    """Build the event for one search result; ValueError when the item is not a usable video.

    search.list HTML-escapes snippet text (``&#39;``, ``&amp;``); it is unescaped exactly once
    here, so a title that really contains ``&amp;`` (sent as ``&amp;amp;``) keeps it.
    """
    ident = item.get("id")
    snippet = item.get("snippet")
    if not isinstance(ident, dict) or not isinstance(snippet, dict):
        raise ValueError("search item without id or snippet")
    video_id = ident.get("videoId")
    if not isinstance(video_id, str):
        raise ValueError("search item is not a video")
    published = snippet.get("publishedAt")
    if not isinstance(published, str):
        raise ValueError(f"video {video_id} has no publishedAt")
    return VideoEvent(
        video_id=video_id,
        query=query,
        title=html.unescape(str(snippet.get("title", ""))),
        description=html.unescape(str(snippet.get("description", ""))),
        published_at=parse_rfc3339(published),
        channel_id=str(snippet.get("channelId", "")),
        channel_title=html.unescape(str(snippet.get("channelTitle", ""))),
        thumbnails=snippet.get("thumbnails") or {},
        live_broadcast_content=snippet.get("liveBroadcastContent", "none"),
        fetched_at=fetched_at,
    )
