"""The leader's WebSub subscriptions: subscribe every followed channel, renew before expiry, unsubscribe the rest.

Each pass (every ``PASS_SECONDS``, and at once when woken) reads the subscriptions from MongoDB
(``websub_store.py``; any process may have recorded a verification since) and the followed set
from the channel roster, then:

- a followed channel without a subscription gets one (its own id and secret) and is subscribed:
  a form POST to the hub with ``hub.callback`` = ``WEBSUB_CALLBACK_URL`` + ``/websub/youtube/<id>``,
  the topic, ``hub.lease_seconds`` = ``WEBSUB_LEASE_SECONDS``, ``hub.secret`` and
  ``hub.verify=async``. A 202 (or 204) leaves it pending until the verification GET;
- a lease is renewed (the same request) once ``RENEW_SHARE`` of it is left (a day of five), so a
  restart or a new leader, which read the lease from MongoDB, renews it in time;
- a refused request (a 4xx, a 503, no answer), or one not verified within ``VERIFY_WITHIN``, is
  tried again after a capped exponential backoff (``Retry-After`` respected up to the cap); the
  channel stays on polling meanwhile, at its usual interval;
- a channel no longer followed for ``UNFOLLOWED_GRACE`` is unsubscribed (the verification GET
  deletes it), or deleted when it never was subscribed.

``push_works`` says which channels have a running lease: the channel scheduler reads them
``PUSH_STRETCH`` times less often than planned, but at least every ``MAX_CHANNEL_INTERVAL_SECONDS``
(``stretched_interval``). A change of that set wakes the schedulers, so a channel whose push
stopped is read at its planned interval again at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from services.common.timefmt import format_rfc3339
from services.common.websub_state import SUBSCRIPTION_STATES, Mode, Subscription
from services.fetcher.budget import Plan
from services.fetcher.clock import Clock
from services.fetcher.metrics import FetcherMetrics
from services.fetcher.scheduler import WorkItem
from services.fetcher.websub_store import WebSubStore

logger = logging.getLogger(__name__)

PASS_SECONDS = 1.0  # real seconds between two passes: cheap (one find over a small collection)
RENEW_SHARE = 0.2
VERIFY_WITHIN = timedelta(minutes=5)
# A channel is unsubscribed once it has not been followed this long.
UNFOLLOWED_GRACE = timedelta(minutes=10)
BACKOFF_FIRST_SECONDS = 60.0
BACKOFF_MAX_SECONDS = 3600.0
HUB_TIMEOUT = aiohttp.ClientTimeout(total=15)
# How much less often a channel whose push works is read: the reads still catch a lost push within
# about twice the channel's planned interval (a hub loses some in every hundred).
PUSH_STRETCH = 2.0


def callback_url(base: str, subscription_id: str) -> str:
    return f"{base}/websub/youtube/{subscription_id}"


def backoff_seconds(failures: int, retry_after: float | None = None) -> float:
    """The wait before attempt ``failures + 1``: doubling from a minute, jittered, capped at an hour."""
    wait = min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** max(0, failures - 1))
    wait *= random.uniform(0.8, 1.0)
    if retry_after is not None:
        wait = max(wait, min(retry_after, BACKOFF_MAX_SECONDS))
    return wait


class HubRefusedError(Exception):
    def __init__(self, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class WebSubSubscriptions:
    def __init__(
        self,
        *,
        store: WebSubStore,
        session: aiohttp.ClientSession,
        followed: Callable[[], Collection[str]],
        clock: Clock,
        metrics: FetcherMetrics,
        hub_url: str,
        callback_base: str,
        lease_seconds: int,
        on_push_change: Callable[[], None],
    ) -> None:
        self._store = store
        self._session = session
        self._followed = followed
        self._clock = clock
        self._metrics = metrics
        self._hub_url = hub_url
        self._callback_base = callback_base
        self._lease_seconds = lease_seconds
        self._on_push_change = on_push_change
        self._wake = asyncio.Event()
        self.subscriptions: dict[str, Subscription] = {}  # by channel, as the last pass read them
        self._pushing: frozenset[str] = frozenset()
        self._missing_since: dict[str, datetime] = {}  # subscribed channels not followed, since when
        self._labelled: set[str] = set()  # channels the gauges have labels of

    def wake(self) -> None:
        self._wake.set()

    def push_works(self, channel_id: str) -> bool:
        return channel_id in self._pushing

    async def run(self) -> None:
        """Passes until cancelled (the leader stood down); a failed pass is tried again at the next."""
        while True:
            self._wake.clear()
            try:
                await self.pass_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("websub subscriptions pass failed; the next pass tries again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=PASS_SECONDS)

    async def pass_once(self) -> None:
        now = self._clock.now()
        followed = set(self._followed())
        subs = {sub.channel_id: sub for sub in await self._store.all()}
        for channel_id in followed - set(subs):
            await self._store.create(channel_id, now)
        if followed - set(subs):
            subs = {sub.channel_id: sub for sub in await self._store.all()}
        for channel_id in followed:
            self._missing_since.pop(channel_id, None)
        for channel_id in set(subs) - followed:
            self._missing_since.setdefault(channel_id, now)
        for channel_id, sub in subs.items():
            await self._step(sub, channel_id in followed, now)
        self.subscriptions = {c: s for c, s in subs.items() if c in followed}
        self._publish_metrics(now)
        pushing = frozenset(c for c, s in self.subscriptions.items() if s.leased(now))
        if pushing != self._pushing:
            self._pushing = pushing
            self._on_push_change()

    async def _step(self, sub: Subscription, followed: bool, now: datetime) -> None:
        """What one subscription needs now: a verification awaited, a (re)subscribe, an unsubscribe."""
        if sub.pending_mode is not None and sub.requested_at is not None:
            if now - sub.requested_at < VERIFY_WITHIN:
                return
            # The hub never verified the request: a failure like a refusal, tried again later.
            sub.failures += 1
            sub.next_attempt_at = now + timedelta(seconds=backoff_seconds(sub.failures))
            sub.pending_mode = None
            await self._store.failed(sub.id, "the hub never verified the request", sub.next_attempt_at, now)
            return
        if followed:
            if self._subscribe_due(sub, now):
                await self._request(sub, "subscribe", now)
        elif now - self._missing_since[sub.channel_id] < UNFOLLOWED_GRACE:
            return  # the followed set may be in the middle of a reload (a new leader's)
        elif sub.verified_at is None:
            await self._store.delete(sub.id)  # never subscribed: nothing to undo at the hub
        elif self._unsubscribe_due(sub, now):
            await self._request(sub, "unsubscribe", now)

    def _subscribe_due(self, sub: Subscription, now: datetime) -> bool:
        if sub.next_attempt_at is not None and sub.next_attempt_at > now:
            return False
        if sub.lease_expires_at is None or sub.verified_at is None:
            return True
        left = (sub.lease_expires_at - now).total_seconds()
        lease = (sub.lease_expires_at - sub.verified_at).total_seconds()
        return left <= lease * RENEW_SHARE

    def _unsubscribe_due(self, sub: Subscription, now: datetime) -> bool:
        return sub.next_attempt_at is None or sub.next_attempt_at <= now

    async def _request(self, sub: Subscription, mode: Mode, now: datetime) -> None:
        context = {"channel_id": sub.channel_id, "mode": mode, "subscription_id": sub.id}
        secret = await self._store.request_secret(sub.id)
        if secret is None:
            return  # deleted meanwhile (unsubscribed)
        form = {
            "hub.mode": mode,
            "hub.callback": callback_url(self._callback_base, sub.id),
            "hub.topic": sub.topic,
            "hub.verify": "async",
        }
        if mode == "subscribe":
            form |= {"hub.lease_seconds": str(self._lease_seconds), "hub.secret": secret}
        # Pending before the request goes out: the hub may verify before its answer reaches us.
        await self._store.requested(sub.id, mode, now)
        try:
            await self._post(form)
        except HubRefusedError as exc:
            wait = backoff_seconds(sub.failures + 1, exc.retry_after)
            retry_at = now + timedelta(seconds=wait)
            self._metrics.websub_requests.labels(mode, "refused").inc()
            logger.warning(
                "websub hub refused the request; tried again later, the channel is polled meanwhile",
                extra={**context, "error": str(exc)[:200], "retry_at": format_rfc3339(retry_at)},
            )
            await self._store.failed(sub.id, str(exc), retry_at, now)
            return
        self._metrics.websub_requests.labels(mode, "accepted").inc()
        logger.info("websub request accepted; awaiting the hub's verification", extra=context)

    async def _post(self, form: dict[str, str]) -> None:
        try:
            async with self._session.post(
                self._hub_url, data=form, timeout=HUB_TIMEOUT, allow_redirects=False
            ) as response:
                text = (await response.content.read(500)).decode("utf-8", "replace")
                if response.status in (202, 204):
                    return
                raise HubRefusedError(f"{response.status} {text.strip()}", _retry_after(response.headers))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise HubRefusedError(f"hub unreachable: {type(exc).__name__}") from None

    def _publish_metrics(self, now: datetime) -> None:
        metrics = self._metrics
        for channel_id in self._labelled - set(self.subscriptions):
            # No longer followed: its gauges go, rather than stay at their last values.
            for name in SUBSCRIPTION_STATES:
                metrics.websub_state.remove(channel_id, name)
            metrics.websub_lease_expiry.remove(channel_id)
            metrics.websub_last_push.remove(channel_id)
        self._labelled = set(self.subscriptions)
        for channel_id, sub in self.subscriptions.items():
            state = sub.state(now)
            for name in SUBSCRIPTION_STATES:
                metrics.websub_state.labels(channel_id, name).set(1 if name == state else 0)
            if sub.lease_expires_at is not None:
                metrics.websub_lease_expiry.labels(channel_id).set(sub.lease_expires_at.timestamp())
            if sub.last_push_at is not None:
                metrics.websub_last_push.labels(channel_id).set(sub.last_push_at.timestamp())

    def health(self, now: datetime) -> dict[str, Any]:
        """Each followed channel's subscription, as ``/healthz`` shows it (never its secret)."""
        channels = {}
        for channel_id, sub in sorted(self.subscriptions.items()):
            channels[channel_id] = {
                "state": sub.state(now),
                "subscription_id": sub.id,
                "lease_expires_at": _moment(sub.lease_expires_at),
                "pending": sub.pending_mode,
                "failures": sub.failures,
                "next_attempt_at": _moment(sub.next_attempt_at) if sub.failures else None,
                "last_error": sub.last_error,
                "last_push_at": _moment(sub.last_push_at),
                "pushes_accepted": sub.pushes_accepted,
                "pushes_ignored": sub.pushes_ignored,
            }
        return {"websub": {"hub_url": self._hub_url, "channels": channels}}

    def stretched_interval(self, max_interval: float) -> Callable[[WorkItem, Plan], float]:
        """The channel scheduler's interval policy: a channel whose push works is read PUSH_STRETCH times
        less often than planned, but at least every ``max_interval`` (unless the plan says less often)."""

        def interval(item: WorkItem, plan: Plan) -> float:
            planned = plan.interval(item.name)
            if not self.push_works(item.name):
                return planned
            return max(planned, min(max_interval, planned * PUSH_STRETCH))

        return interval


def _moment(moment: datetime | None) -> str | None:
    return format_rfc3339(moment) if moment else None


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
