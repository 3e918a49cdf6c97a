"""Response bodies in YouTube's shapes: search.list and videos.list answers, item by item."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.youtube_emulator.content import html_escape, search_snippet
from services.youtube_emulator.ids import etag
from services.youtube_emulator.timestamps import format_timestamp
from services.youtube_emulator.world import Video

_SIZES = (
    ("default", "default", 120, 90),
    ("medium", "mqdefault", 320, 180),
    ("high", "hqdefault", 480, 360),
)
_EXTRA_SIZES = (("standard", "sddefault", 640, 480), ("maxres", "maxresdefault", 1280, 720))


def thumbnails(video: Video, now: float, *, extended: bool) -> dict[str, dict[str, Any]]:
    # Upcoming and live broadcasts get the "_live" stills, as on YouTube.
    suffix = "_live" if video.live_state(now) != "none" else ""
    sizes = list(_SIZES)
    if extended:
        sizes.append(_EXTRA_SIZES[0])
        if video.has_maxres:
            sizes.append(_EXTRA_SIZES[1])
    return {
        name: {"url": f"https://i.ytimg.com/vi/{video.video_id}/{stem}{suffix}.jpg", "width": w, "height": h}
        for name, stem, w, h in sizes
    }


def search_item(video: Video, now: float, parts: Sequence[str]) -> dict[str, Any]:
    state = video.live_state(now)
    item: dict[str, Any] = {
        "kind": "youtube#searchResult",
        "etag": etag("search-item", video.video_id, state, video.title, video.description),
        "id": {"kind": "youtube#video", "videoId": video.video_id},
    }
    if "snippet" in parts:
        published = format_timestamp(video.published_at)
        item["snippet"] = {
            "publishedAt": published,
            "channelId": video.channel.channel_id,
            "title": html_escape(video.title),
            "description": html_escape(search_snippet(video.description)),
            "thumbnails": thumbnails(video, now, extended=False),
            "channelTitle": html_escape(video.channel.title),
            "liveBroadcastContent": state,
            "publishTime": published,
        }
    return item


def search_response(
    items: list[dict[str, Any]],
    *,
    total: int,
    region_code: str,
    next_token: str | None,
    prev_token: str | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "youtube#searchListResponse",
        "etag": etag("search", total, next_token, prev_token, *(item["etag"] for item in items)),
    }
    if next_token is not None:
        body["nextPageToken"] = next_token
    if prev_token is not None:
        body["prevPageToken"] = prev_token
    body["regionCode"] = region_code
    # YouTube's totalResults is an estimate capped at 1,000,000; here it is exact up to that cap.
    body["pageInfo"] = {"totalResults": min(total, 1_000_000), "resultsPerPage": len(items)}
    body["items"] = items
    return body


def video_resource(video: Video, now: float, parts: Sequence[str]) -> dict[str, Any]:
    state = video.live_state(now)
    stats = video.statistics(now)
    resource: dict[str, Any] = {
        "kind": "youtube#video",
        "etag": etag("video", video.video_id, state, *parts, *stats.values()),
        "id": video.video_id,
    }
    if "snippet" in parts:
        snippet: dict[str, Any] = {
            "publishedAt": format_timestamp(video.published_at),
            "channelId": video.channel.channel_id,
            "title": video.title,
            "description": video.description,
            "thumbnails": thumbnails(video, now, extended=True),
            "channelTitle": video.channel.title,
        }
        if video.tags:
            snippet["tags"] = list(video.tags)
        snippet["categoryId"] = video.category_id
        snippet["liveBroadcastContent"] = state
        if video.default_audio_language:
            snippet["defaultAudioLanguage"] = video.default_audio_language
        snippet["localized"] = {"title": video.title, "description": video.description}
        resource["snippet"] = snippet
    if "contentDetails" in parts:
        resource["contentDetails"] = {
            "duration": video.duration(now),
            "dimension": "2d",
            "definition": video.definition,
            "caption": "true" if video.caption else "false",
            "licensedContent": video.licensed,
            "contentRating": {},
            "projection": "rectangular",
        }
    if "status" in parts:
        resource["status"] = {
            "uploadStatus": "processed",
            "privacyStatus": "public",
            "license": "youtube",
            "embeddable": True,
            "publicStatsViewable": True,
            "madeForKids": False,
        }
    if "statistics" in parts:
        resource["statistics"] = stats
    if "player" in parts:
        resource["player"] = {
            "embedHtml": (
                f'<iframe width="480" height="270" src="//www.youtube.com/embed/{video.video_id}" '
                'frameborder="0" allow="accelerometer; autoplay; clipboard-write; encrypted-media; gyroscope; '
                'picture-in-picture; web-share" referrerpolicy="strict-origin-when-cross-origin" '
                "allowfullscreen></iframe>"
            )
        }
    if "liveStreamingDetails" in parts and video.broadcast is not None:
        details = {"scheduledStartTime": format_timestamp(video.broadcast.start)}
        if now >= video.broadcast.start:
            details["actualStartTime"] = format_timestamp(video.broadcast.start)
        if now >= video.broadcast.end:
            details["actualEndTime"] = format_timestamp(video.broadcast.end)
        elif state == "live":
            details["concurrentViewers"] = str(max(1, video.views(now) // 20))
        resource["liveStreamingDetails"] = details
    return resource


def videos_response(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "kind": "youtube#videoListResponse",
        "etag": etag("videos", *(r["etag"] for r in resources)),
        "items": resources,
        "pageInfo": {"totalResults": len(resources), "resultsPerPage": len(resources)},
    }
