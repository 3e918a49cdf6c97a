"""A real webhook receiver for the tests: an aiohttp server on 127.0.0.1 that checks every signature.

It verifies ``X-Tubewatch-Signature`` the way a user's receiver would (its own HMAC code, not the
notifier's), records each request, and answers what the test asks: 200 by default, or the status a
test's ``answer`` callable returns for a request (and, for ``held_paths``, only once ``release`` is
set). Register each saved search's secret first
(``add_secret``); a request whose signature matches none of them, or whose timestamp is more than
five minutes off, is answered 401 and recorded in ``bad_signatures``.

    async with WebhookReceiver() as receiver:
        receiver.add_secret(saved_search_id, secret)
        url = receiver.url("/hooks/a")  # for the saved search's webhook (allow 127.0.0.1)
        ...
        await receiver.wait_delivered(expected_ids)
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

from tests.conftest import free_port
from tests.waiting import wait_until

HOST = "127.0.0.1"
SIGNATURE_TOLERANCE_SECONDS = 300


@dataclass(frozen=True)
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    signature_ok: bool

    @property
    def payload(self) -> dict[str, Any]:
        parsed = json.loads(self.body)
        assert isinstance(parsed, dict)
        return parsed

    @property
    def delivery_id(self) -> str:
        return str(self.payload["delivery_id"])


# Given a request (its signature already checked), the status to answer.
Answer = Callable[[ReceivedRequest], int]


@dataclass
class WebhookReceiver:
    answer: Answer = field(default=lambda request: 200)
    secrets: dict[str, list[str]] = field(default_factory=dict)
    requests: list[ReceivedRequest] = field(default_factory=list)
    bad_signatures: list[ReceivedRequest] = field(default_factory=list)
    # Requests to these paths wait (after their signature check) until ``release`` is set: a slow receiver.
    held_paths: set[str] = field(default_factory=set)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    # Requests being answered now, and the most there ever were at once, by path.
    in_flight: dict[str, int] = field(default_factory=dict)
    max_in_flight: dict[str, int] = field(default_factory=dict)
    port: int = 0
    _runner: web.AppRunner | None = None

    def add_secret(self, saved_search_id: str, secret: str) -> None:
        self.secrets.setdefault(saved_search_id, []).append(secret)

    def url(self, path: str = "/hook") -> str:
        return f"http://{HOST}:{self.port}{path}"

    @property
    def delivered(self) -> list[ReceivedRequest]:
        """The requests answered 2xx with a good signature."""
        return [r for r in self.requests if r.signature_ok and 200 <= r.status < 300]

    @property
    def delivered_ids(self) -> set[str]:
        return {r.delivery_id for r in self.delivered}

    async def wait_delivered(self, delivery_ids: Collection[str], within: float = 60) -> None:
        async def all_arrived() -> bool:
            return set(delivery_ids) <= self.delivered_ids

        await wait_until(all_arrived, within=within, what=f"{len(delivery_ids)} deliveries at the receiver")

    async def wait_in_flight(self, path: str, count: int, within: float = 30) -> None:
        async def enough() -> bool:
            return self.in_flight.get(path, 0) >= count

        await wait_until(enough, within=within, what=f"{count} requests held at {path}")

    def verify(self, headers: dict[str, str], body: bytes) -> bool:
        """A receiver's check: a fresh timestamp and one v1 matching a secret of the payload's saved search."""
        try:
            saved_search_id = json.loads(body)["saved_search"]["id"]
            fields = [part.split("=", 1) for part in headers["X-Tubewatch-Signature"].split(",")]
        except (KeyError, TypeError, ValueError):
            return False
        timestamps = [value for key, value in fields if key == "t"]
        offered = [value for key, value in fields if key == "v1"]
        if len(timestamps) != 1 or not timestamps[0].isdigit() or not offered:
            return False
        if abs(time.time() - int(timestamps[0])) > SIGNATURE_TOLERANCE_SECONDS:
            return False
        signed = timestamps[0].encode() + b"." + body
        expected = [
            hmac.new(s.encode(), signed, hashlib.sha256).hexdigest() for s in self.secrets.get(saved_search_id, [])
        ]
        return any(hmac.compare_digest(e, o) for e in expected for o in offered)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = dict(request.headers)
        ok = self.verify(headers, body)
        path = request.path
        self.in_flight[path] = self.in_flight.get(path, 0) + 1
        self.max_in_flight[path] = max(self.max_in_flight.get(path, 0), self.in_flight[path])
        try:
            if ok and path in self.held_paths:
                await self.release.wait()
        finally:
            self.in_flight[path] -= 1
        status = self.answer(ReceivedRequest(request.path, headers, body, 0, ok)) if ok else 401
        received = ReceivedRequest(request.path, headers, body, status, ok)
        self.requests.append(received)
        if not ok:
            self.bad_signatures.append(received)
        if 300 <= status < 400:
            return web.Response(status=status, headers={"Location": self.url("/redirected")})
        return web.Response(status=status, text="ok" if status < 300 else "no")

    async def __aenter__(self) -> WebhookReceiver:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, HOST, self.port).start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
