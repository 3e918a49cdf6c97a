"""A thin client for YouTube's search.list that never leaks an API key.

aiohttp puts the full request URL (query string and key included) into its exceptions, so every
transport error is re-raised here as ``YouTubeTransportError`` with a key-free description, and
redirects are never followed (the key would travel to the redirect's host).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp


def key_fingerprint(key: str) -> str:
    """What logs, metrics and responses may show of a key."""
    return f"…{key[-4:]}" if len(key) > 8 else "…"


@dataclass
class YouTubeApiError(Exception):
    """YouTube answered with an error body."""

    status: int
    reason: str
    message: str
    body: dict[str, Any]

    def __str__(self) -> str:
        return f"YouTube API error {self.status} {self.reason}: {self.message[:300]}"


class YouTubeTransportError(Exception):
    """No usable answer: connection failure, timeout, redirect or a body that is not JSON."""


class YouTubeClient:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, timeout_seconds: float) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)

    async def search(self, key: str, params: dict[str, str]) -> dict[str, Any]:
        return await self._get("search", key, params)

    async def _get(self, method: str, key: str, params: dict[str, str]) -> dict[str, Any]:
        url = f"{self._base_url}/{method}"
        where = f"GET {method} (key {key_fingerprint(key)})"
        try:
            async with self._session.get(
                url, params={**params, "key": key}, timeout=self._timeout, allow_redirects=False
            ) as response:
                if 300 <= response.status < 400:
                    raise YouTubeTransportError(f"{where}: refused to follow a {response.status} redirect")
                try:
                    body = await response.json(content_type=None)
                except ValueError:
                    raise YouTubeTransportError(f"{where}: HTTP {response.status} with a non-JSON body") from None
                status = response.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            # `from None`: the chained aiohttp exception would carry the URL with the key.
            raise YouTubeTransportError(f"{where}: {type(exc).__name__}") from None
        if not isinstance(body, dict):
            raise YouTubeTransportError(f"{where}: HTTP {status} with a body that is not an object")
        if status != 200:
            raise _api_error(status, body)
        return body


def _api_error(status: int, body: dict[str, Any]) -> YouTubeApiError:
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    assert isinstance(error, dict)
    reasons = [e.get("reason", "") for e in error.get("errors", []) if isinstance(e, dict)]
    reasons += [d.get("reason", "") for d in error.get("details", []) if isinstance(d, dict)]
    reason = next((r for r in reasons if r), "unknown")
    return YouTubeApiError(status=status, reason=str(reason), message=str(error.get("message", "")), body=body)
