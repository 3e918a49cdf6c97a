"""The emulated hub's books: subscription requests, verifications, leases and the outbox of pushes.

Pure (no I/O, no clock of its own): the delivery loop (websub_delivery.py) makes the HTTP calls and
reports back. The protocol is the real hub's [CODE: pubsubhubbub reference hub, hub/main.py; DOC:
WebSub, ``../shared/reference/youtube-channels.md`` §4]:

- A form POST with ``hub.mode``, ``hub.callback``, ``hub.topic`` and optionally ``hub.lease_seconds``,
  ``hub.secret``, ``hub.verify``. A malformed one is 400 with a text reason (``Invalid value for
  hub.mode: x``). Unsubscribing what is not subscribed is 204 and nothing more. Otherwise 202, and
  later the verification GET; the request takes effect only if the callback answers 200 with exactly
  the challenge. A renewal that fails verification leaves the subscription as it was.
- A lease runs from its verification for ``hub.lease_seconds`` (default and cap from the policy) on
  the emulator's clock; an expired or unsubscribed subscription gets no pushes.
- A push that the callback does not answer with a 2xx is tried again 30, 60 and 120 seconds later
  (the reference hub's backoff), then given up.
"""

from __future__ import annotations

import heapq
import itertools
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from services.youtube_emulator.ids import digest
from services.youtube_emulator.timestamps import format_precise
from services.youtube_emulator.video import Video
from services.youtube_emulator.websub_feed import channel_of_topic
from services.youtube_emulator.websub_policy import HubPolicy, push_fate, refuses_subscription

Mode = Literal["subscribe", "unsubscribe"]
PushKind = Literal["upload", "update", "flood", "deleted"]
RETRY_DELAYS = (30.0, 60.0, 120.0)
_MAX_SECRET_BYTES = 200  # WebSub: a secret MUST be less than 200 bytes
_DIGITS = re.compile(r"^[0-9]+$")


class HubRequestError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class HubRequest:
    mode: Mode
    callback: str
    topic: str
    channel_id: str
    lease_seconds: int
    secret: str | None = field(default=None, repr=False)


def _valid_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.fragment


def parse_request(form: Mapping[str, str], verify: list[str], policy: HubPolicy) -> HubRequest:
    """A hub request from its form fields; raises HubRequestError(400) with the reason."""
    callback = form.get("hub.callback", "")
    if not callback or not _valid_url(callback):
        raise HubRequestError(400, "Invalid parameter: hub.callback")
    topic = form.get("hub.topic", "")
    channel_id = channel_of_topic(topic)
    if channel_id is None:
        raise HubRequestError(400, "Invalid parameter: hub.topic")
    modes = [v.lower() for v in verify]
    if modes and not any(v in ("sync", "async") for v in modes):
        raise HubRequestError(400, f"Invalid values for hub.verify: {modes}")
    mode = form.get("hub.mode", "").lower()
    if mode not in ("subscribe", "unsubscribe"):
        raise HubRequestError(400, f"Invalid value for hub.mode: {mode}")
    raw_lease = form.get("hub.lease_seconds", "")
    lease = policy.default_lease_seconds
    if raw_lease:
        if not _DIGITS.match(raw_lease) or int(raw_lease) == 0:
            raise HubRequestError(400, f"Invalid value for hub.lease_seconds: {raw_lease}")
        lease = int(raw_lease)
    secret = form.get("hub.secret") or None
    if secret is not None and len(secret.encode("utf-8")) >= _MAX_SECRET_BYTES:
        raise HubRequestError(400, "Invalid value for hub.secret: it must be shorter than 200 bytes")
    return HubRequest(
        mode="subscribe" if mode == "subscribe" else "unsubscribe",
        callback=callback,
        topic=topic,
        channel_id=channel_id,
        lease_seconds=min(lease, policy.max_lease_seconds),
        secret=secret,
    )


@dataclass(slots=True)
class Subscription:
    id: str
    callback: str
    topic: str
    channel_id: str
    requested_at: float
    secret: str | None = field(default=None, repr=False)
    lease_seconds: int = 0
    verified_at: float | None = None
    expires_at: float | None = None
    unsubscribed_at: float | None = None
    awaiting: int = 0  # verifications in flight
    failed_verifications: int = 0
    last_push_at: float | None = None
    pushes: Counter[str] = field(default_factory=Counter)

    def active(self, at: float) -> bool:
        return (
            self.verified_at is not None
            and self.expires_at is not None
            and self.unsubscribed_at is None
            and self.verified_at <= at < self.expires_at
        )

    def state(self, now: float) -> str:
        if self.unsubscribed_at is not None:
            return "unsubscribed"
        if self.verified_at is None:
            return "pending" if self.awaiting else "unverified"
        return "active" if self.active(now) else "expired"

    def view(self, now: float) -> dict[str, Any]:
        """The admin listing's entry: never the secret, only whether there is one."""
        return {
            "id": self.id,
            "callback": self.callback,
            "topic": self.topic,
            "channel_id": self.channel_id,
            "state": self.state(now),
            "has_secret": self.secret is not None,
            "lease_seconds": self.lease_seconds,
            "requested_at": format_precise(self.requested_at),
            "verified_at": None if self.verified_at is None else format_precise(self.verified_at),
            "expires_at": None if self.expires_at is None else format_precise(self.expires_at),
            "verification_pending": self.awaiting > 0,
            "failed_verifications": self.failed_verifications,
            "last_push_at": None if self.last_push_at is None else format_precise(self.last_push_at),
            "pushes": {name: self.pushes[name] for name in ("sent", "lost", "failed", "retried", "duplicates")},
        }


@dataclass(slots=True)
class Intent:
    """A subscribe or unsubscribe request waiting for its verification GET."""

    mode: Mode
    subscription: Subscription
    lease_seconds: int
    ready_at: float  # the delivery loop's (real) clock
    secret: str | None = field(default=None, repr=False)


@dataclass(order=True, slots=True)
class Push:
    due: float
    seq: int
    subscription: Subscription = field(compare=False)
    body: bytes = field(compare=False, repr=False)
    kind: PushKind = field(compare=False)
    video_id: str = field(compare=False)
    attempt: int = field(default=0, compare=False)


class Hub:
    def __init__(self, policy: HubPolicy, seed: int) -> None:
        self.policy = policy
        self.seed = seed
        self._subs: dict[tuple[str, str], Subscription] = {}
        self._intents: list[Intent] = []
        self._outbox: list[Push] = []
        self._attempts: Counter[tuple[str, str]] = Counter()
        self._occurrences: Counter[tuple[str, str, str]] = Counter()
        self._seq = itertools.count()

    # Requests and verification ---------------------------------------------------------------

    def request(self, req: HubRequest, now: float, ready_at: float) -> int:
        """The status the hub answers: 202 (verification to come), 204 (nothing to do) or 503."""
        key = (req.callback, req.topic)
        if req.mode == "subscribe":
            self._attempts[key] += 1
            if refuses_subscription(self.policy, self.seed, req.callback, req.topic, self._attempts[key]):
                return 503
        sub = self._subs.get(key)
        if req.mode == "unsubscribe" and (sub is None or sub.unsubscribed_at is not None):
            return 204
        if sub is None:
            sub_id = digest("websub-subscription", self.seed, req.callback, req.topic, size=8).hex()
            sub = Subscription(sub_id, req.callback, req.topic, req.channel_id, requested_at=now)
            self._subs[key] = sub
        sub.requested_at = now
        sub.awaiting += 1
        self._intents.append(Intent(req.mode, sub, req.lease_seconds, ready_at, secret=req.secret))
        return 202

    def ready_intents(self, loop_now: float) -> list[Intent]:
        ready = [i for i in self._intents if i.ready_at <= loop_now]
        self._intents = [i for i in self._intents if i.ready_at > loop_now]
        return ready

    def next_intent_at(self) -> float | None:
        return min((i.ready_at for i in self._intents), default=None)

    def verified(self, intent: Intent, ok: bool, now: float) -> None:
        sub = intent.subscription
        sub.awaiting -= 1
        if not ok:
            sub.failed_verifications += 1
            return
        if intent.mode == "unsubscribe":
            sub.unsubscribed_at = now
            return
        sub.secret = intent.secret
        sub.lease_seconds = intent.lease_seconds
        # Whole seconds, as the world's publish times are: an upload in the second of the
        # verification is pushed.
        now = math.floor(now)
        sub.verified_at = now
        sub.expires_at = now + intent.lease_seconds
        sub.unsubscribed_at = None

    # Pushes ----------------------------------------------------------------------------------

    def watched(self, since: float) -> tuple[set[str], float]:
        """Channels with a subscription verified and unexpired after ``since``, and the last expiry."""
        live = [
            s
            for s in self._subs.values()
            if s.verified_at is not None and s.unsubscribed_at is None and (s.expires_at or 0) > since
        ]
        return {s.channel_id for s in live}, max((s.expires_at or 0 for s in live), default=0.0)

    def plan(self, kind: PushKind, video: Video, at: float, body: Callable[[str], bytes]) -> int:
        """Queue the notice of ``video`` (an event at ``at``) for every subscriber active then."""
        queued = 0
        channel_id = video.channel.channel_id
        for sub in self._subs.values():
            if sub.channel_id != channel_id or not sub.active(at):
                continue
            key = (sub.id, video.video_id, kind)
            self._occurrences[key] += 1
            fate = push_fate(self.policy, self.seed, channel_id, *key, self._occurrences[key])
            if fate.lost:
                sub.pushes["lost"] += 1
                continue
            payload = body(sub.topic)
            for copy, delay in enumerate(fate.delays):
                sub.pushes["duplicates"] += copy > 0
                heapq.heappush(self._outbox, Push(at + delay, next(self._seq), sub, payload, kind, video.video_id))
                queued += 1
        return queued

    def due(self, now: float) -> list[Push]:
        ready: list[Push] = []
        while self._outbox and self._outbox[0].due <= now:
            ready.append(heapq.heappop(self._outbox))
        return ready

    def next_due(self) -> float | None:
        return self._outbox[0].due if self._outbox else None

    def delivered(self, push: Push, status: int | None, now: float) -> None:
        """Book a delivery's answer; a failure is queued again while retries remain."""
        sub = push.subscription
        if status is not None and 200 <= status < 300:
            sub.pushes["sent"] += 1
            sub.last_push_at = now
            return
        if push.attempt < len(RETRY_DELAYS):
            sub.pushes["retried"] += 1
            retry = Push(now + RETRY_DELAYS[push.attempt], next(self._seq), sub, push.body, push.kind, push.video_id)
            retry.attempt = push.attempt + 1
            heapq.heappush(self._outbox, retry)
            return
        sub.pushes["failed"] += 1

    def dropped(self, push: Push) -> None:
        """A push that fell due after its subscription ended: never sent, counted as lost."""
        push.subscription.pushes["lost"] += 1

    # Inspection ------------------------------------------------------------------------------

    def subscriptions(self) -> list[Subscription]:
        return list(self._subs.values())

    def pending_pushes(self) -> int:
        return len(self._outbox)
