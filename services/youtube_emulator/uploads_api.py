"""channels.list and playlistItems.list: a channel's uploads playlist and its pages.

As in api.py these run after the key was accepted and the call charged (1 unit each, whatever
``maxResults``), so they only raise request errors. Supported: channels.list by ``id`` (up to 50,
unknown ids simply absent) with parts ``id``, ``snippet``, ``contentDetails``; playlistItems.list by
``playlistId`` with parts ``id``, ``snippet``, ``contentDetails``, ``status``, ``maxResults`` 0-50
(default 5) and ``pageToken``. Only uploads playlists (``UU`` + the channel id's tail) exist here.
"""

from __future__ import annotations

from typing import Any

from services.youtube_emulator import errors
from services.youtube_emulator.api import MAX_IDS, Params, max_results, parse_parts
from services.youtube_emulator.render import channel_resource, channels_response, playlist_item, playlist_items_response
from services.youtube_emulator.state import EmulatorState
from services.youtube_emulator.tokens import PageToken, decode_playlist_token, encode_playlist_token

CHANNEL_PARTS = ("contentDetails", "id", "snippet")
PLAYLIST_ITEM_PARTS = ("contentDetails", "id", "snippet", "status")


def channels(state: EmulatorState, params: Params, now: float) -> dict[str, Any]:
    parts = parse_parts(params, CHANNEL_PARTS)
    raw_ids = params.get("id")
    if raw_ids is None:
        raise errors.no_filter("id")
    ids = list(dict.fromkeys(i.strip() for i in raw_ids.split(",") if i.strip()))
    if len(ids) > MAX_IDS:
        raise errors.too_many_ids()
    found = (state.world.uploads.channel(cid) for cid in ids)
    # An unknown channel id is left out; the answer is still a 200 (reference §2).
    return channels_response([channel_resource(c, parts) for c in found if c is not None])


def playlist_items(state: EmulatorState, params: Params, now: float) -> dict[str, Any]:
    parts = parse_parts(params, PLAYLIST_ITEM_PARTS)
    playlist_id = params.get("playlistId")
    if not playlist_id:
        raise errors.no_filter("playlistId", "playlistId")
    limit = max_results(params)
    token = _page_token(params)
    owner = state.world.uploads.by_playlist(playlist_id.strip())
    if owner is None:
        raise errors.playlist_not_found()
    start = 0 if token is None else (max(0, token.offset - limit) if token.previous else token.offset)
    page = state.world.uploads.page(owner.channel_id, now, start, limit)
    following = start + limit
    items = [playlist_item(video, owner, start + i, now, parts) for i, video in enumerate(page.videos)]
    return playlist_items_response(
        items,
        total=page.total,
        per_page=limit,
        next_token=encode_playlist_token(PageToken(following)) if limit > 0 and following < page.total else None,
        prev_token=encode_playlist_token(PageToken(start, previous=True)) if start > 0 else None,
    )


def _page_token(params: Params) -> PageToken | None:
    raw = params.get("pageToken")
    if not raw:
        return None
    try:
        return decode_playlist_token(raw)
    except ValueError:
        raise errors.invalid_page_token() from None
