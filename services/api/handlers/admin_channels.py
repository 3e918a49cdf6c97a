"""/api/v1/admin/channels: followed channels, explicit and auto-followed, and the operator's flags on them.

The list joins three documents: the operator's entries (``sources``, services/common/sources.py),
auto-follow's choice (``fetcher_follows``) and how the fetcher reads each (``fetcher_channels``),
so every channel shows whether it is read and why. Channels named in FOLLOW_CHANNELS are the
seeded explicit entries.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from services.api.admin_auth import ADMIN_ACTOR
from services.api.admin_body import read_body, read_merge_patch
from services.api.admin_models import ChannelCreate, ChannelPatch, ChannelPathParams
from services.api.appkeys import SOURCES_ADMIN, STORES
from services.api.params import NoParams
from services.api.responses import JSON, dumps, json_response
from services.common.fetcher_state import (
    CHANNEL_STATE_COLLECTION,
    FOLLOWS_COLLECTION,
    FOLLOWS_ID,
    AutoFollowDoc,
    ChannelStateDoc,
    FollowsDoc,
    as_utc,
    freshness_digest,
)
from services.common.poll_plan import DAY_SECONDS
from services.common.sources import ChannelSource
from services.common.timefmt import format_rfc3339, utc_now


def _time(moment: Any) -> str | None:
    return None if moment is None else format_rfc3339(as_utc(moment))


def _answer(
    channel_id: str, entry: ChannelSource | None, auto: AutoFollowDoc | None, state: ChannelStateDoc | None
) -> dict[str, Any]:
    flags = entry or ChannelSource(channel_id=channel_id, created_at=utc_now(), updated_at=utc_now())
    chosen = auto is not None and not flags.excluded
    read = (flags.followed or flags.pinned or chosen) and not (flags.paused or flags.excluded)
    interval = state.interval_seconds if state else None
    stats = state.poll_stats.stats() if state else None
    p50 = p99 = None
    if state is not None:
        _, (p50, p99) = freshness_digest(state.freshness).window_percentiles(utc_now(), (0.5, 0.99))
    next_read = None
    if read and state is not None and state.last_read_at is not None and interval is not None:
        next_read = _time(as_utc(state.last_read_at) + timedelta(seconds=interval))
    return {
        "channel_id": channel_id,
        "followed": flags.followed,
        "pinned": flags.pinned,
        "excluded": flags.excluded,
        "paused": flags.paused,
        "auto": chosen,
        "read": read,
        "rank": auto.rank if auto else None,
        "count": auto.count if auto else None,
        "status": state.status if state else None,
        "interval_seconds": interval,
        "last_read_at": _time(state.last_read_at) if state else None,
        "next_read_at": next_read,
        "videos_published": state.videos_published if state else None,
        "units_per_day": (
            round(DAY_SECONDS * (1 / interval + stats.extra_calls_per_second), 2) if interval and stats else None
        ),
        "freshness_p50_seconds": None if p50 is None else round(p50, 1),
        "freshness_p99_seconds": None if p99 is None else round(p99, 1),
        "created_at": _time(entry.created_at) if entry else None,
        "updated_at": _time(entry.updated_at) if entry else None,
    }


async def _answers(request: web.Request, entries: list[ChannelSource], only: str | None = None) -> list[dict[str, Any]]:
    db = request.app[STORES].mongo.database
    raw_follows = await db[FOLLOWS_COLLECTION].find_one({"_id": FOLLOWS_ID})
    try:
        follows = FollowsDoc.model_validate(raw_follows) if raw_follows else None
    except ValidationError:
        follows = None
    autos = {a.channel_id: a for a in follows.auto} if follows else {}
    by_id = {e.channel_id: e for e in entries}
    ids = [only] if only is not None else list(dict.fromkeys([*by_id, *autos]))
    states: dict[str, ChannelStateDoc] = {}
    async for raw in db[CHANNEL_STATE_COLLECTION].find({"_id": {"$in": ids}}, {"known_videos": 0}):
        try:
            state = ChannelStateDoc.model_validate(raw)
        except ValidationError:
            continue
        states[state.channel_id] = state
    return [_answer(c, by_id.get(c), autos.get(c), states.get(c)) for c in ids]


async def list_admin_channels(request: web.Request, params: NoParams) -> web.Response:
    admin = request.app[SOURCES_ADMIN]
    items = await _answers(request, await admin.channels())
    return json_response({"items": items, "managed_by_environment": await admin.managed_by_environment()})


async def _one(request: web.Request, entry: ChannelSource, status: int = 200) -> web.Response:
    [answer] = await _answers(request, [entry], only=entry.channel_id)
    return web.Response(status=status, body=dumps(answer), content_type=JSON)


async def follow_admin_channel(request: web.Request, params: NoParams) -> web.Response:
    body = await read_body(request, ChannelCreate)
    entry, created = await request.app[SOURCES_ADMIN].follow_channel(request[ADMIN_ACTOR], body.channel_id, utc_now())
    return await _one(request, entry, status=201 if created else 200)


async def patch_admin_channel(request: web.Request, params: ChannelPathParams) -> web.Response:
    patch = await read_merge_patch(request, ChannelPatch)
    entry = await request.app[SOURCES_ADMIN].patch_channel(request[ADMIN_ACTOR], params.channel_id, patch, utc_now())
    return await _one(request, entry)


async def remove_admin_channel(request: web.Request, params: ChannelPathParams) -> web.Response:
    await request.app[SOURCES_ADMIN].remove_channel(request[ADMIN_ACTOR], params.channel_id, utc_now())
    return web.Response(status=204)
