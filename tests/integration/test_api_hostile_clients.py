"""Hostile HTTP clients against the API on a real socket: each is refused with a 4xx, never a 5xx or a hang.

Requests go out as raw bytes (no client library tidies a path or refuses an oversized line), to
the app served by aiohttp's AppRunner on a loopback port — and, for the limits themselves, to
`python -m services.api` with one worker and with two, which must apply the same limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from elasticsearch import AsyncElasticsearch
from pymongo.asynchronous.database import AsyncDatabase

from services.api.app import MAX_HEADERS, MAX_REQUEST_LINE_BYTES, create_app
from services.api.openapi import VIEWER_DIR
from services.common.settings import PROJECT_ROOT, StackSettings
from tests.conftest import free_port
from tests.integration.api_support import api_settings, prepare_stores, served_api

IDLE_TIMEOUT_SECONDS = 2.0
# How long any single exchange may take before it counts as a hang (the machine is shared and slow).
ANSWER_WITHIN_SECONDS = 15.0
NORMAL = b"GET /api/v1/videos?limit=1 HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n"


@dataclass
class Answer:
    status: int | None  # None: the server closed the connection without answering
    head: str
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


async def exchange(port: int, data: bytes, *, within: float = ANSWER_WITHIN_SECONDS) -> Answer:
    """Send raw bytes, read until the server closes; a server that neither answers nor closes fails."""
    loop = asyncio.get_running_loop()
    with socket.socket() as sock:
        sock.setblocking(False)
        received = bytearray()
        try:
            async with asyncio.timeout(within):
                await loop.sock_connect(sock, ("127.0.0.1", port))
                # The server may refuse and close before reading everything: that is its right.
                with contextlib.suppress(ConnectionError):
                    await loop.sock_sendall(sock, data)
                while True:
                    try:
                        chunk = await loop.sock_recv(sock, 1 << 16)
                    except ConnectionError:
                        break
                    if not chunk:
                        break
                    received += chunk
        except TimeoutError:
            pytest.fail(f"no answer and no close within {within}s (got {bytes(received[:200])!r})")
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split(" ")
    status = int(parts[1]) if len(parts) > 1 and parts[0].startswith("HTTP/1.") and parts[1].isdigit() else None
    return Answer(status, head.decode("latin-1"), body)


def request(target: bytes, *headers: bytes, method: bytes = b"GET") -> bytes:
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: api", b"Connection: close", *headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def refused(answer: Answer) -> bool:
    return answer.status is not None and 400 <= answer.status < 500


async def assert_still_serving(port: int) -> None:
    answer = await exchange(port, NORMAL)
    assert answer.status == 200, answer.head
    assert "items" in answer.json


@pytest.fixture
async def api_port(
    stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> AsyncIterator[int]:
    await prepare_stores(mongo_db, es, es_alias)
    settings = api_settings(
        mongodb_url=stack.mongodb_url,
        mongodb_database=mongo_db.name,
        elasticsearch_url=stack.elasticsearch_url,
        elasticsearch_index=es_alias,
        api_idle_timeout_seconds=IDLE_TIMEOUT_SECONDS,
    )
    runner = web.AppRunner(create_app(settings), access_log=None, shutdown_timeout=5)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield port
    finally:
        await runner.cleanup()


# Oversized requests --------------------------------------------------------------------------

MEGABYTE = 1 << 20


@pytest.mark.parametrize(
    "target",
    [
        b"/api/v1/videos?q=" + b"a" * MEGABYTE,
        b"/api/v1/videos?" + b"&".join([b"channel_id=UC" + b"x" * 22] * (MEGABYTE // 36)),
        b"/" + b"a" * MEGABYTE,
    ],
    ids=["1-MB-q", "1-MB-of-parameters", "1-MB-path"],
)
async def test_a_megabyte_request_line_is_refused(api_port: int, target: bytes) -> None:
    answer = await exchange(api_port, request(target))
    assert answer.status == 400, answer.head  # aiohttp's plain 400: the line is over the limit
    await assert_still_serving(api_port)


async def test_a_long_line_within_the_limit_reaches_the_api_and_gets_its_json_400(api_port: int) -> None:
    # The limit is the parser's, not a crash: just under it the API itself answers (q is over 200 characters).
    answer = await exchange(api_port, request(b"/api/v1/videos?q=" + b"a" * (MAX_REQUEST_LINE_BYTES - 100)))
    assert answer.status == 400, answer.head
    assert answer.json["error"]["parameter"] == "q"


@pytest.mark.parametrize(
    "headers",
    [
        [b"X-Flood-%d: v" % n for n in range(MAX_HEADERS + 10)],
        [b"X-Flood-%d: v" % n for n in range(10_000)],
        [b"X-Huge: " + b"v" * MEGABYTE],
        [b"X-" + b"n" * MEGABYTE + b": v"],
        [b"Cookie: " + b"c" * 100_000],
    ],
    ids=["just-too-many-headers", "10000-headers", "1-MB-value", "1-MB-name", "100-kB-cookie"],
)
async def test_header_floods_are_refused(api_port: int, headers: list[bytes]) -> None:
    answer = await exchange(api_port, request(b"/api/v1/videos", *headers))
    assert answer.status == 400, answer.head
    await assert_still_serving(api_port)


async def test_a_browser_sized_set_of_headers_is_served(api_port: int) -> None:
    headers = [b"X-Extra-%d: %s" % (n, b"v" * 200) for n in range(MAX_HEADERS - 10)]
    answer = await exchange(api_port, request(b"/api/v1/videos?limit=1", *headers))
    assert answer.status == 200, answer.head


@pytest.mark.parametrize(
    ("method", "headers", "body", "status", "code"),
    [
        (b"GET", [b"Content-Length: 1000000000000"], b"x" * 10, 400, "invalid_request"),
        (b"GET", [b"Content-Length: 5"], b"hello", 400, "invalid_request"),
        (b"GET", [b"Transfer-Encoding: chunked"], b"100000\r\n" + b"x" * 1000, 400, "invalid_request"),
        (b"HEAD", [b"Content-Length: 1000000000000"], b"", 400, None),  # (no body in an answer to HEAD)
        (b"POST", [b"Content-Length: 1000000000000"], b"{" * 1000, 405, "method_not_allowed"),
        (b"GET", [b"Content-Length: 99999999999999999999999999999"], b"", 400, None),  # the parser's plain 400
        (b"GET", [b"Content-Length: 5", b"Content-Length: 7"], b"hello", 400, None),
    ],
    ids=["get-huge-length", "get-small-body", "get-chunked", "head-huge-length", "post", "overflow", "two-lengths"],
)
async def test_request_bodies_are_refused_without_reading_them(
    api_port: int, method: bytes, headers: list[bytes], body: bytes, status: int, code: str | None
) -> None:
    started = time.monotonic()
    answer = await exchange(api_port, request(b"/api/v1/videos", *headers, method=method) + body)
    assert answer.status == status, answer.head
    if code is not None:
        assert answer.json["error"]["code"] == code
    # Answered and closed promptly: the body that never comes is not waited for.
    assert time.monotonic() - started < 10
    await assert_still_serving(api_port)


# Slow clients --------------------------------------------------------------------------------


async def slow_client(port: int, opening: bytes, drip: bytes) -> float:
    """Send ``opening``, then one byte of ``drip`` every 0.25 s; how long until the server hung up."""
    loop = asyncio.get_running_loop()
    with socket.socket() as sock:
        sock.setblocking(False)
        # The clock starts before connecting: the server's timer cannot start earlier than that,
        # whereas this loop may resume from the connect well after the server accepted.
        started = time.monotonic()
        await loop.sock_connect(sock, ("127.0.0.1", port))
        await loop.sock_sendall(sock, opening)

        async def dripping() -> None:
            for byte in drip * 1000:
                await asyncio.sleep(0.25)
                await loop.sock_sendall(sock, bytes([byte]))

        async def hung_up() -> None:
            with contextlib.suppress(ConnectionError):
                while await loop.sock_recv(sock, 1024):
                    pass

        drip_task = asyncio.create_task(dripping())
        try:
            async with asyncio.timeout(IDLE_TIMEOUT_SECONDS + ANSWER_WITHIN_SECONDS):
                await hung_up()
        except TimeoutError:
            pytest.fail("a slow client was not cut off")
        finally:
            drip_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await drip_task
        return time.monotonic() - started


SLOW_OPENINGS = [
    (b"GET /api/v1/videos?q=", b"a"),  # a request line that never ends
    (b"GET /api/v1/videos HTTP/1.1\r\nHost: api\r\nX-Slow: ", b"z"),  # headers that never end
    (b"", b""),  # connected, silent
]


async def test_many_slow_clients_are_cut_by_the_timeout_while_others_are_served(api_port: int) -> None:
    count = 120
    slow = [asyncio.create_task(slow_client(api_port, *SLOW_OPENINGS[n % len(SLOW_OPENINGS)])) for n in range(count)]
    # Meanwhile a normal client is answered at once, again and again.
    served = 0
    while not all(task.done() for task in slow[: count // 2]) or served < 10:
        started = time.monotonic()
        await assert_still_serving(api_port)
        assert time.monotonic() - started < 5, "a normal request waited behind the slow clients"
        served += 1
    cut_after = await asyncio.gather(*slow)
    # The cut came from the idle timeout (not sooner), even for those still sending a byte at a time.
    assert min(cut_after) >= IDLE_TIMEOUT_SECONDS - 0.1, sorted(cut_after)[:5]
    assert max(cut_after) < IDLE_TIMEOUT_SECONDS + 10, sorted(cut_after)[-5:]
    await assert_still_serving(api_port)


async def test_an_idle_connection_is_closed_and_a_kept_alive_one_serves_several_requests(api_port: int) -> None:
    loop = asyncio.get_running_loop()
    keep_alive = NORMAL.replace(b"Connection: close", b"Connection: keep-alive")
    with socket.socket() as sock:
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", api_port))
        for _ in range(3):  # the timeout does not cut a client that keeps asking
            await loop.sock_sendall(sock, keep_alive)
            async with asyncio.timeout(ANSWER_WITHIN_SECONDS):
                answer = await read_one_response(sock)
            assert answer.startswith(b"HTTP/1.1 200"), answer[:100]
        started = time.monotonic()
        async with asyncio.timeout(IDLE_TIMEOUT_SECONDS + ANSWER_WITHIN_SECONDS):
            assert await loop.sock_recv(sock, 1024) == b""  # then, idle, it is closed
        assert time.monotonic() - started >= IDLE_TIMEOUT_SECONDS - 0.1


async def read_one_response(sock: socket.socket) -> bytes:
    """One whole response (head and Content-Length body) from a kept-alive connection."""
    loop = asyncio.get_running_loop()
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = await loop.sock_recv(sock, 1 << 16)
        assert chunk, f"closed mid-response: {received[:200]!r}"
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = await loop.sock_recv(sock, 1 << 16)
        assert chunk, "closed mid-body"
        body += chunk
    assert len(body) == length, "more than one response"
    return head + b"\r\n\r\n" + body


# Paths and encodings -------------------------------------------------------------------------


def _secrets() -> dict[str, bytes]:
    """Files a traversal would aim at, with a piece of their content that must never be served."""
    files = {
        "etc/passwd": b"root:",
        "services/api/app.py": b"def create_app",
        "viewer's neighbour": (VIEWER_DIR.parent / "@scarf" / "scarf" / "package.json").read_bytes()[:40],
    }
    secret_file = PROJECT_ROOT / ".local" / "cursor_secret"
    if secret_file.is_file():
        files["cursor_secret"] = secret_file.read_bytes()
    return files


TRAVERSALS = [
    b"/static/../../../../etc/passwd",
    b"/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    b"/static/..%2f..%2f..%2f..%2fetc%2fpasswd",
    b"/../../../../etc/passwd",
    b"//etc/passwd",
    b"/assets/v/../../services/api/app.py",
    b"/assets/v/%2e%2e/%2e%2e/services/api/app.py",
    b"/assets/v/..%2f..%2f..%2fservices%2fapi%2fapp.py",
    b"/assets/v/%252e%252e/%252e%252e/services/api/app.py",
    b"/assets/v/..\\..\\..\\services\\api\\app.py",
    b"/assets/v/%2e%2e%5c%2e%2e%5cservices%5capi%5capp.py",
    b"/assets/v//etc/passwd",
    b"/assets/v/%2fetc%2fpasswd",
    b"/api/docs/assets/../@scarf/scarf/package.json",
    b"/api/docs/assets/%2e%2e/@scarf/scarf/package.json",
    b"/api/docs/assets/..%2f@scarf%2fscarf%2fpackage.json",
    b"/api/docs/assets/%2e%2e%2f%2e%2e%2f%2e%2e%2fcursor_secret",
    b"/api/docs/assets/../../../cursor_secret",
    b"/api/docs/assets/..%5c..%5c..%5ccursor_secret",
    b"/api/docs/assets/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    b"/api/docs/assets//etc/passwd",
    b"/api/docs/assets/%2fetc%2fpasswd",
    b"/api/docs/assets/swagger-ui.css%00../../../cursor_secret",
    b"/api/docs/assets/" + b"../" * 40 + b"etc/passwd",
]


async def test_static_files_cannot_be_left_by_any_spelling_of_dot_dot(api_port: int) -> None:
    assert (await exchange(api_port, request(b"/api/docs/assets/swagger-ui.css"))).status == 200  # the route is there
    secrets = _secrets()
    for target in TRAVERSALS:
        answer = await exchange(api_port, request(target))
        assert refused(answer), (target, answer.head)
        for name, content in secrets.items():
            assert content not in answer.body, f"{target!r} served {name}"
    await assert_still_serving(api_port)


@pytest.mark.parametrize(
    "target",
    [
        b"/api/v1/videos?q=%ff%fe",
        b"/api/v1/videos?q=caf%e9",
        b"/api/v1/videos?%ff=1",
        b"/api/v1/videos?q=%ed%a0%80",  # a lone surrogate, encoded
        b"/api/v1/videos?q=\xff\xfe",  # raw bytes, not even percent-encoded
        b"/api/v1/videos/%ff%ff%ff%ff%ff%ff%ff%ff%ff%ff%ff",
        b"/api/v1/videos/\xc3\x28\xa0\xa1",
        b"/api/v1/channels?q=%c0%af",  # overlong "/"
        b"/api/v1/histogram?q=%f4%90%80%80",  # above U+10FFFF
    ],
)
async def test_invalid_utf_8_is_a_400_or_404_never_a_500(api_port: int, target: bytes) -> None:
    answer = await exchange(api_port, request(target))
    assert answer.status in (400, 404), answer.head
    if b"?" in target and answer.body.startswith(b"{"):
        assert answer.json["error"]["code"] == "invalid_parameter"


# `python -m services.api` applies the limits, with one worker and with several ----------------


@pytest.mark.parametrize("workers", [1, 2])
async def test_the_served_api_applies_the_limits_in_every_worker(
    workers: int,
    stack: StackSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    es_alias: str,
    tmp_path: Path,
) -> None:
    await prepare_stores(mongo_db, es, es_alias)
    async with served_api(
        stack,
        mongo_db.name,
        es_alias,
        tmp_path,
        API_WORKERS=str(workers),
        API_IDLE_TIMEOUT_SECONDS=str(IDLE_TIMEOUT_SECONDS),
        API_CORS_ORIGINS="https://dash.example.org",
    ) as api:
        port = api.port
        # New connections spread over the workers (SO_REUSEPORT): each check goes out several times.
        for _ in range(3 * workers):
            assert (await exchange(port, request(b"/api/v1/videos?q=" + b"a" * MEGABYTE))).status == 400
            flood = [b"X-Flood-%d: v" % n for n in range(MAX_HEADERS + 10)]
            assert (await exchange(port, request(b"/api/v1/videos", *flood))).status == 400
            body = await exchange(port, request(b"/api/v1/videos", b"Content-Length: 1000000000000") + b"x")
            assert body.status == 400 and body.json["error"]["code"] == "invalid_request", body.head
            normal = await exchange(port, request(b"/api/v1/videos?limit=1", b"Origin: https://dash.example.org"))
            assert normal.status == 200, normal.head
            assert "X-Content-Type-Options: nosniff" in normal.head
            assert "Access-Control-Allow-Origin: https://dash.example.org" in normal.head
            foreign = await exchange(port, request(b"/api/v1/videos?limit=1", b"Origin: https://evil.example.net"))
            assert foreign.status == 200 and "Access-Control-Allow-Origin" not in foreign.head
        cut_after = await asyncio.gather(
            *(slow_client(port, *SLOW_OPENINGS[n % len(SLOW_OPENINGS)]) for n in range(6 * workers))
        )
        assert min(cut_after) >= IDLE_TIMEOUT_SECONDS - 0.1, cut_after
        assert max(cut_after) < IDLE_TIMEOUT_SECONDS + 10, cut_after
    text = api.log.read_text()
    assert "Traceback" not in text, text[-3000:]
    # The parser's refusals are one line each, not an ERROR with a traceback per hostile request.
    assert "refused a malformed request: 400" in text, text[-3000:]
    assert " ERROR " not in text, text[-3000:]
