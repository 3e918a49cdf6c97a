"""RabbitMQ topology: names and the one place that declares them.

The fetcher publishes to a durable topic exchange; the indexer's durable queue is bound to it
with ``video.#``: ``video.found`` carries a snapshot of a video, ``video.removed`` a removal. A
message the indexer cannot use is rejected into a dead-letter exchange whose queue keeps it for
inspection and replay.

After each stored batch the indexer publishes one "videos stored" event (``services.common.stored_events``)
to the durable fanout exchange ``<exchange>.stored``; a service that reacts to stored videos binds its
own durable queue to it (``declare_stored_queue``), and that queue's consumers compete for the events.
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

    @property
    def stored_exchange(self) -> str:
        return f"{self.exchange}.stored"


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


async def declare_stored_exchange(channel: AbstractChannel, names: QueueNames) -> AbstractExchange:
    """The fanout exchange of the indexer's "videos stored" events."""
    return await channel.declare_exchange(names.stored_exchange, aio_pika.ExchangeType.FANOUT, durable=True)


async def declare_stored_queue(channel: AbstractChannel, names: QueueNames, queue_name: str) -> AbstractQueue:
    """A durable queue of the stored events (``queue_name``), with its dead-letter exchange and queue
    (both ``<queue_name>.dead``): an event its consumer cannot read is kept there, not lost."""
    exchange = await declare_stored_exchange(channel, names)
    dead_name = f"{queue_name}.dead"
    dead_exchange = await channel.declare_exchange(dead_name, aio_pika.ExchangeType.FANOUT, durable=True)
    dead_queue = await channel.declare_queue(dead_name, durable=True)
    await dead_queue.bind(dead_exchange)
    queue = await channel.declare_queue(queue_name, durable=True, arguments={"x-dead-letter-exchange": dead_name})
    await queue.bind(exchange)
    return queue
