"""RabbitMQ topology: names and the one place that declares them.

The fetcher publishes to a durable topic exchange; the indexer's durable queue is bound to it
with ``video.#``: ``video.found`` carries a snapshot of a video, ``video.removed`` a removal. A
message the indexer cannot use is rejected into a dead-letter exchange whose queue keeps it for
inspection and replay.

After each stored batch the indexer publishes one "videos stored" event (``services.common.stored_events``)
to the durable fanout exchange ``<exchange>.stored``; a service that reacts to stored videos binds its
own durable queue to it (``declare_stored_queue``), and that queue's consumers compete for the events.

Every durable queue the project declares goes through ``declare_durable_queue``, whose arguments
``queue_arguments`` builds for AMQP_QUEUE_TYPE: classic queues (one node's) or quorum queues
(replicated over a cluster's nodes, surviving the loss of a minority of them).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange, AbstractQueue
from aiormq.exceptions import ChannelPreconditionFailed

QueueType = Literal["classic", "quorum"]

ROUTING_KEY_VIDEO_FOUND = "video.found"
ROUTING_KEY_VIDEO_REMOVED = "video.removed"
BINDING_KEY_VIDEOS = "video.#"


def queue_arguments(
    queue_type: QueueType,
    *,
    dead_letter_exchange: str | None = None,
    dead_letter_routing_key: str | None = None,
    message_ttl_ms: int | None = None,
) -> dict[str, Any]:
    """The arguments of a durable queue of ``queue_type`` (the one place that builds them).

    A classic queue gets exactly the arguments it always had, so an existing classic queue is
    declared again unchanged. A quorum queue that dead-letters does it at least once: the message
    stays in the queue until the dead-letter queue has confirmed it (the default, at most once,
    drops it if that queue is unavailable at the moment), which RabbitMQ allows only together with
    ``reject-publish`` overflow. Message TTL (the notifier's delay queues) works on both types.
    """
    arguments: dict[str, Any] = {}
    if message_ttl_ms is not None:
        arguments["x-message-ttl"] = message_ttl_ms
    if dead_letter_exchange is not None:
        arguments["x-dead-letter-exchange"] = dead_letter_exchange
    if dead_letter_routing_key is not None:
        arguments["x-dead-letter-routing-key"] = dead_letter_routing_key
    if queue_type == "quorum":
        arguments["x-queue-type"] = "quorum"
        if dead_letter_exchange is not None:
            arguments["x-dead-letter-strategy"] = "at-least-once"
            arguments["x-overflow"] = "reject-publish"
    return arguments


class QueueMismatchError(Exception):
    """RabbitMQ refused to declare a queue: it exists with other arguments (another type, most often).

    Its message is one line for the operator: the queue, what differs, and how to migrate.
    """

    def __init__(self, queue: str, queue_type: QueueType, detail: str) -> None:
        found = re.search(r"inequivalent arg '([^']+)'", detail)
        argument = found.group(1) if found else "its arguments"
        what = "of another type" if argument == "x-queue-type" else f"with another {argument}"
        super().__init__(
            f"RabbitMQ queue {queue!r} exists {what} than AMQP_QUEUE_TYPE={queue_type} declares "
            f"({detail.removeprefix('PRECONDITION_FAILED - ')}); a queue cannot change in place: stop "
            f"what publishes to it, let its consumers drain it, delete it (rabbitmqctl delete_queue "
            f"{queue}) and start the services again to declare it"
        )
        self.queue = queue
        self.queue_type = queue_type


async def declare_durable_queue(
    channel: AbstractChannel,
    name: str,
    queue_type: QueueType,
    *,
    dead_letter_exchange: str | None = None,
    dead_letter_routing_key: str | None = None,
    message_ttl_ms: int | None = None,
) -> AbstractQueue:
    """Declare the durable queue ``name`` with ``queue_arguments``; ``QueueMismatchError`` when it
    exists with other arguments (RabbitMQ's PRECONDITION_FAILED, which also closes the channel: a
    robust channel reopens by itself)."""
    arguments = queue_arguments(
        queue_type,
        dead_letter_exchange=dead_letter_exchange,
        dead_letter_routing_key=dead_letter_routing_key,
        message_ttl_ms=message_ttl_ms,
    )
    try:
        return await channel.declare_queue(name, durable=True, arguments=arguments or None)
    except ChannelPreconditionFailed as exc:
        raise QueueMismatchError(name, queue_type, str(exc)) from None


async def declare_at_start(
    connection: AbstractConnection, declare: Callable[[AbstractChannel], Awaitable[object]]
) -> None:
    """Run ``declare`` (a service's declarations) once on a channel of its own.

    A service does this in its first cleanup context, before it opens anything else, so that a
    ``QueueMismatchError`` ends the start cleanly: ``run_service`` prints it as one line, and no other
    client is left open (aiohttp does not close the contexts entered before the one that failed).
    """
    channel = await connection.channel()
    try:
        await declare(channel)
    finally:
        with contextlib.suppress(Exception):  # refused: RabbitMQ has closed it already
            await channel.close()


@dataclass(frozen=True)
class QueueNames:
    exchange: str
    queue: str
    # AMQP_QUEUE_TYPE: the type of the queues declared under these names.
    queue_type: QueueType = "classic"

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
    dead_queue = await declare_durable_queue(channel, names.dead_queue, names.queue_type)
    await dead_queue.bind(dead_exchange)
    queue = await declare_durable_queue(
        channel, names.queue, names.queue_type, dead_letter_exchange=names.dead_exchange
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
    dead_queue = await declare_durable_queue(channel, dead_name, names.queue_type)
    await dead_queue.bind(dead_exchange)
    queue = await declare_durable_queue(channel, queue_name, names.queue_type, dead_letter_exchange=dead_name)
    await queue.bind(exchange)
    return queue
