"""HTTP routes of the emulated WebSub hub, and its admin controls for tests.

The hub: ``POST /subscribe`` (the path of ``https://pubsubhubbub.appspot.com/subscribe``) and
``POST /websub/hub``, a form POST answered as the real hub answers (websub_hub.py). Admin (no
faults, no quota): ``GET /admin/websub`` (subscriptions and the policy; never a secret),
``GET|POST /admin/websub/config`` (the policy, changed in part), ``POST /admin/websub/flush`` (send
what is due now and wait for the answers), ``POST /admin/websub/flood`` (re-push old uploads of a
channel), ``POST /admin/videos/{video_id}/update`` (a new title or description, pushed as an entry
[DOC: the guide's "updates a video's title / description"]) and
``POST /admin/videos/{video_id}/delete`` (a deletion, pushed as a tombstone).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.youtube_emulator.metrics import METRICS
from services.youtube_emulator.state import STATE
from services.youtube_emulator.timestamps import format_precise
from services.youtube_emulator.websub_delivery import HUB_RUNNER, HubRunner
from services.youtube_emulator.websub_hub import HubRequestError, parse_request
from services.youtube_emulator.websub_policy import HubPolicy

logger = logging.getLogger(__name__)

_REASON_TEXT = {
    202: "",
    204: "",
    # [CODE: the reference hub's 503 body]; reference §4 reports "503 Transient error" since 2026-09.
    503: "Transient error; please try again later",
}


class UpdateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1)
    description: str | None = None


class FloodBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel_id: str = Field(pattern=r"^UC[A-Za-z0-9_-]{22}$")
    count: int = Field(default=10, ge=1, le=200)


def add_websub_routes(app: web.Application) -> None:
    runner = HubRunner(app)
    app[HUB_RUNNER] = runner
    app.on_startup.append(runner.start)
    app.on_cleanup.append(runner.stop)
    app.router.add_post("/subscribe", hub_request)
    app.router.add_post("/websub/hub", hub_request)
    app.router.add_get("/admin/websub", listing)
    app.router.add_get("/admin/websub/config", get_config)
    app.router.add_post("/admin/websub/config", set_config)
    app.router.add_post("/admin/websub/flush", flush)
    app.router.add_post("/admin/websub/flood", flood)
    app.router.add_post("/admin/videos/{video_id}/update", update_video)
    app.router.add_post("/admin/videos/{video_id}/delete", delete_video)


async def hub_request(request: web.Request) -> web.Response:
    state = request.app[STATE]
    form = await request.post()
    fields = {name: value for name, value in form.items() if isinstance(value, str)}
    verify = [v for v in form.getall("hub.verify", []) if isinstance(v, str)]
    mode = fields.get("hub.mode", "").lower()
    method = "websub.unsubscribe" if mode == "unsubscribe" else "websub.subscribe"
    now = state.now()
    try:
        req = parse_request(fields, verify, state.hub.policy)
        if req.mode == "subscribe" and state.world.uploads.channel(req.channel_id) is None:
            # UNCONFIRMED what Google's hub answers for a channel YouTube does not know; a 4xx here.
            raise HubRequestError(400, "Invalid parameter: hub.topic (no such channel)")
    except HubRequestError as exc:
        status, text, outcome = exc.status, exc.reason, "bad_request"
    else:
        ready_at = asyncio.get_running_loop().time() + state.hub.policy.verify_delay_seconds
        status = state.hub.request(req, now, ready_at)
        text = _REASON_TEXT[status]
        outcome = {202: "accepted", 204: "nothing_to_do", 503: "transient_error"}[status]
        request.app[HUB_RUNNER].wake()
    state.calls.record(
        at=now, method=method, key=None, project=None, params=fields, status=status, outcome=outcome, units=0
    )
    request.app[METRICS].websub.labels(kind=method, outcome=outcome).inc()
    logger.debug("websub hub answered %s", status, extra={"mode": mode, "outcome": outcome})
    headers = {"Retry-After": "120"} if status == 503 else None
    if status in (202, 204):
        return web.Response(status=status, headers=headers)
    return web.Response(status=status, text=text, content_type="text/plain", headers=headers)


async def listing(request: web.Request) -> web.Response:
    state = request.app[STATE]
    now = state.now()
    hub = state.hub
    return web.json_response(
        {
            "now": format_precise(now),
            "policy": hub.policy.model_dump(),
            "pending_pushes": hub.pending_pushes(),
            "watermark": format_precise(state.watch.watermark),
            "subscriptions": [sub.view(now) for sub in hub.subscriptions()],
        }
    )


async def get_config(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].hub.policy.model_dump())


async def set_config(request: web.Request) -> web.Response:
    hub = request.app[STATE].hub
    try:
        patch = json.loads(await request.text() or "{}")
        if not isinstance(patch, dict):
            raise ValueError("expected a JSON object")
        hub.policy = HubPolicy.model_validate({**hub.policy.model_dump(), **patch})
    except (ValueError, ValidationError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response(hub.policy.model_dump())


async def flush(request: web.Request) -> web.Response:
    counts = await request.app[HUB_RUNNER].flush()
    state = request.app[STATE]
    pending = state.hub.pending_pushes()
    return web.json_response({"now": format_precise(state.now()), **counts, "pending_pushes": pending})


async def flood(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        body = FloodBody.model_validate(json.loads(await request.text() or "{}"))
    except (ValueError, ValidationError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    queued = request.app[HUB_RUNNER].flood(body.channel_id, body.count, state.now())
    return web.json_response({"queued": queued})


async def update_video(request: web.Request) -> web.Response:
    """Change an uploaded video's title or description: every answer shows it; subscribers get an entry."""
    state = request.app[STATE]
    video_id = request.match_info["video_id"]
    now = state.now()
    try:
        body = UpdateBody.model_validate(json.loads(await request.text() or "{}"))
        video = state.world.edit(video_id, now, title=body.title, description=body.description)
    except LookupError as exc:
        return web.json_response({"error": str(exc)}, status=404)
    except (ValueError, ValidationError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    queued = request.app[HUB_RUNNER].notify("update", video, now) if video.is_public(now) else 0
    return web.json_response(
        {"videoId": video.video_id, "title": video.title, "description": video.description, "updates_queued": queued}
    )


async def delete_video(request: web.Request) -> web.Response:
    """Delete an uploaded video: it leaves search, videos.list and its playlist; subscribers get a tombstone."""
    state = request.app[STATE]
    video_id = request.match_info["video_id"]
    now = state.now()
    try:
        video = state.world.remove(video_id, now)
    except LookupError as exc:
        return web.json_response({"error": str(exc)}, status=404)
    except ValueError as exc:
        return web.json_response({"error": str(exc)}, status=409)
    queued = request.app[HUB_RUNNER].notify("deleted", video, now)
    body: dict[str, Any] = {
        "videoId": video.video_id,
        "channelId": video.channel.channel_id,
        "deletedAt": format_precise(now),
        "tombstones_queued": queued,
    }
    return web.json_response(body)
