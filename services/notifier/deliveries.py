"""Webhook deliveries in RabbitMQ: the request message, the queues that hold it, its publisher.

One ``DeliveryRequest`` per (saved search, video) match goes to the work queue ``<prefix>.work``
(through the direct exchange ``<prefix>``, routing key ``work``), persistent and confirmed by the
broker before the match is acknowledged. A delivery that failed in a way worth retrying waits in a
delay queue ``<prefix>.retry.<ms>ms`` whose TTL dead-letters it back to the work queue: the waits
live in RabbitMQ, so a restart of the notifier loses none. A delivery given up on lands in the
dead-letter queue ``<prefix>.dead`` (exchange ``<prefix>.dead``) with its reason in a header, for
``python -m services.notifier replay-dead``.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue
from pydantic import AwareDatetime, BaseModel, ConfigDict

WORK_ROUTING_KEY = "work"
# Headers a delivery carries between attempts; a first attempt has none of them.
ATTEMPTS_HEADER = "x-tubewatch-attempts"
FIRST_FAILURE_HEADER = "x-tubewatch-first-failure-ms"
LAST_ERROR_HEADER = "x-tubewatch-last-error"
DEAD_REASON_HEADER = "x-tubewatch-dead-reason"


def delivery_id_for(saved_search_id: str, video_id: str) -> str:
    """The same for every attempt of one match, so receivers can drop the duplicates."""
    return hashlib.sha256(f"{saved_search_id}\0{video_id}".encode()).hexdigest()[:32]


class DeliveryRequest(BaseModel):
    """One video to post to one saved search's webhook (the message body, JSON)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    delivery_id: str
    saved_search_id: str
    video_id: str
    # The public Video JSON (services/common/video_shape.py), as the API shows it.
    video: dict[str, Any]
    # When the indexer stored the video: the delivery latency metric counts from here.
    indexed_at: AwareDatetime

    @classmethod
    def for_match(
        cls, saved_search_id: str, video_id: str, video: dict[str, Any], indexed_at: datetime
    ) -> DeliveryRequest:
        return cls(
            delivery_id=delivery_id_for(saved_search_id, video_id),
            saved_search_id=saved_search_id,
            video_id=video_id,
            video=video,
            indexed_at=indexed_at,
        )

    def to_message(self) -> aio_pika.Message:
        return aio_pika.Message(
            body=self.model_dump_json().encode(),
            content_type="application/json",
            message_id=self.delivery_id,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )


@dataclass(frozen=True)
class DeliveryQueueNames:
    prefix: str

    @property
    def exchange(self) -> str:
        return self.prefix

    @property
    def work_queue(self) -> str:
        return f"{self.prefix}.work"

    @property
    def dead_exchange(self) -> str:
        return f"{self.prefix}.dead"

    @property
    def dead_queue(self) -> str:
        return f"{self.prefix}.dead"

    def delay_queue(self, delay_ms: int) -> str:
        """Named by its wait, so a changed backoff declares new queues instead of clashing with old ones."""
        return f"{self.prefix}.retry.{delay_ms}ms"

    def delay_routing_key(self, delay_ms: int) -> str:
        return f"retry.{delay_ms}ms"


@dataclass(frozen=True)
class DeliveryTopology:
    names: DeliveryQueueNames
    exchange: AbstractExchange
    dead_exchange: AbstractExchange
    work_queue: AbstractQueue
    delays_ms: tuple[int, ...]


async def declare_delivery_topology(
    channel: AbstractChannel, prefix: str, delays_ms: Sequence[int] = ()
) -> DeliveryTopology:
    """Declare the exchange, work queue, dead-letter exchange and queue, and a delay queue per wait.

    A publisher needs no delay queue (``delays_ms`` empty); the worker declares those of its policy.
    """
    names = DeliveryQueueNames(prefix)
    exchange = await channel.declare_exchange(names.exchange, aio_pika.ExchangeType.DIRECT, durable=True)
    dead_exchange = await channel.declare_exchange(names.dead_exchange, aio_pika.ExchangeType.FANOUT, durable=True)
    dead_queue = await channel.declare_queue(names.dead_queue, durable=True)
    await dead_queue.bind(dead_exchange)
    work_queue = await channel.declare_queue(
        names.work_queue, durable=True, arguments={"x-dead-letter-exchange": names.dead_exchange}
    )
    await work_queue.bind(exchange, routing_key=WORK_ROUTING_KEY)
    for delay_ms in delays_ms:
        delay_queue = await channel.declare_queue(
            names.delay_queue(delay_ms),
            durable=True,
            arguments={
                "x-message-ttl": delay_ms,
                "x-dead-letter-exchange": names.exchange,
                "x-dead-letter-routing-key": WORK_ROUTING_KEY,
            },
        )
        await delay_queue.bind(exchange, routing_key=names.delay_routing_key(delay_ms))
    return DeliveryTopology(names, exchange, dead_exchange, work_queue, tuple(delays_ms))


class DeliveryPublisher:
    """Puts delivery requests on the work queue; ``publish`` returns once the broker confirmed them all.

    The channel must have publisher confirms on (aio-pika's default).
    """

    def __init__(self, topology: DeliveryTopology) -> None:
        self._exchange = topology.exchange

    async def publish(self, requests: Sequence[DeliveryRequest]) -> None:
        """Persistent and confirmed: raises if the broker refused any of them (publish them all again)."""
        await asyncio.gather(
            *(self._exchange.publish(request.to_message(), routing_key=WORK_ROUTING_KEY) for request in requests)
        )
