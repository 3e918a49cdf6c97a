"""Every YouTube call goes through here: lease check, key choice, spend accounting, error policy.

Per answer: a daily exhaustion parks the key's project until midnight Pacific
time and the same request goes out at once with the next usable key; an invalid or forbidden
key is disabled and the request moves on too; short-term limits, 5xx, timeouts and dropped
connections are retried with the same key after capped exponential backoff with jitter, a
bounded number of times; a stale page token, a missing playlist and request bugs go back to
the caller. search.list spends the project's search bucket; channels.list, playlistItems.list
and videos.list its units (1 a call), parked apart: a spent units pool (403 ``quotaExceeded`` on
a unit call) parks only the project's unit calls, until midnight Pacific time.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Literal

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from services.fetcher.clock import Clock, next_reset
from services.fetcher.keys import KeyPool
from services.fetcher.lease import LeaderLease
from services.fetcher.metrics import FetcherMetrics
from services.fetcher.settings import KeyEntry
from services.fetcher.store import FetcherStore
from services.fetcher.youtube_client import ErrorKind, YouTubeApiError, YouTubeClient, YouTubeTransportError

logger = logging.getLogger(__name__)


class NoUsableKeyError(Exception):
    """Every key is parked, disabled or out of today's budget."""


class RetriesExhaustedError(Exception):
    """A short-term failure outlasted the retries of this request; the cycle moves on."""


class _Retryable(Exception):
    def __init__(self, key: KeyEntry, cause: Exception) -> None:
        super().__init__(str(cause))
        self.key = key
        self.cause = cause


class YouTubeGateway:
    def __init__(
        self,
        *,
        client: YouTubeClient,
        pool: KeyPool,
        lease: LeaderLease,
        store: FetcherStore,
        metrics: FetcherMetrics,
        clock: Clock,
        retries: int,
        retry_max_seconds: float,
    ) -> None:
        self._retries = retries
        self._retry_max_seconds = retry_max_seconds
        self._client = client
        self._pool = pool
        self._lease = lease
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self.search_calls = 0  # since start; a poll reads the difference it made
        self.read_units = 0  # channels.list and playlistItems.list calls since start

    async def search(self, params: dict[str, str]) -> dict[str, Any]:
        """One search page. Raises NoUsableKeyError, RetriesExhaustedError, YouTubeApiError, LeaseLostError."""
        return await self._with_retries("search", params, self._retries)

    async def videos(self, ids: list[str]) -> dict[str, Any] | None:
        """videos.list for up to 50 ids; None when no key's unit pool is left today."""
        try:
            return await self._with_retries("videos", {"id": ",".join(ids)}, min(1, self._retries))
        except NoUsableKeyError:
            return None

    async def channels(self, channel_id: str) -> dict[str, Any]:
        """channels.list (contentDetails) for one channel. Raises as ``search`` does."""
        return await self._with_retries("channels", {"part": "contentDetails", "id": channel_id}, self._retries)

    async def playlist_items(self, params: dict[str, str]) -> dict[str, Any]:
        """One page of playlistItems.list. Raises as ``search`` does."""
        return await self._with_retries("playlistItems", params, self._retries)

    async def _with_retries(self, method: str, params: dict[str, str], retries: int) -> dict[str, Any]:
        prefer: KeyEntry | None = None

        def remember_key(state: RetryCallState) -> None:
            nonlocal prefer
            error = state.outcome.exception() if state.outcome else None
            if isinstance(error, _Retryable):
                prefer = error.key  # retry with the same key
                logger.warning(
                    "short-term failure; backing off",
                    extra={
                        "method": method,
                        "key": error.key.fingerprint,
                        "attempt": state.attempt_number,
                        "error": str(error.cause),
                    },
                )

        retrying = AsyncRetrying(
            retry=retry_if_exception_type(_Retryable),
            stop=stop_after_attempt(retries + 1),
            wait=wait_random_exponential(multiplier=0.5, max=self._retry_max_seconds),
            before_sleep=remember_key,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._call_rotating(method, params, prefer)
        except _Retryable as exc:
            raise RetriesExhaustedError(f"{method}: {exc.cause}") from None
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def _call_rotating(self, method: str, params: dict[str, str], prefer: KeyEntry | None) -> dict[str, Any]:
        """Call with the first usable key, moving to the next key after a quota or key error."""
        while True:
            token = self._lease.check()
            now = self._clock.now()
            key = self._pick(method, now, prefer)
            prefer = None
            if key is None:
                await self._flush(token)
                raise NoUsableKeyError(f"no key may call {method} now")
            if method == "search":
                self._pool.charge_search(key, now)
                self._metrics.quota_spent.labels("search_calls").inc()
                self.search_calls += 1
            else:
                self._pool.charge_units(key, 1, now)
                self._metrics.quota_spent.labels("units").inc()
                if method != "videos":
                    self.read_units += 1
            try:
                body = await self._send(method, key, params)
            except YouTubeApiError as exc:
                self._metrics.calls.labels(method, exc.kind.value).inc()
                action = self._handle(method, key, exc)
                await self._flush(token)
                if action == "retry":
                    raise _Retryable(key, exc) from None
                if action == "give_up":
                    raise
                continue
            except YouTubeTransportError as exc:
                self._metrics.calls.labels(method, "transport_error").inc()
                await self._flush(token)
                raise _Retryable(key, exc) from None
            self._metrics.calls.labels(method, "ok").inc()
            await self._flush(token)
            return body

    def _pick(self, method: str, now: datetime, prefer: KeyEntry | None) -> KeyEntry | None:
        if method == "search":
            return self._pool.pick_search_key(now, prefer)
        return self._pool.pick_units_key(now, "enrich" if method == "videos" else "read")

    async def _send(self, method: str, key: KeyEntry, params: dict[str, str]) -> dict[str, Any]:
        if method == "search":
            return await self._client.search(key, params)
        if method == "videos":
            return await self._client.videos(key, params["id"].split(","))
        if method == "channels":
            return await self._client.channels(key, params)
        return await self._client.playlist_items(key, params)

    def _handle(self, method: str, key: KeyEntry, error: YouTubeApiError) -> Literal["next_key", "retry", "give_up"]:
        """Apply the error policy to the pool and say what happens to the request."""
        now = self._clock.now()
        if error.kind is ErrorKind.DAILY_QUOTA:
            if method == "search":
                self._pool.park_project(key.project, next_reset(now), f"{error.status} {error.reason}", now)
            else:
                # Unit calls spend the project's units pool, apart from its search bucket: search goes on.
                self._pool.park_units(key.project, next_reset(now), now)
                logger.warning(
                    "units pool spent: the project's unit calls (channel reads, enrichment) wait for the reset",
                    extra={"key": key.fingerprint, "project": key.project, "method": method},
                )
            return "next_key"
        if error.kind in (ErrorKind.KEY_INVALID, ErrorKind.KEY_FORBIDDEN):
            self._pool.disable(key, f"{error.status} {error.reason}: {error.message[:200]}", now)
            return "next_key"
        if error.kind in (ErrorKind.RATE_LIMITED, ErrorKind.TRANSIENT):
            return "retry"
        if error.kind is ErrorKind.NOT_FOUND:
            return "give_up"
        if error.kind is ErrorKind.BAD_REQUEST:
            logger.error("YouTube refused our request; not retried", extra={"method": method, "error": str(error)})
        return "give_up"

    async def _flush(self, token: int) -> None:
        """Persist key state changes at once; plain spend goes out with the query's state."""
        if self._pool.urgent:
            await self._store.save_keys(self._pool.take_dirty(self._clock.now()), token)
