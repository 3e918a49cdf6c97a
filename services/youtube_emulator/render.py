"""Response bodies in YouTube's shapes: search.list, videos.list, channels.list, playlistItems.list."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from services.youtube_emulator.content import html_escape, search_snippet
from services.youtube_emulator.ids import digest, etag
from services.youtube_emulator.timestamps import format_timestamp
from services.youtube_emulator.video import Channel, Video

# What a playlist shows in place of a video other viewers may not see (reference §2, REPORTS).
_HIDDEN_ITEMS = {
    "private": ("Private video", "This video is private."),
    "deleted": ("Deleted video", "This video is unavailable."),
}
_CHANNEL_EPOCH = 1_262_304_000  # 2010-01-01: generated channels were created in the 2010s

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


def channel_resource(channel: Channel, parts: Sequence[str]) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "kind": "youtube#channel",
        "etag": etag("channel", channel.channel_id, channel.title, *parts),
        "id": channel.channel_id,
    }
    if "snippet" in parts:
        created = _CHANNEL_EPOCH + int.from_bytes(digest("created", channel.channel_id, size=4), "big") % 315_360_000
        handle = "".join(ch for ch in channel.title.casefold() if ch.isalnum())
        description = f"New videos from {channel.title} every week."
        image = "https://yt3.ggpht.com/" + channel.channel_id[2:]
        resource["snippet"] = {
            "title": channel.title,
            "description": description,
            "customUrl": f"@{handle or channel.channel_id.casefold()}",
            "publishedAt": format_timestamp(created),
            "thumbnails": {
                name: {"url": f"{image}=s{size}-c-k-c0x00ffffff-no-rj", "width": size, "height": size}
                for name, size in (("default", 88), ("medium", 240), ("high", 800))
            },
            "localized": {"title": channel.title, "description": description},
        }
    if "contentDetails" in parts:
        resource["contentDetails"] = {"relatedPlaylists": {"likes": "", "uploads": channel.uploads_playlist_id}}
    return resource


def channels_response(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "kind": "youtube#channelListResponse",
        "etag": etag("channels", *(r["etag"] for r in resources)),
        "pageInfo": {"totalResults": len(resources), "resultsPerPage": len(resources)},
        "items": resources,
    }


def playlist_item(video: Video, owner: Channel, position: int, now: float, parts: Sequence[str]) -> dict[str, Any]:
    """An uploads-playlist item; a private, deleted or not-yet-published video shows as a hidden one."""
    playlist_id = owner.uploads_playlist_id
    public = video.is_public(now)
    hidden = None if public else ("deleted" if video.privacy == "deleted" else "private")
    item: dict[str, Any] = {
        "kind": "youtube#playlistItem",
        "etag": etag("playlist-item", playlist_id, video.video_id, position, hidden, video.title),
        "id": base64.b64encode(f"{playlist_id}.{video.video_id}".encode()).decode("ascii"),
    }
    if "snippet" in parts:
        title, description = _HIDDEN_ITEMS[hidden] if hidden else (video.title, video.description)
        snippet: dict[str, Any] = {
            "publishedAt": format_timestamp(video.uploaded_at),
            "channelId": owner.channel_id,
            "title": title,
            "description": description,
            "thumbnails": {} if hidden else thumbnails(video, now, extended=True),
            "channelTitle": owner.title,
            "playlistId": playlist_id,
            "position": position,
            "resourceId": {"kind": "youtube#video", "videoId": video.video_id},
        }
        if hidden is None:
            snippet["videoOwnerChannelTitle"] = video.channel.title
            snippet["videoOwnerChannelId"] = video.channel.channel_id
        item["snippet"] = snippet
    if "contentDetails" in parts:
        details = {"videoId": video.video_id}
        if hidden is None:
            details["videoPublishedAt"] = format_timestamp(video.published_at)
        item["contentDetails"] = details
    if "status" in parts:
        status = {None: "public", "private": "private", "deleted": "privacyStatusUnspecified"}[hidden]
        item["status"] = {"privacyStatus": status}
    return item


def playlist_items_response(
    items: list[dict[str, Any]], *, total: int, per_page: int, next_token: str | None, prev_token: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "youtube#playlistItemListResponse",
        "etag": etag("playlist-items", total, next_token, prev_token, *(item["etag"] for item in items)),
    }
    if next_token is not None:
        body["nextPageToken"] = next_token
    if prev_token is not None:
        body["prevPageToken"] = prev_token
    # playlistItems.list reports the page size asked for, not the items on the page (UNCONFIRMED).
    body["pageInfo"] = {"totalResults": total, "resultsPerPage": per_page}
    body["items"] = items
    return body
