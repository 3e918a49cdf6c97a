"""RabbitMQ topology: names and the one place that declares them.

The fetcher publishes to a durable topic exchange; the indexer's durable queue is bound to it
with ``video.#``: ``video.found`` carries a snapshot of a video, ``video.removed`` a removal. A
message the indexer cannot use is rejected into a dead-letter exchange whose queue keeps it for
inspection and replay.
"""

from __future__ import annotations

from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

ROUTING_KEY_VIDEO_FOUND = "video.found"
ROUTING_KEY_VIDEO_REMOVED = "video.removed"
BINDING_KEY_VIDEOS = "video.#"


@dataclass(frozen=True)
class QueueNames:
    exchange: str
    queue: str

    @property
    def dead_exchange(self) -> str:
        return f"{self.exchange}.dead"

    @property
    def dead_queue(self) -> str:
        return f"{self.queue}.dead"


async def declare_exchange(channel: AbstractChannel, names: QueueNames) -> AbstractExchange:
    return await channel.declare_exchange(names.exchange, aio_pika.ExchangeType.TOPIC, durable=True)


async def declare_index_queue(channel: AbstractChannel, names: QueueNames) -> AbstractQueue:
    """Declare exchange, work queue, dead-letter exchange and queue, and their bindings."""
    exchange = await declare_exchange(channel, names)
    dead_exchange = await channel.declare_exchange(names.dead_exchange, aio_pika.ExchangeType.FANOUT, durable=True)
    dead_queue = await channel.declare_queue(names.dead_queue, durable=True)
    await dead_queue.bind(dead_exchange)
    queue = await channel.declare_queue(
        names.queue, durable=True, arguments={"x-dead-letter-exchange": names.dead_exchange}
    )
    await queue.bind(exchange, routing_key=BINDING_KEY_VIDEOS)
    return queue
