"""``StoredEventPublisher``: the indexer's one "videos stored" event per batch, published and confirmed.

The pipeline calls ``publish`` after both stores hold the batch and before it acks the messages:
the publish returns once RabbitMQ confirmed the persistent event (the channel is in confirm mode),
and raises when it could not, so the pipeline sends the batch back to the queue instead of acking
it. Storing is idempotent, so the redelivered batch is stored again and announced again: a crash
between store and publish loses no event (``services.common.stored_events``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange

from services.common.stored_events import VideosStored
from services.common.timefmt import truncate_to_ms, utc_now
from services.common.topology import QueueNames, declare_stored_exchange


class StoredEventPublisher:
    def __init__(self, exchange: AbstractExchange) -> None:
        self._exchange = exchange

    @classmethod
    async def declare(cls, channel: AbstractChannel, names: QueueNames) -> StoredEventPublisher:
        return cls(await declare_stored_exchange(channel, names))

    async def publish(self, video_ids: Sequence[str]) -> bool:
        """Announce the stored ``video_ids``; returns once confirmed (True), or at once when there are none."""
        if not video_ids:
            return False
        event = VideosStored(stored_at=truncate_to_ms(utc_now()), video_ids=list(dict.fromkeys(video_ids)))
        message = aio_pika.Message(
            event.model_dump_json().encode(),
            content_type="application/json",
            message_id=uuid.uuid4().hex,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        # Fanout: the routing key is ignored, every bound queue gets the event; with no queue bound
        # (no notifier deployed) nobody wants it, so it is not returned.
        await self._exchange.publish(message, routing_key="", mandatory=False)
        return True
