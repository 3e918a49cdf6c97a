"""Deliveries waiting to be batched, and the cutting of the next batch: by size or by maximum wait.

One wake-up per batch: a delivery only signals the collector when the inbox holds what it waits for
(at thousands of messages a second, a wake-up per message costs more than the batching saves).
"""

from __future__ import annotations

import asyncio
import collections

from aiormq.abc import DeliveredMessage


class Inbox:
    def __init__(self, stopping: asyncio.Event) -> None:
        self._messages: collections.deque[DeliveredMessage] = collections.deque()
        self._arrived = asyncio.Event()
        self._wake_at = 1
        self._stopping = stopping

    def __len__(self) -> int:
        return len(self._messages)

    async def deliver(self, message: DeliveredMessage) -> None:
        """The consumer's callback: one message from the broker."""
        self._messages.append(message)
        if len(self._messages) >= self._wake_at:
            self._arrived.set()

    def drop_closed(self) -> None:
        """Forget deliveries of a channel that died: they are void (the broker requeued them)."""
        self._messages = collections.deque(m for m in self._messages if not m.channel.is_closed)

    async def next_batch(self, size: int, max_wait_seconds: float) -> list[DeliveredMessage]:
        """Wait for a first message, then up to ``size`` messages or ``max_wait_seconds``.

        Returns what the inbox holds by then, at most ``size``; empty when ``stopping`` was set first.
        """
        if not self._messages and not await self._wait_for(1, None):
            return []
        if len(self._messages) < size:
            deadline = asyncio.get_running_loop().time() + max_wait_seconds
            await self._wait_for(size, deadline)
        return [self._messages.popleft() for _ in range(min(size, len(self._messages)))]

    async def _wait_for(self, count: int, deadline: float | None) -> bool:
        """Until the inbox holds ``count`` messages, ``deadline`` passes or ``stopping``; False when stopped."""
        self._wake_at = count
        self._arrived.clear()
        if len(self._messages) < count:
            timeout = None if deadline is None else max(0.0, deadline - asyncio.get_running_loop().time())
            waiters = {asyncio.ensure_future(self._arrived.wait()), asyncio.ensure_future(self._stopping.wait())}
            _, pending = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            for waiter in pending:
                waiter.cancel()
        self._wake_at = 1
        return bool(self._messages) or not self._stopping.is_set()
