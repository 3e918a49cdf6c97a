"""Turns search.list items into video events, and adds what videos.list knows about them."""

from __future__ import annotations

import html
import re
from datetime import datetime
from typing import Any

from services.common.events import FoundBy, VideoEvent
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
    # Text of another type is a broken answer, never coerced: str() of a number or an object
    # would publish garbage ("12345", "{'nested': True}") as a title or a channel id.
    # (A missing channelId stays "", which the event refuses.)
    text = {name: snippet.get(name, "") for name in ("title", "description", "channelId", "channelTitle")}
    wrong = [name for name, value in text.items() if not isinstance(value, str)]
    if wrong:
        raise ValueError(f"video {video_id}: {', '.join(wrong)} not text")
    title, description, channel_id, channel_title = text.values()
    return VideoEvent(
        video_id=video_id,
        found_by=FoundBy.search(query),
        title=html.unescape(title),
        description=html.unescape(description),
        published_at=parse_rfc3339(published),
        channel_id=channel_id,
        channel_title=html.unescape(channel_title),
        thumbnails=snippet.get("thumbnails") or {},
        live_broadcast_content=snippet.get("liveBroadcastContent", "none"),
        fetched_at=fetched_at,
    )


MAX_DESCRIPTION_CHARS = 10_000  # what VideoEvent.description holds
_DURATION = re.compile(r"^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")


def parse_duration(text: str) -> int | None:
    """ISO 8601 duration as videos.list writes it (``PT12M41S``, ``P1DT2H``) in seconds."""
    match = _DURATION.match(text)
    if not match or text in ("P", "PT"):
        return None
    weeks, days, hours, minutes, seconds = (int(part) if part else 0 for part in match.groups())
    return (((weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60 + seconds


def _count(statistics: dict[str, Any], name: str) -> int | None:
    value = statistics.get(name)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def enrich_event(event: VideoEvent, resource: dict[str, Any]) -> VideoEvent:
    """The event with what videos.list adds: full raw description, tags, duration and counts.

    videos.list text is not HTML-escaped, so it is taken as is. A running or upcoming broadcast
    reports ``P0D``: its duration is unknown, not zero. Hidden like counts are absent.
    """
    snippet = resource.get("snippet") if isinstance(resource.get("snippet"), dict) else {}
    details = resource.get("contentDetails") if isinstance(resource.get("contentDetails"), dict) else {}
    statistics = resource.get("statistics") if isinstance(resource.get("statistics"), dict) else {}
    assert isinstance(snippet, dict) and isinstance(details, dict) and isinstance(statistics, dict)
    update: dict[str, Any] = {}
    description = snippet.get("description")
    # YouTube caps descriptions at 5,000 bytes: a longer one is a broken answer, not text to cut.
    if isinstance(description, str) and len(description) <= MAX_DESCRIPTION_CHARS:
        update["description"] = description
    tags = snippet.get("tags")
    if isinstance(tags, list):
        update["tags"] = [str(tag) for tag in tags]
    duration = parse_duration(str(details.get("duration", "")))
    if duration is not None and not (duration == 0 and event.live_broadcast_content != "none"):
        update["duration_seconds"] = duration
    update["view_count"] = _count(statistics, "viewCount")
    update["like_count"] = _count(statistics, "likeCount")
    return VideoEvent.model_validate({**event.model_dump(), **{k: v for k, v in update.items() if v is not None}})
