"""What the webhook sender reads of a receiver's answer: its status, and at most 64 KiB of its body.

A real aiohttp server on loopback answers; the sender is the notifier's own, as its delivery
worker uses it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from services.notifier.webhook_sender import MAX_ANSWER_BYTES, Outcome, WebhookSender
from tests.conftest import free_port

HOST = "127.0.0.1"
CHUNK = b"x" * 16_384
TIMEOUT_SECONDS = 5.0


class EndlessAnswers:
    """Answers 200 with a body that never ends (or ``limit`` bytes), counting what it managed to send."""

    def __init__(self) -> None:
        self.sent = 0
        self.connection_dropped = asyncio.Event()
        self.limit: int | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
        if self.limit is not None:
            response.content_length = self.limit
        await response.prepare(request)
        written = 0
        try:
            while self.limit is None or written < self.limit:
                chunk = CHUNK if self.limit is None else CHUNK[: self.limit - written]
                await response.write(chunk)
                written += len(chunk)
                self.sent += len(chunk)
        except (ConnectionResetError, ConnectionError):
            self.connection_dropped.set()
            raise
        await response.write_eof()
        return response


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[EndlessAnswers, str]]:
    answers = EndlessAnswers()
    app = web.Application()
    app.router.add_post("/hook", answers.handle)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, HOST, port)
    await site.start()
    try:
        yield answers, f"http://{HOST}:{port}/hook"
    finally:
        await runner.cleanup()


@pytest.fixture
async def sender() -> AsyncIterator[WebhookSender]:
    webhook_sender = WebhookSender(TIMEOUT_SECONDS, concurrency_per_host=4, allow_hosts=frozenset({HOST}))
    await webhook_sender.start()
    try:
        yield webhook_sender
    finally:
        await webhook_sender.close()


async def test_an_endless_answer_is_delivered_after_64_kib_and_its_connection_closed(
    receiver: tuple[EndlessAnswers, str], sender: WebhookSender
) -> None:
    answers, url = receiver
    # Reading the whole body would take until the timeout, which would make this a retry.
    result = await sender.send(url, b'{"delivery_id": "d1"}', ["secret"], {"delivery_id": "d1"})
    assert (result.outcome, result.detail) == (Outcome.DELIVERED, "200 OK")
    # The sender hung up instead of draining: the receiver's next writes fail.
    await asyncio.wait_for(answers.connection_dropped.wait(), TIMEOUT_SECONDS)
    assert answers.sent >= MAX_ANSWER_BYTES


async def test_an_answer_within_64_kib_is_read_to_its_end_and_delivered(
    receiver: tuple[EndlessAnswers, str], sender: WebhookSender
) -> None:
    answers, url = receiver
    answers.limit = MAX_ANSWER_BYTES
    for delivery in ("d1", "d2"):
        result = await sender.send(url, b"{}", ["secret"], {"delivery_id": delivery})
        assert result.outcome is Outcome.DELIVERED
    assert answers.sent == 2 * MAX_ANSWER_BYTES
    assert not answers.connection_dropped.is_set()
