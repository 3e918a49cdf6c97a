"""Test-only controls under /admin/: reset, clock, injection, spend, call log, ground truth and knobs.

Admin calls never suffer faults, never spend quota and are not in the call log.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal, TypeVar

from aiohttp import web
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from services.youtube_emulator.calls import CallFilter, tally
from services.youtube_emulator.channels import zipf_weights
from services.youtube_emulator.quota import METHODS, next_reset, pacific_day
from services.youtube_emulator.state import STATE, EmulatorState, WorldOverrides
from services.youtube_emulator.timestamps import format_precise, format_timestamp, parse_rfc3339
from services.youtube_emulator.video import Video

BodyT = TypeVar("BodyT", bound=BaseModel)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ResetBody(WorldOverrides):
    now: str | None = None
    frozen: bool = False


class ClockBody(_Body):
    now: str | None = None
    advance_seconds: float | None = None
    frozen: bool | None = None


class InjectBody(_Body):
    title: str = Field(min_length=1)
    description: str = ""
    query: str | None = None
    channel: str | None = Field(default=None, validation_alias=AliasChoices("channel", "channelTitle"))
    channel_id: str | None = Field(default=None, validation_alias=AliasChoices("channel_id", "channelId"))
    published_at: str | None = Field(default=None, validation_alias=AliasChoices("published_at", "publishedAt"))
    visible_at: str | None = Field(default=None, validation_alias=AliasChoices("visible_at", "visibleAt"))
    uploaded_at: str | None = Field(default=None, validation_alias=AliasChoices("uploaded_at", "uploadedAt"))
    privacy: Literal["public", "private", "deleted"] = "public"
    video_id: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_-]{11}$", validation_alias=AliasChoices("video_id", "videoId")
    )


class _BadRequest(Exception):
    pass


def add_admin_routes(app: web.Application) -> None:
    app.router.add_post("/admin/reset", reset)
    app.router.add_get("/admin/clock", get_clock)
    app.router.add_post("/admin/clock", set_clock)
    app.router.add_post("/admin/videos", inject_video)
    app.router.add_get("/admin/visible", visible)
    app.router.add_get("/admin/spend", spend)
    app.router.add_get("/admin/config", get_config)
    app.router.add_post("/admin/config", set_config)
    app.router.add_get("/admin/world", world)
    app.router.add_get("/admin/calls", calls)
    app.router.add_get("/admin/uploads", uploads)


def video_record(video: Video, now: float) -> dict[str, Any]:
    """A video as the ground truth lists it: raw (unescaped) text."""
    return {
        "videoId": video.video_id,
        "uploadedAt": format_timestamp(video.uploaded_at),
        "publishedAt": format_timestamp(video.published_at),
        "visibleAt": format_timestamp(video.visible_at),
        "privacy": video.privacy,
        "title": video.title,
        "description": video.description,
        "channelId": video.channel.channel_id,
        "channelTitle": video.channel.title,
        "query": video.query,
        "liveBroadcastContent": video.live_state(now),
        "injected": video.injected,
    }


def clock_view(state: EmulatorState) -> dict[str, Any]:
    now = state.now()
    return {
        "now": format_precise(now),
        "frozen": state.clock.frozen,
        "offset_seconds": state.clock.offset,
        "pacific_day": pacific_day(now).isoformat(),
        "quota_resets_at": format_timestamp(next_reset(now)),
    }


async def _body(request: web.Request, model: type[BodyT]) -> BodyT:
    raw = await request.text()
    try:
        data = json.loads(raw) if raw.strip() else {}
        return model.model_validate(data)
    except (ValueError, ValidationError) as exc:
        raise _BadRequest(str(exc)) from None


def _time(value: str | None, name: str) -> float | None:
    if value is None:
        return None
    parsed = parse_rfc3339(value)
    if parsed is None:
        raise _BadRequest(f"{name}: expected an RFC 3339 timestamp such as 2026-11-24T09:41:07Z")
    return parsed


def _bad(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


async def reset(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        body = await _body(request, ResetBody)
        now = _time(body.now, "now")
    except _BadRequest as exc:
        return _bad(str(exc))
    overrides = WorldOverrides.model_validate(body.model_dump(include=set(WorldOverrides.model_fields)))
    state.reset(now=now, frozen=body.frozen, overrides=overrides)
    return web.json_response({"clock": clock_view(state), "world": world_view(state)})


async def get_clock(request: web.Request) -> web.Response:
    return web.json_response(clock_view(request.app[STATE]))


async def set_clock(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        body = await _body(request, ClockBody)
        moment = _time(body.now, "now")
        if moment is not None and body.advance_seconds is not None:
            raise _BadRequest("give either now or advance_seconds, not both")
        if body.advance_seconds is not None and not math.isfinite(body.advance_seconds):
            raise _BadRequest("advance_seconds must be finite")
    except _BadRequest as exc:
        return _bad(str(exc))
    if moment is not None:
        state.clock.set(moment, frozen=body.frozen)
    elif body.advance_seconds is not None:
        state.clock.advance(body.advance_seconds)
        if body.frozen is not None:
            state.clock.freeze(body.frozen)
    elif body.frozen is not None:
        state.clock.freeze(body.frozen)
    return web.json_response(clock_view(state))


async def inject_video(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        body = await _body(request, InjectBody)
        published = _time(body.published_at, "published_at")
        visible_at = _time(body.visible_at, "visible_at")
        uploaded_at = _time(body.uploaded_at, "uploaded_at")
        video = state.world.inject(
            title=body.title,
            description=body.description,
            published_at=state.now() if published is None else published,
            query=body.query,
            channel=body.channel,
            channel_id_=body.channel_id,
            visible_at=visible_at,
            video_id=body.video_id,
            uploaded_at=uploaded_at,
            privacy=body.privacy,
        )
    except (_BadRequest, ValueError) as exc:
        return _bad(str(exc))
    return web.json_response(video_record(video, state.now()), status=201)


async def visible(request: web.Request) -> web.Response:
    """Ground truth: every video a search for ``query`` has been able to return so far."""
    state = request.app[STATE]
    query = request.query.get("query")
    try:
        after = _time(request.query.get("published_after"), "published_after")
        before = _time(request.query.get("published_before"), "published_before")
    except _BadRequest as exc:
        return _bad(str(exc))
    as_of = state.high_water()
    videos = [
        v
        for v in state.world.visible(query, as_of)
        if (after is None or v.published_at >= after) and (before is None or v.published_at <= before)
    ]
    now = state.now()
    return web.json_response(
        {
            "query": query,
            "as_of": format_precise(as_of),
            "count": len(videos),
            "videos": [video_record(v, now) for v in videos],
        }
    )


async def spend(request: web.Request) -> web.Response:
    state = request.app[STATE]
    now = state.now()
    return web.json_response({"now": format_precise(now), **state.ledger.snapshot(now)})


async def get_config(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].behaviour.model_dump())


async def set_config(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        patch = json.loads(await request.text() or "{}")
        if not isinstance(patch, dict):
            raise _BadRequest("expected a JSON object")
        behaviour = state.configure(patch)
    except (_BadRequest, ValueError) as exc:
        return _bad(str(exc))
    return web.json_response(behaviour.model_dump())


def world_view(state: EmulatorState) -> dict[str, Any]:
    w = state.world
    p = w.params
    return {
        "seed": p.seed,
        "queries": list(p.queries),
        "videos_per_minute": p.videos_per_minute,
        "query_videos_per_minute": dict(p.query_rates),
        "backfill_seconds": p.backfill_seconds,
        "late_fraction": p.late_fraction,
        "late_max_seconds": p.late_max_seconds,
        "live_fraction": p.live_fraction,
        "channel_zipf_exponent": p.channel_zipf_exponent,
        "scheduled_fraction": p.scheduled_fraction,
        "scheduled_max_seconds": p.scheduled_max_seconds,
        "private_fraction": p.private_fraction,
        "deleted_fraction": p.deleted_fraction,
        "search_lag_seconds": p.search_lag_seconds,
        # Queries first searched at run time, each with a stream of its own (world.stream_for).
        "runtime_queries": list(w.runtime_queries),
        "start": format_timestamp(w.start),
        "floor": format_timestamp(w.floor),
        # Most prolific first: each channel's expected share of every query's videos.
        "channels": [
            {
                "channelId": c.channel_id,
                "title": c.title,
                "uploadsPlaylistId": c.uploads_playlist_id,
                "weight": round(weight, 6),
            }
            for c, weight in zip(w.channels, zipf_weights(len(w.channels), p.channel_zipf_exponent), strict=True)
        ],
    }


async def world(request: web.Request) -> web.Response:
    return web.json_response(world_view(request.app[STATE]))


# The hub's requests (websub.subscribe, websub.unsubscribe) and its own calls out (websub.verify,
# websub.push) are in the call log beside the API methods.
LOGGED_METHODS = (*METHODS, "websub.subscribe", "websub.unsubscribe", "websub.verify", "websub.push")


def _call_filter(query: Any) -> CallFilter:
    methods = {m.strip() for m in ",".join(query.getall("method", [])).split(",") if m.strip()}
    unknown = methods - set(LOGGED_METHODS)
    if unknown:
        raise _BadRequest(f"method: expected some of {', '.join(LOGGED_METHODS)}, got {', '.join(sorted(unknown))}")
    try:
        after = int(query["after"]) if "after" in query else None
        limit = int(query.get("limit", "1000"))
    except ValueError:
        raise _BadRequest("after and limit must be integers") from None
    return CallFilter(
        methods=frozenset(methods) or None,
        project=query.get("project") or None,
        since=_time(query.get("since"), "since"),
        after_seq=after,
        limit=max(0, limit),
    )


async def calls(request: web.Request) -> web.Response:
    """Recent API calls, oldest first: ?method=playlistItems,channels&project=&since=&after=<seq>&limit=."""
    state = request.app[STATE]
    try:
        flt = _call_filter(request.query)
    except _BadRequest as exc:
        return _bad(str(exc))
    picked = state.calls.select(flt)
    return web.json_response(
        {
            "now": format_precise(state.now()),
            "last_seq": state.calls.last_seq,
            "evicted": state.calls.evicted,
            "count": len(picked),
            "by_method": tally(picked),
            "calls": [call.as_dict() for call in picked],
        }
    )


async def uploads(request: web.Request) -> web.Response:
    """Ground truth of an uploads playlist (?channel_id=UC… or ?playlist_id=UU…), newest upload first."""
    state = request.app[STATE]
    playlist = request.query.get("playlist_id")
    cid = request.query.get("channel_id")
    channel = state.world.uploads.by_playlist(playlist) if playlist else state.world.uploads.channel(cid or "")
    if channel is None:
        return web.json_response({"error": "no such channel or uploads playlist"}, status=404)
    now = state.now()
    videos = state.world.uploads.uploads(channel.channel_id, now)
    return web.json_response(
        {
            "channelId": channel.channel_id,
            "uploadsPlaylistId": channel.uploads_playlist_id,
            "now": format_precise(now),
            "count": len(videos),
            "videos": [{"position": i, **video_record(v, now)} for i, v in enumerate(videos)],
        }
    )
