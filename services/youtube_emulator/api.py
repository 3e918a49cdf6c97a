"""search.list and videos.list: parameter checks in YouTube's order of complaints, then the answer.

These run after the key has been accepted and the call charged (every call spends, even one
rejected here), so they only ever raise request errors.
"""

from __future__ import annotations

import re
from typing import Any, cast

from multidict import MultiMapping

from services.youtube_emulator import errors
from services.youtube_emulator.render import search_item, search_response, video_resource, videos_response
from services.youtube_emulator.state import EmulatorState
from services.youtube_emulator.timestamps import parse_rfc3339
from services.youtube_emulator.tokens import PageToken, decode_page_token
from services.youtube_emulator.video import EventType, Video
from services.youtube_emulator.world import Order, SearchFilter

SEARCH_PARTS = ("id", "snippet")
VIDEO_PARTS = ("contentDetails", "id", "liveStreamingDetails", "player", "snippet", "statistics", "status")
ORDERS = ("date", "rating", "relevance", "title", "videoCount", "viewCount")
TYPES = ("channel", "playlist", "video")
EVENT_TYPES = ("completed", "live", "upcoming")
MAX_RESULTS = 50
MAX_IDS = 50
_VIDEO_FILTERS = (
    "videoCaption",
    "videoCategoryId",
    "videoDefinition",
    "videoDimension",
    "videoDuration",
    "videoEmbeddable",
    "videoLicense",
    "videoPaidProductPlacement",
    "videoSyndicated",
    "videoType",
)
_REGION = re.compile(r"^[A-Za-z]{2}$")

Params = MultiMapping[str]


def parse_parts(params: Params, allowed: tuple[str, ...]) -> list[str]:
    raw = params.get("part", "")
    parts = [part.strip() for part in raw.split(",") if part.strip()]
    if not parts:
        raise errors.missing_parameter("part")
    for part in parts:
        if part not in allowed:
            raise errors.unknown_part(part)
    return parts


def _timestamp(params: Params, name: str, field: str) -> float | None:
    raw = params.get(name)
    if raw is None:
        return None
    value = parse_rfc3339(raw)
    if value is None:
        raise errors.invalid_timestamp(field)
    return value


def max_results(params: Params) -> int:
    raw = params.get("maxResults")
    if raw is None:
        return 5
    if not re.fullmatch(r"[+-]?\d+", raw.strip()):
        raise errors.invalid_unsigned("max_results", raw)
    value = int(raw)
    if not 0 <= value <= MAX_RESULTS:
        raise errors.out_of_range("maxResults", raw, 0, MAX_RESULTS)
    return value


def _search_kinds(params: Params) -> tuple[str, list[str], str | None]:
    """The order, resource types and event type asked for, refused as YouTube refuses them."""
    order = params.get("order", "relevance")
    if order not in ORDERS:
        raise errors.invalid_choice("order", order, ORDERS)
    types = [t.strip() for t in params.get("type", ",".join(TYPES)).split(",") if t.strip()]
    for kind in types:
        if kind not in TYPES:
            raise errors.invalid_choice("type", kind, TYPES)
    event_type = params.get("eventType")
    if event_type is not None and event_type not in EVENT_TYPES:
        raise errors.invalid_choice("eventType", event_type, EVENT_TYPES)
    if (event_type is not None or any(f in params for f in _VIDEO_FILTERS)) and types != ["video"]:
        raise errors.invalid_search_filter()
    return order, types, event_type


def _page_token(params: Params) -> PageToken | None:
    raw_token = params.get("pageToken")
    if not raw_token:
        return None
    try:
        return decode_page_token(raw_token)
    except ValueError:
        raise errors.invalid_page_token() from None


def _page_start(state: EmulatorState, token: PageToken | None, limit: int) -> int:
    if token is None:
        return 0
    if token.previous:
        return max(0, token.offset - limit)
    if token.offset > 0 and state.quirks.random() < state.behaviour.duplicate_rate:
        return token.offset - 1  # quirk: this page repeats the previous page's last item
    return token.offset


def search(state: EmulatorState, params: Params, now: float) -> dict[str, Any]:
    parts = parse_parts(params, SEARCH_PARTS)
    order, types, event_type = _search_kinds(params)
    published_after = _timestamp(params, "publishedAfter", "published_after")
    published_before = _timestamp(params, "publishedBefore", "published_before")
    limit = max_results(params)
    token = _page_token(params)
    behaviour = state.behaviour
    start = _page_start(state, token, limit)

    total = 0
    found: list[Video] = []
    if "video" in types:
        flt = SearchFilter(
            query=params.get("q"),
            published_after=published_after,
            published_before=published_before,
            channel_id=params.get("channelId") or None,
            event_type=cast(EventType | None, event_type),
        )
        found, total = state.world.search(
            flt, now, order=cast(Order, order), offset=start, limit=limit, cap=behaviour.result_cap
        )

    following = start + limit
    # A token may point at the cap itself (that page is empty and ends the walk), never past it.
    pageable = limit > 0 and following <= behaviour.result_cap
    has_next = pageable and following < total
    if pageable and not has_next and total > 0 and start - total < limit:
        # Quirk, on the last page with items and the first empty one after it: a token to an empty page.
        has_next = state.quirks.random() < behaviour.empty_last_page_rate
    region = params.get("regionCode", "")
    return search_response(
        [search_item(video, now, parts) for video in found],
        total=total,
        region_code=region.upper() if _REGION.match(region) else behaviour.region_code,
        next_token=PageToken(following).encode() if has_next else None,
        prev_token=PageToken(start, previous=True).encode() if start > 0 else None,
    )


def videos(state: EmulatorState, params: Params, now: float) -> dict[str, Any]:
    parts = parse_parts(params, VIDEO_PARTS)
    raw_ids = params.get("id")
    if raw_ids is None:
        raise errors.no_filter()
    ids = list(dict.fromkeys(i.strip() for i in raw_ids.split(",") if i.strip()))
    if len(ids) > MAX_IDS:
        raise errors.too_many_ids()
    matches = (state.world.get(video_id, now) for video_id in ids)
    # Unknown, private or not-yet-published ids are silently left out, as on YouTube.
    return videos_response([video_resource(v, now, parts) for v in matches if v is not None])
