"""How each delivered message of a batch is settled with RabbitMQ.

Stored messages are acked with their batch, one ``basic.ack(multiple=True)`` in delivery order. A
message a store rejected is re-published to the tail of the work queue with its attempt count in
the ``x-tubewatch-attempts`` header, and dead-lettered once it reaches ``INDEX_MAX_ATTEMPTS``; a body
that is not an event is dead-lettered at once. Every copy is confirmed by the broker before the
original is acked, so a crash in between can only duplicate it, which the idempotent writes absorb;
a copy the broker refuses sends the original back to the queue instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, HeadersType
from aio_pika.exceptions import AMQPError, ChannelInvalidStateError
from aiormq.abc import DeliveredMessage
from pamqp.commands import Basic

from services.indexer.metrics import IndexerMetrics

logger = logging.getLogger(__name__)

DEAD_REASON_HEADER = "x-tubewatch-dead-reason"
ATTEMPTS_HEADER = "x-tubewatch-attempts"

# What a channel that died or closed raises when a message is settled on it.
_CHANNEL_ERRORS = (AMQPError, ChannelInvalidStateError, RuntimeError)


@dataclass
class Batch:
    messages: list[DeliveredMessage]
    # Delivery tags settled on their own (sent back to the queue after a failure): never in ``multiple``.
    settled: set[int] = field(default_factory=set)
    # Done once every message of the batch is settled; the next batch acks only after it.
    acked: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


def delivery_tag(message: DeliveredMessage) -> int:
    delivery = message.delivery
    return int(delivery.delivery_tag or 0) if isinstance(delivery, Basic.Deliver) else 0


def attempts_so_far(message: DeliveredMessage) -> int:
    """The attempts counted in the message's header: 0 for a first delivery or a header that is not a count."""
    value = (message.header.properties.headers or {}).get(ATTEMPTS_HEADER)
    return value if isinstance(value, int) and value >= 0 else 0


async def ack_in_order(batch: Batch, previous: Batch | None) -> None:
    """Ack once every earlier batch is settled, so ``multiple`` covers exactly this batch."""
    if previous is not None:
        await asyncio.shield(previous.acked)
    outstanding = [m for m in batch.messages if delivery_tag(m) not in batch.settled]
    if not outstanding:
        return
    last = outstanding[-1]
    try:
        await last.channel.basic_ack(delivery_tag(last), multiple=True)
    except _CHANNEL_ERRORS:
        # The channel died after the write: the broker redelivers these, and writing them
        # again changes nothing.
        logger.warning("could not ack a stored batch; it will be redelivered", extra={"size": len(outstanding)})


async def requeue(batch: Batch, message: DeliveredMessage) -> None:
    """Send ``message`` back to the queue on its own (once); it is then left out of the batch's ack."""
    tag = delivery_tag(message)
    if tag in batch.settled:
        return
    batch.settled.add(tag)
    with contextlib.suppress(*_CHANNEL_ERRORS):
        await message.channel.basic_nack(tag, requeue=True)


async def publish_copy(
    batch: Batch, message: DeliveredMessage, exchange: AbstractExchange, routing_key: str, headers: HeadersType
) -> bool:
    """Publish a persistent copy (confirmed by the broker); the original is then acked with its batch.

    If the broker refuses the copy, the original goes back to the queue instead: never lost.
    """
    properties = message.header.properties
    copy = aio_pika.Message(
        body=message.body,
        headers=headers,
        message_id=properties.message_id,
        content_type=properties.content_type,
        timestamp=properties.timestamp,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )
    try:
        await exchange.publish(copy, routing_key=routing_key)
    except _CHANNEL_ERRORS:
        logger.exception(
            "could not publish a copy; requeueing the message", extra={"message_id": properties.message_id}
        )
        await requeue(batch, message)
        return False
    return True


class Settler:
    """Re-queues or dead-letters the messages of a batch that were not stored, counting each outcome."""

    def __init__(
        self,
        metrics: IndexerMetrics,
        channel: AbstractChannel,
        dead_exchange: AbstractExchange,
        work_queue: str,
        max_attempts: int,
    ) -> None:
        self._metrics = metrics
        self._channel = channel
        self._dead = dead_exchange
        self._work_queue = work_queue
        self._max_attempts = max_attempts

    async def retry_or_dead_letter(self, batch: Batch, message: DeliveredMessage, reason: str) -> None:
        """A store rejected the message: re-queue a copy counting the attempt, or dead-letter the last one."""
        attempts = attempts_so_far(message) + 1
        if attempts >= self._max_attempts:
            await self.dead_letter(batch, message, reason, attempts=attempts, cause="rejected")
            return
        properties = message.header.properties
        logger.info(
            "a store rejected a document; re-queued",
            extra={"message_id": properties.message_id, "attempts": attempts, "reason": reason[:300]},
        )
        headers = dict(properties.headers or {})
        headers[ATTEMPTS_HEADER] = attempts
        # The default exchange routes straight to the work queue: no other binding sees the copy.
        if await publish_copy(batch, message, self._channel.default_exchange, self._work_queue, headers):
            self._metrics.messages.labels("retried").inc()

    async def dead_letter(
        self,
        batch: Batch,
        message: DeliveredMessage,
        reason: str,
        *,
        attempts: int | None = None,
        cause: str = "invalid",
    ) -> None:
        reason = reason[:1000]
        properties = message.header.properties
        logger.warning("dead-lettering message", extra={"message_id": properties.message_id, "reason": reason})
        headers = dict(properties.headers or {})
        headers[DEAD_REASON_HEADER] = reason
        if attempts is not None:
            headers[ATTEMPTS_HEADER] = attempts
        if await publish_copy(batch, message, self._dead, message.routing_key or "", headers):
            self._metrics.messages.labels("dead_lettered").inc()
            self._metrics.dead_letters.labels(cause).inc()
