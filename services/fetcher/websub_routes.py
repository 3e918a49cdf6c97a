"""The push endpoint, ``/websub/youtube/<subscription id>``, served by every fetcher process.

``GET`` is the hub's verification: answered 200 with ``hub.challenge`` only when it matches a
request the leader made for that subscription and that is pending (``websub_store.py``), else 404,
so nobody can subscribe this endpoint to topics of their choosing. ``POST`` is a push, checked in
this order, each refusal counted by reason (``tubewatch_fetcher_websub_pushes``, and per
subscription in MongoDB for the status):

1. the subscription exists (else 404: nothing of ours lives there);
2. the body is at most 1 MiB (else 413, unread beyond the limit);
3. ``Content-Type`` is Atom, and ``X-Hub-Signature`` is ``sha1=HMAC(secret, raw body)`` under that
   subscription's own secret, compared in constant time (else 2xx, as WebSub asks, and ignored);
4. the XML parses with no DTD, entity or external reference (``websub_push.py``; else 2xx, ignored,
   logged once a subscription and reason).

What passes is forwarded to the leader through the notice queue (``websub_notices.py``) and only
then answered 204; a broker that does not confirm gets a 503, so the hub pushes again. The HTTP
limits are the API's (``LIMITS``), set on the fetcher's whole app.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from aiohttp import web

from services.fetcher.clock import Clock
from services.fetcher.metrics import FetcherMetrics
from services.fetcher.websub_notices import MAX_IDS_PER_NOTICE, NoticeForwarder, NoticeTombstone, PushNotice
from services.fetcher.websub_push import (
    MAX_PUSH_BYTES,
    IgnoredReason,
    PushRefusedError,
    is_atom,
    parse_push,
    signature_matches,
)
from services.fetcher.websub_store import WebSubStore

logger = logging.getLogger(__name__)

PUSH_PATH = "/websub/youtube/{subscription_id}"
# The API's limits on what a client may send (services/api/app.py), for the one path exposed with it:
# enforced by aiohttp's parser before any handler runs.
LIMITS = {
    "max_line_size": 8192,
    "max_field_size": 8192,
    "max_headers": 64,
    # A connection that has not delivered a complete request this long after opening or after its
    # last answer is closed (slow clients, idle keep-alive).
    "keepalive_timeout": 30.0,
    "lingering_time": 2.0,
}
CLIENT_MAX_SIZE = MAX_PUSH_BYTES


@dataclass
class PushReceiver:
    store: WebSubStore
    forwarder: NoticeForwarder
    clock: Clock
    metrics: FetcherMetrics
    _logged: set[tuple[str, str]] = field(default_factory=set)
    forwarded: int = 0  # notices this process forwarded (the benchmark waits for the leader to catch up)

    async def verify(self, request: web.Request) -> web.Response:
        subscription_id = request.match_info["subscription_id"]
        query = request.query
        mode, topic, challenge = query.get("hub.mode"), query.get("hub.topic", ""), query.get("hub.challenge")
        now = self.clock.now()
        matched = False
        if challenge and mode == "subscribe":
            lease = _lease_seconds(query.get("hub.lease_seconds"))
            matched = lease is not None and await self.store.verified(subscription_id, topic, lease, now)
        elif challenge and mode == "unsubscribe":
            matched = await self.store.unsubscribed(subscription_id, topic)
        self.metrics.websub_verifications.labels(str(mode)[:20] if matched else "refused").inc()
        if not matched:
            logger.info("websub verification refused: no such pending request", extra={"mode": str(mode)[:20]})
            raise web.HTTPNotFound()
        logger.info("websub verification answered", extra={"mode": mode, "subscription_id": subscription_id})
        return web.Response(text=challenge, content_type="text/plain")

    async def push(self, request: web.Request) -> web.Response:
        subscription_id = request.match_info["subscription_id"]
        known = await self.store.secret_of(subscription_id)
        if known is None:
            self.metrics.websub_pushes.labels("unknown", "unknown_subscription").inc()
            raise web.HTTPNotFound()
        channel_id, secret = known
        if request.content_length is not None and request.content_length > MAX_PUSH_BYTES:
            await self._ignored(subscription_id, channel_id, "oversized")
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_PUSH_BYTES, actual_size=request.content_length)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            await self._ignored(subscription_id, channel_id, "oversized")
            raise
        if not is_atom(request.content_type):
            return await self._ignored(subscription_id, channel_id, "content_type")
        if not signature_matches(secret, body, request.headers.get("X-Hub-Signature")):
            return await self._ignored(subscription_id, channel_id, "bad_signature")
        try:
            content = parse_push(body, channel_id)
        except PushRefusedError as exc:
            return await self._ignored(subscription_id, channel_id, exc.reason, str(exc))
        if not content.video_ids and not content.tombstones:
            # Entries of another channel than the topic's are not this subscription's to publish.
            reason: IgnoredReason = "wrong_channel" if content.other_channels else "empty"
            return await self._ignored(subscription_id, channel_id, reason)
        if content.other_channels:
            self.metrics.websub_pushes.labels(channel_id, "wrong_channel").inc()
            await self.store.pushed(subscription_id, "wrong_channel", self.clock.now())
        notice = PushNotice(
            subscription_id=subscription_id,
            channel_id=channel_id,
            video_ids=content.video_ids[:MAX_IDS_PER_NOTICE],
            tombstones=[NoticeTombstone(video_id=t.video_id, when=t.when) for t in content.tombstones][
                :MAX_IDS_PER_NOTICE
            ],
            received_at=self.clock.now(),
        )
        try:
            await self.forwarder.forward(notice)
        except Exception as exc:
            logger.warning(
                "push not forwarded to the leader; the hub will push again",
                extra={"channel_id": channel_id, "error": str(exc)[:200]},
            )
            raise web.HTTPServiceUnavailable() from None
        self.forwarded += 1
        self.metrics.websub_pushes.labels(channel_id, "accepted").inc()
        await self.store.pushed(subscription_id, "accepted", self.clock.now())
        return web.Response(status=204)

    async def _ignored(
        self, subscription_id: str, channel_id: str, reason: IgnoredReason, detail: str = ""
    ) -> web.Response:
        """Count and (once a subscription and reason) log an ignored push; WebSub wants a 2xx all the same."""
        self.metrics.websub_pushes.labels(channel_id, reason).inc()
        await self.store.pushed(subscription_id, reason, self.clock.now())
        if (subscription_id, reason) not in self._logged:
            self._logged.add((subscription_id, reason))
            logger.warning(
                "push ignored (logged once a subscription and reason)",
                extra={"channel_id": channel_id, "reason": reason, "detail": detail[:200]},
            )
        return web.Response(status=202)


def _lease_seconds(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and value > 0 else None


RECEIVER: web.AppKey[PushReceiver] = web.AppKey("websub_receiver", PushReceiver)


def add_push_routes(app: web.Application) -> None:
    """The routes, answering 503 until the app's start put a receiver under ``RECEIVER``."""
    app.router.add_get(PUSH_PATH, _verify)
    app.router.add_post(PUSH_PATH, _push)


def _receiver(request: web.Request) -> PushReceiver:
    receiver = request.app.get(RECEIVER)
    if receiver is None:
        raise web.HTTPServiceUnavailable()
    return receiver


async def _verify(request: web.Request) -> web.Response:
    return await _receiver(request).verify(request)


async def _push(request: web.Request) -> web.Response:
    return await _receiver(request).push(request)
