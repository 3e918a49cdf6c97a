"""The indexer's inbox cuts batches by size or by maximum wait, and stops waiting on ``stop``."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

from aiormq.abc import DeliveredMessage

from services.indexer.inbox import Inbox


def message(n: int, *, closed: bool = False) -> DeliveredMessage:
    return cast(DeliveredMessage, SimpleNamespace(body=str(n).encode(), channel=SimpleNamespace(is_closed=closed)))


def bodies(messages: list[Any]) -> list[bytes]:
    return [m.body for m in messages]


async def test_a_full_batch_is_cut_at_once_and_the_rest_waits_for_the_next() -> None:
    inbox = Inbox(asyncio.Event())
    for n in range(5):
        await inbox.deliver(message(n))
    batch = await asyncio.wait_for(inbox.next_batch(3, max_wait_seconds=60), timeout=1)
    assert bodies(batch) == [b"0", b"1", b"2"]
    assert len(inbox) == 2


async def test_a_short_batch_is_cut_after_the_maximum_wait() -> None:
    inbox = Inbox(asyncio.Event())
    await inbox.deliver(message(0))
    loop = asyncio.get_running_loop()
    started = loop.time()
    batch = await inbox.next_batch(10, max_wait_seconds=0.05)
    assert bodies(batch) == [b"0"]
    assert loop.time() - started >= 0.04


async def test_the_batch_is_cut_as_soon_as_it_is_full() -> None:
    inbox = Inbox(asyncio.Event())
    collecting = asyncio.ensure_future(inbox.next_batch(3, max_wait_seconds=60))
    for n in range(3):
        await asyncio.sleep(0)
        await inbox.deliver(message(n))
    assert bodies(await asyncio.wait_for(collecting, timeout=1)) == [b"0", b"1", b"2"]


async def test_stop_ends_the_wait_of_an_empty_inbox_with_no_batch() -> None:
    stopping = asyncio.Event()
    inbox = Inbox(stopping)
    collecting = asyncio.ensure_future(inbox.next_batch(3, max_wait_seconds=60))
    await asyncio.sleep(0.01)
    stopping.set()
    assert await asyncio.wait_for(collecting, timeout=1) == []


async def test_stop_still_hands_over_what_was_delivered() -> None:
    stopping = asyncio.Event()
    inbox = Inbox(stopping)
    await inbox.deliver(message(0))
    stopping.set()
    assert bodies(await asyncio.wait_for(inbox.next_batch(3, max_wait_seconds=60), timeout=1)) == [b"0"]


async def test_deliveries_of_a_closed_channel_are_dropped() -> None:
    inbox = Inbox(asyncio.Event())
    await inbox.deliver(message(0, closed=True))
    await inbox.deliver(message(1))
    inbox.drop_closed()
    assert bodies(await inbox.next_batch(5, max_wait_seconds=0)) == [b"1"]
