"""A channel's uploads playlist as YouTube answers it: the playlist id, pages of items, their videos.

channels.list (``part=contentDetails``) names the uploads playlist in
``items[0].contentDetails.relatedPlaylists.uploads``; an unknown channel answers 200 with no
items. playlistItems.list (``part=snippet,contentDetails``, 50 a page, 1 unit whatever the count)
lists the uploads newest upload first. An item's ``contentDetails.videoPublishedAt`` is when the
video was published (its ``published_at``); ``snippet.publishedAt`` is only when it was added to
the playlist. An item without ``videoPublishedAt``, titled ``Private video`` or ``Deleted video``,
or published in the future is not (yet) a public video: it is **pending**, skipped now and looked
at again by a later read. Playlist text is not HTML-escaped (unlike search's), so it is taken as is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.common.events import FoundBy, VideoEvent
from services.common.timefmt import parse_rfc3339

PAGE_SIZE = 50
# How playlists show videos other viewers may not see.
HIDDEN_TITLES = frozenset({"Private video", "Deleted video"})


class MalformedAnswerError(Exception):
    """A channels.list or playlistItems.list answer that is not what YouTube sends."""


def uploads_playlist_id(body: dict[str, Any]) -> str | None:
    """The channel's uploads playlist id, or None when channels.list does not know the channel."""
    items = body.get("items")
    if items is None or items == []:
        return None
    if not isinstance(items, list) or not isinstance(items[0], dict):
        raise MalformedAnswerError("channels.list answer without a list of channels")
    details = items[0].get("contentDetails")
    related = details.get("relatedPlaylists") if isinstance(details, dict) else None
    uploads = related.get("uploads") if isinstance(related, dict) else None
    if not isinstance(uploads, str) or not uploads:
        raise MalformedAnswerError("channels.list answer without contentDetails.relatedPlaylists.uploads")
    return uploads


def playlist_params(playlist_id: str, page_token: str | None) -> dict[str, str]:
    params = {"part": "snippet,contentDetails", "playlistId": playlist_id, "maxResults": str(PAGE_SIZE)}
    if page_token:
        params["pageToken"] = page_token
    return params


@dataclass
class PlaylistPage:
    """One page: the public videos on it, the ids of items not public (yet), and the next page's token."""

    videos: list[VideoEvent] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    unusable: int = 0  # items that are no video at all (broken answers), skipped
    # The upload time (snippet.publishedAt) of the page's last item: how far down the channel's history it reached.
    oldest_upload: datetime | None = None
    next_page_token: str | None = None


def read_page(body: dict[str, Any], channel_id: str, fetched_at: datetime) -> PlaylistPage:
    """Sort a playlistItems.list answer into public videos and pending items; raises MalformedAnswerError."""
    items = body.get("items")
    if not isinstance(items, list):
        raise MalformedAnswerError(f"playlistItems answer for {channel_id} without a list of items")
    token = body.get("nextPageToken")
    if token is not None and not isinstance(token, str):
        raise MalformedAnswerError(f"playlistItems answer for {channel_id} with a nextPageToken that is not text")
    page = PlaylistPage(next_page_token=token or None)
    for item in items:
        try:
            event = event_from_playlist_item(item, channel_id, fetched_at)
        except ValueError:
            page.unusable += 1
            continue
        uploaded = _upload_time(item)
        if uploaded is not None:
            page.oldest_upload = uploaded if page.oldest_upload is None else min(page.oldest_upload, uploaded)
        if isinstance(event, str):
            page.pending.append(event)
        else:
            page.videos.append(event)
    return page


def event_from_playlist_item(item: Any, channel_id: str, fetched_at: datetime) -> VideoEvent | str:
    """The item's video as an event, or its video id alone when it is not public (yet).

    ValueError when the item is not a video at all.
    """
    if not isinstance(item, dict):
        raise ValueError("playlist item is not an object")
    snippet, details = item.get("snippet"), item.get("contentDetails")
    if not isinstance(snippet, dict) or not isinstance(details, dict):
        raise ValueError("playlist item without snippet or contentDetails")
    video_id = details.get("videoId")
    if not isinstance(video_id, str):
        resource = snippet.get("resourceId")
        video_id = resource.get("videoId") if isinstance(resource, dict) else None
    if not isinstance(video_id, str):
        raise ValueError("playlist item without a video id")
    published_text = details.get("videoPublishedAt")
    title = snippet.get("title", "")
    if not isinstance(published_text, str) or title in HIDDEN_TITLES:
        return video_id
    published = parse_rfc3339(published_text)
    if published > fetched_at:
        return video_id  # scheduled: public only from then on
    text = {name: snippet.get(name, "") for name in ("title", "description")}
    owner = snippet.get("videoOwnerChannelId") or snippet.get("channelId") or channel_id
    owner_title = snippet.get("videoOwnerChannelTitle") or snippet.get("channelTitle") or ""
    if any(not isinstance(value, str) for value in (*text.values(), owner, owner_title)):
        raise ValueError(f"video {video_id}: text fields that are not text")
    try:
        return VideoEvent(
            video_id=video_id,
            found_by=FoundBy.channel(channel_id),
            title=text["title"],
            description=text["description"],
            published_at=published,
            channel_id=owner,
            channel_title=owner_title,
            thumbnails=snippet.get("thumbnails") or {},
            fetched_at=fetched_at,
        )
    except ValueError as exc:  # pydantic's ValidationError is one
        raise ValueError(f"video {video_id}: {str(exc)[:200]}") from None


def _upload_time(item: Any) -> datetime | None:
    snippet = item.get("snippet") if isinstance(item, dict) else None
    text = snippet.get("publishedAt") if isinstance(snippet, dict) else None
    if not isinstance(text, str):
        return None
    try:
        return parse_rfc3339(text)
    except ValueError:
        return None
