"""The queue of push notices: every fetcher process forwards the pushes it checked; only the leader reads it.

A push may reach any fetcher behind a load balancer, but fencing, the known videos and the units
budget live with the leader. So the receiver, once the signature holds, publishes a ``PushNotice``
(the subscription, its channel, the video ids and tombstones) to a durable queue with publisher
confirms, persistent, and answers the hub only then; the leader consumes it (``NoticeConsumer``)
while it leads. A notice the leader cannot read is dead-lettered to ``<queue>.dead``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from services.common.events import CHANNEL_ID_PATTERN, VIDEO_ID_PATTERN
from services.common.topology import QueueType, declare_durable_queue

logger = logging.getLogger(__name__)

# What one notice may name (a push is one entry; a flood may bundle a few).
MAX_IDS_PER_NOTICE = 200
# Notices the leader holds unacknowledged: one videos.list batch and then some.
PREFETCH = 200


def notice_queue_name(exchange: str) -> str:
    """The notice queue beside the videos exchange (``tubewatch.videos.websub``)."""
    return f"{exchange}.websub"


class NoticeTombstone(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    video_id: str = Field(pattern=VIDEO_ID_PATTERN)
    when: AwareDatetime | None = None


class PushNotice(BaseModel):
    """One checked push, as the receiver forwards it to the leader."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    subscription_id: str = Field(min_length=1, max_length=64)
    channel_id: str = Field(pattern=CHANNEL_ID_PATTERN)
    video_ids: list[str] = Field(default_factory=list, max_length=MAX_IDS_PER_NOTICE)
    tombstones: list[NoticeTombstone] = Field(default_factory=list, max_length=MAX_IDS_PER_NOTICE)
    received_at: AwareDatetime


async def declare_notice_queue(channel: AbstractChannel, name: str, queue_type: QueueType = "classic") -> AbstractQueue:
    """The durable notice queue and its dead-letter exchange and queue (``<name>.dead``)."""
    dead = f"{name}.dead"
    dead_exchange = await channel.declare_exchange(dead, aio_pika.ExchangeType.FANOUT, durable=True)
    dead_queue = await declare_durable_queue(channel, dead, queue_type)
    await dead_queue.bind(dead_exchange)
    return await declare_durable_queue(channel, name, queue_type, dead_letter_exchange=dead)


class NoticeForwarder:
    """The receiver's side: publish a notice, confirmed by the broker."""

    def __init__(self, channel: AbstractChannel, queue_name: str) -> None:
        self._channel = channel
        self._queue_name = queue_name

    @classmethod
    async def declare(
        cls, channel: AbstractChannel, queue_name: str, queue_type: QueueType = "classic"
    ) -> NoticeForwarder:
        await declare_notice_queue(channel, queue_name, queue_type)
        return cls(channel, queue_name)

    async def forward(self, notice: PushNotice) -> None:
        message = aio_pika.Message(
            body=notice.model_dump_json().encode(),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await self._channel.default_exchange.publish(message, routing_key=self._queue_name, mandatory=True)


# Handles a batch of notices; raising leaves them to be handled again (or dead-lettered, see below).
NoticeHandler = Callable[[Sequence[PushNotice]], Awaitable[None]]


class NoticeConsumer:
    """The leader's side: notices in batches (what has arrived, up to ``batch_ids`` video ids), acked once handled.

    A batch whose handler raises a ``requeue_on`` error (the lease lost) goes back to the queue for
    the next leader, and consuming stops; any other error dead-letters it (polling finds the videos).
    """

    def __init__(
        self,
        channel: AbstractChannel,
        queue_name: str,
        handler: NoticeHandler,
        *,
        batch_ids: int,
        requeue_on: tuple[type[BaseException], ...],
        queue_type: QueueType = "classic",
    ) -> None:
        self._channel = channel
        self._queue_name = queue_name
        self._queue_type = queue_type
        self._handler = handler
        self._batch_ids = batch_ids
        self._requeue_on = requeue_on
        self._inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()

    async def run(self) -> None:
        """Consume until cancelled, or until a batch raised a ``requeue_on`` error (re-raised)."""
        await self._channel.set_qos(prefetch_count=PREFETCH)
        queue = await declare_notice_queue(self._channel, self._queue_name, self._queue_type)
        tag = await queue.consume(self._inbox.put)
        try:
            while True:
                batch = [await self._inbox.get()]
                while not self._inbox.empty() and self._ids(batch) < self._batch_ids:
                    batch.append(self._inbox.get_nowait())
                await self._handle(batch)
        finally:
            with contextlib.suppress(Exception):
                await queue.cancel(tag)
            while not self._inbox.empty():  # delivered but not handled: back to the queue
                with contextlib.suppress(Exception):
                    await self._inbox.get_nowait().nack(requeue=True)

    @staticmethod
    def _ids(batch: Sequence[AbstractIncomingMessage]) -> int:
        return len(batch)  # a push names one video, about; the handler splits videos.list calls by 50

    async def _handle(self, batch: list[AbstractIncomingMessage]) -> None:
        notices: list[PushNotice] = []
        readable: list[AbstractIncomingMessage] = []
        for message in batch:
            try:
                notices.append(PushNotice.model_validate_json(message.body))
            except ValidationError:
                logger.warning("unreadable push notice dead-lettered", extra={"bytes": len(message.body)})
                await message.reject(requeue=False)
                continue
            readable.append(message)
        try:
            await self._handler(notices)
        except self._requeue_on:
            for message in readable:
                await message.nack(requeue=True)
            raise
        except Exception:
            logger.exception("push notices could not be handled; dead-lettered (polling finds their videos)")
            for message in readable:
                await message.reject(requeue=False)
            return
        for message in readable:
            await message.ack()
