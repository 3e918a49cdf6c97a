"""A thin client for search.list, videos.list, channels.list and playlistItems.list that never leaks an API key.

The key travels in the ``X-Goog-Api-Key`` header (Google's documented alternative to the ``key``
query parameter), so no URL the client builds, and no exception aiohttp raises with its URL,
contains it. Transport failures are re-raised key-free ``from None`` all the same, redirects are
never followed (the header would travel to the redirect's host), and an error body that somehow
echoes the key is scrubbed before it becomes an exception message.
"""

from __future__ import annotations

import enum
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from services.fetcher.settings import KeyEntry

logger = logging.getLogger(__name__)

API_KEY_HEADER = "X-Goog-Api-Key"
# A page of 50 results is well under 100 KB; more than this is not an answer worth the memory.
MAX_BODY_BYTES = 16 * 1024 * 1024


class ErrorKind(enum.Enum):
    """What an error answer means for the fetcher."""

    DAILY_QUOTA = "daily_quota"  # a daily limit is spent: park the project until midnight Pacific time
    RATE_LIMITED = "rate_limited"  # short-term limit: back off and retry with the same key
    TRANSIENT = "transient"  # 5xx, timeouts, dropped connections: back off and retry
    KEY_INVALID = "key_invalid"  # disable the key
    KEY_FORBIDDEN = "key_forbidden"  # the API is off for the key's project, or no key
    INVALID_PAGE_TOKEN = "invalid_page_token"  # noqa: S105 (a label, not a secret): restart at page one
    NOT_FOUND = "not_found"  # 404: the playlist (or channel) asked for does not exist
    BAD_REQUEST = "bad_request"  # our request is wrong; never retried


_DAILY_REASONS = frozenset({"quotaExceeded", "dailyLimitExceeded", "dailyLimitExceededUnreg"})
_RATE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
_INVALID_KEY_REASONS = frozenset({"API_KEY_INVALID", "keyInvalid", "keyExpired", "API_KEY_EXPIRED"})
_NOT_FOUND_REASONS = frozenset({"playlistNotFound", "channelNotFound", "notFound"})
_FORBIDDEN_REASONS = frozenset({"accessNotConfigured", "SERVICE_DISABLED", "forbidden", "ipRefererBlocked"})


@dataclass
class YouTubeApiError(Exception):
    """YouTube answered with an error body."""

    status: int
    kind: ErrorKind
    reasons: tuple[str, ...]
    message: str
    body: dict[str, Any] = field(repr=False)

    @property
    def reason(self) -> str:
        return self.reasons[0] if self.reasons else "unknown"

    def __str__(self) -> str:
        return f"YouTube API error {self.status} {self.reason} ({self.kind.value}): {self.message[:300]}"


class YouTubeTransportError(Exception):
    """No usable answer: connection failure, timeout, redirect or a body that is not JSON."""


def classify(status: int, body: dict[str, Any]) -> YouTubeApiError:
    """Turn an error answer into what the fetcher must do about it.

    The status code alone is not enough: the daily search limit arrives as a 429
    ``rateLimitExceeded`` whose only difference from a short-term limit is "per day" in its text.
    """
    error = body.get("error")
    error = error if isinstance(error, dict) else {}
    items = [e for e in error.get("errors", []) if isinstance(e, dict)]
    details = [d for d in error.get("details", []) if isinstance(d, dict)]
    reasons = tuple(str(r) for r in [*(e.get("reason") for e in items), *(d.get("reason") for d in details)] if r)
    message = str(error.get("message", ""))
    # The limit's name may sit in a message ("... per day") or in details metadata ("...PerDay...").
    texts = " ".join([message, *(str(e.get("message", "")) for e in items), json.dumps(details)]).lower()
    per_day = "per day" in texts or "perday" in texts
    found = set(reasons)
    decisive: frozenset[str] = frozenset()
    if found & _DAILY_REASONS or ((found & _RATE_REASONS or status == 429) and per_day):
        kind, decisive = ErrorKind.DAILY_QUOTA, _DAILY_REASONS | _RATE_REASONS
    elif found & _INVALID_KEY_REASONS:
        kind, decisive = ErrorKind.KEY_INVALID, _INVALID_KEY_REASONS
    elif found & _FORBIDDEN_REASONS or "unregistered callers" in texts:
        kind, decisive = ErrorKind.KEY_FORBIDDEN, _FORBIDDEN_REASONS
    elif found & _RATE_REASONS or status == 429:
        kind, decisive = ErrorKind.RATE_LIMITED, _RATE_REASONS
    elif "invalidPageToken" in found:
        kind = ErrorKind.INVALID_PAGE_TOKEN
    elif status == 404 or found & _NOT_FOUND_REASONS:
        kind, decisive = ErrorKind.NOT_FOUND, _NOT_FOUND_REASONS
    elif status >= 500 or "backendError" in found:
        kind = ErrorKind.TRANSIENT
    elif status == 400 and "API key" in message:
        kind = ErrorKind.KEY_INVALID
    else:
        kind = ErrorKind.BAD_REQUEST
    # The reason that decided, first: it is what logs and the key's state show.
    reasons = tuple(sorted(reasons, key=lambda r: r not in decisive))
    return YouTubeApiError(status=status, kind=kind, reasons=reasons, message=message, body=body)


class YouTubeClient:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, timeout_seconds: float) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)

    async def search(self, key: KeyEntry, params: dict[str, str]) -> dict[str, Any]:
        return await self._get("search", key, params)

    async def videos(self, key: KeyEntry, ids: list[str]) -> dict[str, Any]:
        params = {"part": "snippet,contentDetails,statistics", "id": ",".join(ids)}
        return await self._get("videos", key, params)

    async def channels(self, key: KeyEntry, params: dict[str, str]) -> dict[str, Any]:
        return await self._get("channels", key, params)

    async def playlist_items(self, key: KeyEntry, params: dict[str, str]) -> dict[str, Any]:
        return await self._get("playlistItems", key, params)

    async def _get(self, method: str, key: KeyEntry, params: dict[str, str]) -> dict[str, Any]:
        where = f"GET {method} (key {key.fingerprint})"
        try:
            async with self._session.get(
                f"{self._base_url}/{method}",
                params=params,
                headers={API_KEY_HEADER: key.secret},
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                status = response.status
                if 300 <= status < 400:
                    raise YouTubeTransportError(f"{where}: refused to follow a {status} redirect")
                if (response.content_length or 0) > MAX_BODY_BYTES:
                    raise YouTubeTransportError(f"{where}: HTTP {status} with a body over {MAX_BODY_BYTES} bytes")
                raw = bytearray()
                async for chunk in response.content.iter_chunked(1 << 16):
                    raw += chunk
                    if len(raw) > MAX_BODY_BYTES:
                        raise YouTubeTransportError(f"{where}: HTTP {status} with a body over {MAX_BODY_BYTES} bytes")
                try:
                    body = json.loads(raw)
                except ValueError:
                    raise YouTubeTransportError(f"{where}: HTTP {status} with a non-JSON body") from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            # `from None`: a chained aiohttp exception carries the request's URL and headers.
            raise YouTubeTransportError(f"{where}: {type(exc).__name__}") from None
        if not isinstance(body, dict):
            raise YouTubeTransportError(f"{where}: HTTP {status} with a body that is not an object")
        if status != 200:
            raise classify(status, _scrub(body, key.secret))
        logger.debug("youtube answered", extra={"method": method, "key": key.fingerprint, "status": status})
        return body


def _scrub(value: Any, secret: str) -> Any:
    """The body with every occurrence of the key masked (a proxy or gateway may echo requests)."""
    if isinstance(value, str):
        return value.replace(secret, "[key]")
    if isinstance(value, dict):
        return {k: _scrub(v, secret) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, secret) for v in value]
    return value
