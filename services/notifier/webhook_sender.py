"""Sends one signed webhook POST and says what came of it; at most WEBHOOK_CONCURRENCY_PER_HOST per host.

Before every POST the URL is checked again (services/common/webhook_target.py) and the connection
goes to one of the addresses that check returned, never to a second DNS answer: a name that turns
to a private address after it was saved cannot reach it. Redirects are not followed, the answer's
body is read at most 64 KiB and ignored, and the whole POST (connection, request, answer) has
WEBHOOK_TIMEOUT_SECONDS.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import socket
import time
from collections.abc import AsyncIterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from services.common.webhook_target import Resolver, WebhookTargetRefused, resolve_webhook_target, system_resolver
from services.notifier.webhook_signature import SIGNATURE_HEADER, signature_header

logger = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 64 * 1024
USER_AGENT = "tubewatch-webhooks/1"
DELIVERY_HEADER = "X-Tubewatch-Delivery"

# The addresses the current POST was checked to go to; the connector's resolver answers with them.
_CHECKED_ADDRESSES: ContextVar[list[str]] = ContextVar("checked_addresses")


class Outcome(enum.Enum):
    DELIVERED = "delivered"  # 2xx
    RETRY = "retry"  # 429, 5xx, a timeout, a connection error
    GONE = "gone"  # 410: the receiver says the webhook is gone
    REJECTED = "rejected"  # any other answer, a redirect, a refused address: retrying cannot help


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    # What happened, for logs and dead letters: "503 Service Unavailable", "timeout after 5s", …
    detail: str
    # Why a REJECTED one is dead-lettered: "rejected" (an answer), "redirect", "refused" (the address).
    cause: str = ""


def host_key(url: str) -> str:
    """Where the per-host limit counts: the URL's host name and port."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{(parts.hostname or '').lower()}:{port}"


def classify(status: int, reason: str) -> SendResult:
    detail = f"{status} {reason}".strip()
    if 200 <= status < 300:
        return SendResult(Outcome.DELIVERED, detail)
    if status == 410:
        return SendResult(Outcome.GONE, detail)
    if status == 429 or status >= 500:
        return SendResult(Outcome.RETRY, detail)
    if 300 <= status < 400:
        return SendResult(Outcome.REJECTED, f"{detail}: redirects are not followed", cause="redirect")
    return SendResult(Outcome.REJECTED, detail, cause="rejected")


class _CheckedAddressResolver(AbstractResolver):
    """Answers the connector with the addresses the current POST's check returned, nothing else."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = _CHECKED_ADDRESSES.get(None)
        if not addresses:
            raise OSError(f"no checked address for {host}")
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            }
            for address in addresses
        ]

    async def close(self) -> None:
        return None


class HostSlots:
    """Per-host semaphores, and how many POSTs each host has in hand (sending or waiting for a slot)."""

    def __init__(self, per_host: int) -> None:
        self._per_host = per_host
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._held: dict[str, int] = {}

    def held(self, host: str) -> int:
        return self._held.get(host, 0)

    @contextlib.asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        semaphore = self._slots.setdefault(host, asyncio.Semaphore(self._per_host))
        self._held[host] = self._held.get(host, 0) + 1
        try:
            async with semaphore:
                yield
        finally:
            self._held[host] -= 1
            if not self._held[host]:
                # Nobody holds or waits for it: forget the host, so the maps do not grow without end.
                del self._held[host]
                del self._slots[host]


class WebhookSender:
    """One HTTP client session for every webhook; ``start`` before the first ``send``, ``close`` at the end."""

    def __init__(
        self,
        timeout_seconds: float,
        concurrency_per_host: int,
        allow_hosts: frozenset[str],
        resolver: Resolver = system_resolver,
    ) -> None:
        self._timeout_seconds = timeout_seconds
        self._allow_hosts = allow_hosts
        self._resolver = resolver
        self.slots = HostSlots(concurrency_per_host)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            # No DNS cache: every POST connects to what its own check returned.
            resolver=_CheckedAddressResolver(),
            use_dns_cache=False,
            limit=0,  # the per-host slots limit what is in flight
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self._timeout_seconds),
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,  # never through a proxy the environment names: it would skip the address check
            headers={"User-Agent": USER_AGENT},
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, url: str, body: bytes, secrets: Sequence[str], log_extra: dict[str, Any]) -> SendResult:
        """POST ``body`` signed with ``secrets`` once a slot of its host is free; never raises for the receiver."""
        host = host_key(url)
        async with self.slots.slot(host):
            try:
                addresses = await resolve_webhook_target(url, self._allow_hosts, self._resolver)
            except WebhookTargetRefused as exc:
                return SendResult(Outcome.REJECTED, f"the webhook URL is refused: {exc}", cause="refused")
            return await self._post(url, addresses, body, secrets, log_extra | {"host": host})

    async def _post(
        self, url: str, addresses: list[str], body: bytes, secrets: Sequence[str], log_extra: dict[str, Any]
    ) -> SendResult:
        assert self._session is not None, "start() the sender first"
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature_header(secrets, int(time.time()), body),
            DELIVERY_HEADER: str(log_extra.get("delivery_id", "")),
        }
        token = _CHECKED_ADDRESSES.set(addresses)
        try:
            async with self._session.post(url, data=body, headers=headers, allow_redirects=False) as response:
                await _read_some(response)
                return classify(response.status, response.reason or "")
        except TimeoutError:
            return SendResult(Outcome.RETRY, f"no answer within {self._timeout_seconds:g}s")
        except aiohttp.ClientError as exc:
            logger.debug("webhook POST failed", extra=log_extra | {"error": type(exc).__name__})
            # The message of a connection error names the address, never the URL's path or query.
            return SendResult(Outcome.RETRY, f"{type(exc).__name__}: {_connection_error_text(exc)}")
        finally:
            _CHECKED_ADDRESSES.reset(token)


async def _read_some(response: aiohttp.ClientResponse) -> None:
    """Read (and drop) at most 64 KiB of the answer; a longer one's connection is closed, not reused."""
    read = 0
    while read < MAX_ANSWER_BYTES:
        chunk = await response.content.read(MAX_ANSWER_BYTES - read)
        if not chunk:
            return
        read += len(chunk)
    if not response.content.at_eof():
        response.close()


def _connection_error_text(exc: aiohttp.ClientError) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {exc.host}:{exc.port} ({exc.os_error.strerror or exc.os_error})"
    return str(exc)[:300] if not isinstance(exc, aiohttp.ClientResponseError) else exc.message[:300]
