"""The admin API's gate: off without ADMIN_TOKENS, a bearer token otherwise, failures slowed down.

Everything under ``/api/v1/admin/`` passes through ``admin_middleware``:

- ADMIN_TOKENS unset (or empty): 404 ``not_found`` saying how to turn the admin API on, for every
  path, existing or not, so a scan learns nothing from the difference.
- ``Authorization: Bearer <token>`` missing or not one of the tokens: 401 ``unauthorized``. The
  given token is compared with every configured one by ``hmac.compare_digest``, all of them every
  time, so the answer's timing says nothing about how close a guess was. The header is the only
  way in: no cookie is ever set or read (so no CSRF), and no token travels in a URL.
- After FAILURES_ALLOWED failures within FAILURE_WINDOW_SECONDS in this process, further failures
  answer 429 with ``Retry-After`` until the oldest of them leaves the window. The count is per
  process, not per client address, so a reverse proxy that makes every client one address does not
  lock every admin out; a request with a valid token is still served meanwhile (tokens of at least
  32 characters cannot be guessed at ten tries a minute, so nothing is gained by refusing it).

Which token passed is kept on the request as its label (``admin_actor``) for the audit log.
Neither the token nor the header is ever logged. MongoDB unavailable behind an admin route
answers 503 ``unavailable``: the sources live nowhere else.
"""

from __future__ import annotations

import hmac
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web
from pymongo.errors import PyMongoError

from services.api.admin_tokens import AdminToken
from services.api.cors import ADMIN_PATH_PREFIX
from services.api.errors import ApiError

logger = logging.getLogger(__name__)

FAILURES_ALLOWED = 10
FAILURE_WINDOW_SECONDS = 60.0
ADMIN_ACTOR = web.RequestKey("admin_actor", str)
DISABLED_MESSAGE = (
    "the admin API is off: set ADMIN_TOKENS to label:token pairs (tokens of at least 32 characters) and restart"
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FailureThrottle:
    """Failed authentications of this process over the last window, oldest first."""

    def __init__(
        self,
        allowed: int = FAILURES_ALLOWED,
        window: float = FAILURE_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._allowed = allowed
        self._window = window
        self._clock = clock
        self._failures: deque[float] = deque()

    def _prune(self, now: float) -> None:
        while self._failures and self._failures[0] <= now - self._window:
            self._failures.popleft()

    def retry_after(self) -> int | None:
        """Seconds until one more failure would be answered 401 again, or None while it would be now."""
        now = self._clock()
        self._prune(now)
        if len(self._failures) < self._allowed:
            return None
        return max(1, math.ceil(self._failures[0] + self._window - now))

    def record_failure(self) -> None:
        now = self._clock()
        self._prune(now)
        self._failures.append(now)


def token_label(tokens: Sequence[AdminToken], authorization: str | None) -> str | None:
    """The label of the token an Authorization header carries, or None (compared in constant time)."""
    scheme, _, given = (authorization or "").partition(" ")
    candidate = given.strip().encode() if scheme.lower() == "bearer" else b""
    found: str | None = None
    for token in tokens:
        # Every token is compared, even after a match: the time taken does not depend on which matched.
        if hmac.compare_digest(candidate, token.secret.encode()) and candidate:
            found = token.label
    return found


def admin_middleware(tokens: Sequence[AdminToken], throttle: FailureThrottle | None = None) -> Any:
    throttle = throttle or FailureThrottle()

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(ADMIN_PATH_PREFIX):
            return await handler(request)
        if not tokens:
            raise ApiError(404, "not_found", DISABLED_MESSAGE)
        label = token_label(tokens, request.headers.get("Authorization"))
        if label is None:
            wait = throttle.retry_after()
            if wait is not None:
                raise web.HTTPTooManyRequests(headers={"Retry-After": str(wait)})
            throttle.record_failure()
            logger.warning(
                "admin request refused: missing or unknown token",
                extra={"method": request.method, "path": request.path},
            )
            raise web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Bearer realm="tubewatch admin"'})
        request[ADMIN_ACTOR] = label
        try:
            return await handler(request)
        except PyMongoError as exc:
            # The sources live in MongoDB alone: without it the admin API has nothing to answer from.
            logger.warning(
                "admin request: mongodb unavailable",
                extra={"path": request.path, "error": f"{type(exc).__name__}: {exc}"},
            )
            raise ApiError(
                503, "unavailable", "MongoDB is unavailable: the sources cannot be read or changed"
            ) from None

    return middleware
