"""The hub's background task: verification GETs, and pushes as the emulator's clock makes them due.

One task on the app's loop. It wakes when the clock moves (Clock listeners), when a request or an
admin call asks, when a verification's real-time delay ends, and, while the clock runs, every half
second to look for new uploads. Each wake: due verifications are sent, the world is scanned for
uploads since the last look (websub_watch.py) and planned per subscriber (websub_hub.py), and every
push whose due time the clock has reached is delivered. With a frozen clock nothing becomes due
until a test moves it, which is what lets a test decide when a push arrives. The loop reads the
clock itself, not ``state.now()``: what the hub looks at is not what API callers have been shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Coroutine
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from services.youtube_emulator.metrics import METRICS
from services.youtube_emulator.state import STATE, EmulatorState
from services.youtube_emulator.video import Video
from services.youtube_emulator.websub_feed import GOOGLE_HUB, entry_feed, signature, tombstone_feed
from services.youtube_emulator.websub_hub import Intent, Push
from services.youtube_emulator.websub_policy import floods, unit

logger = logging.getLogger(__name__)

_SCAN_SECONDS = 0.5
_TIMEOUT = aiohttp.ClientTimeout(total=10)
_MAX_CHALLENGE_ECHO = 4096
_FLOOD_POOL = 200  # a flood re-pushes old uploads drawn from the channel's newest this many


class HubRunner:
    def __init__(self, app: web.Application) -> None:
        self._app = app
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._limit = asyncio.Semaphore(32)

    @property
    def state(self) -> EmulatorState:
        return self._app[STATE]

    async def start(self, app: web.Application) -> None:
        self._session = aiohttp.ClientSession(timeout=_TIMEOUT)
        self.state.clock.listen(self.wake)
        self._task = asyncio.create_task(self._run(), name="websub-hub")

    async def stop(self, app: web.Application) -> None:
        self.state.clock.unlisten(self.wake)
        for task in [self._task, *self._inflight]:
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in [self._task, *self._inflight] if t is not None), return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def wake(self) -> None:
        self._wake.set()

    async def flush(self) -> dict[str, int]:
        """Send every verification now, then every push due at the clock, and wait for the answers."""
        verified = self._tick(verify_all=True)
        await self._settle()
        delivered = self._tick(verify_all=False)
        await self._settle()
        return {"verifications": verified[0], "pushes": delivered[1]}

    def notify(self, kind: str, video: Video, at: float) -> int:
        """Queue the notice of a change, a flood item or a deletion; wake the loop to deliver it."""
        hub = self.state.hub
        if kind == "deleted":
            queued = hub.plan("deleted", video, at, lambda _t: tombstone_feed(video.video_id, video.channel, at))
        else:
            queued = hub.plan("update" if kind == "update" else "flood", video, at, lambda t: entry_feed(video, t, at))
        self.wake()
        return queued

    def flood(self, channel_id: str, count: int, at: float) -> int:
        """Re-push ``count`` old public uploads of a channel, as the real hub's floods do."""
        state = self.state
        pool = [v for v in state.world.uploads.page(channel_id, at, 0, _FLOOD_POOL).videos if v.is_public(at)]
        seed = state.hub.seed
        pool.sort(key=lambda v: unit(seed, "pick", channel_id, at, v.video_id))
        return sum(self.notify("flood", video, at) for video in pool[:count])

    # The loop ----------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                self._tick(verify_all=False)
            except Exception:  # one bad wake must not end the hub
                logger.exception("websub hub tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._timeout())
            self._wake.clear()

    def _timeout(self) -> float | None:
        state = self.state
        loop_now = asyncio.get_running_loop().time()
        waits: list[float] = []
        intent_at = state.hub.next_intent_at()
        if intent_at is not None:
            waits.append(intent_at - loop_now)
        if not state.clock.frozen:
            due = state.hub.next_due()
            if due is not None:
                waits.append(due - state.clock.now())
            channels, _ = state.hub.watched(state.clock.now())
            if channels:
                waits.append(_SCAN_SECONDS)
        return max(0.0, min(waits)) if waits else None

    def _tick(self, *, verify_all: bool) -> tuple[int, int]:
        state = self.state
        hub = state.hub
        loop_now = float("inf") if verify_all else asyncio.get_running_loop().time()
        intents = hub.ready_intents(loop_now)
        for intent in intents:
            self._spawn(self._verify(intent))
        now = state.clock.now()
        channels, until = hub.watched(state.watch.watermark)
        for video in state.watch.advance(now, channels, until):
            hub.plan("upload", video, video.published_at, _upload_body(state.world.edited(video)))
            if floods(hub.policy, hub.seed, video.video_id):
                self.flood(video.channel.channel_id, hub.policy.flood_size, video.published_at)
        pushes = hub.due(now)
        for push in pushes:
            self._spawn(self._deliver(push))
        return len(intents), len(pushes)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _settle(self) -> None:
        while self._inflight:
            await asyncio.gather(*list(self._inflight), return_exceptions=True)

    # HTTP ----------------------------------------------------------------------------------------

    async def _verify(self, intent: Intent) -> None:
        state = self.state
        hub = state.hub
        sub = intent.subscription
        challenge = secrets.token_urlsafe(32)
        query = {"hub.mode": intent.mode, "hub.topic": sub.topic, "hub.challenge": challenge}
        if intent.mode == "subscribe":
            query["hub.lease_seconds"] = str(intent.lease_seconds)
        status: int | None = None
        ok = False
        assert self._session is not None
        try:
            async with (
                self._limit,
                self._session.get(URL(sub.callback).update_query(query), allow_redirects=False) as response,
            ):
                status = response.status
                echoed = await response.content.read(_MAX_CHALLENGE_ECHO)
                ok = status == 200 and echoed == challenge.encode("ascii")
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            logger.info("websub verification could not reach the callback", extra={"error": type(exc).__name__})
        hub.verified(intent, ok, state.clock.now())
        outcome = "verified" if ok else ("unreachable" if status is None else "refused")
        self._log("websub.verify", (sub.callback, sub.topic), status, outcome, {"hub.mode": intent.mode})
        self.wake()

    async def _deliver(self, push: Push) -> None:
        state = self.state
        hub = state.hub
        sub = push.subscription
        if not sub.active(state.clock.now()):
            hub.dropped(push)
            self._log("websub.push", (sub.callback, sub.topic), None, "inactive", _push_params(push))
            return
        headers = {
            "Content-Type": "application/atom+xml",
            "Link": f'<{GOOGLE_HUB}/>; rel="hub", <{sub.topic}>; rel="self"',
        }
        if sub.secret is not None:
            headers["X-Hub-Signature"] = signature(sub.secret, push.body)
        status: int | None = None
        assert self._session is not None
        try:
            async with (
                self._limit,
                self._session.post(sub.callback, data=push.body, headers=headers, allow_redirects=False) as response,
            ):
                status = response.status
                await response.read()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            logger.info("websub push could not reach the callback", extra={"error": type(exc).__name__})
        hub.delivered(push, status, state.clock.now())
        outcome = "unreachable" if status is None else ("ok" if 200 <= status < 300 else "failed")
        self._log("websub.push", (sub.callback, sub.topic), status, outcome, _push_params(push))
        self.wake()

    def _log(
        self, method: str, target: tuple[str, str], status: int | None, outcome: str, extra: dict[str, str]
    ) -> None:
        """A call-log entry for a call the hub made (``target``: callback and topic); no secret in it."""
        state = self.state
        callback, topic = target
        self._app[METRICS].websub.labels(kind=method, outcome=outcome).inc()
        state.calls.record(
            at=state.clock.now(),
            method=method,
            key=None,
            project=None,
            params={"hub.callback": callback, "hub.topic": topic, **extra},
            status=status,
            outcome=outcome,
            units=0,
        )


def _upload_body(video: Video) -> Any:
    return lambda topic: entry_feed(video, topic, video.published_at)


def _push_params(push: Push) -> dict[str, str]:
    return {"kind": push.kind, "video_id": push.video_id, "attempt": str(push.attempt)}


HUB_RUNNER: web.AppKey[HubRunner] = web.AppKey("youtube_emulator_websub_runner", HubRunner)
