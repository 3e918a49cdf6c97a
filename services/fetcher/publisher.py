"""Publishes video events and removals to RabbitMQ with publisher confirms: returning means the broker has it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange

from services.common.events import VideoEvent, VideoRemoved
from services.common.topology import (
    ROUTING_KEY_VIDEO_FOUND,
    ROUTING_KEY_VIDEO_REMOVED,
    QueueNames,
    declare_index_queue,
)

FENCING_HEADER = "x-tubewatch-lease-token"


class VideoPublisher:
    def __init__(self, exchange: AbstractExchange) -> None:
        self._exchange = exchange

    @classmethod
    async def declare(cls, channel: AbstractChannel, names: QueueNames) -> VideoPublisher:
        # The fetcher declares the indexer's queue too: a message published before any indexer
        # ever started must wait in a durable queue, not vanish at an exchange with no binding.
        await declare_index_queue(channel, names)
        return cls(await channel.get_exchange(names.exchange))

    async def publish_videos(self, events: Sequence[VideoEvent], lease_token: int) -> None:
        """Publish all events, confirmed by the broker; raises if any was not confirmed.

        ``lease_token`` (the leader's fencing token) travels in a header, so a consumer can tell
        which leader published a message.
        """
        await asyncio.gather(*(self._publish(event, lease_token) for event in events))

    async def publish_removals(self, removals: Sequence[VideoRemoved], lease_token: int) -> None:
        """Publish all removals (tombstones), confirmed by the broker, fenced like ``publish_videos``."""
        await asyncio.gather(*(self._publish_removal(removal, lease_token) for removal in removals))

    async def _publish(self, event: VideoEvent, lease_token: int) -> None:
        message = aio_pika.Message(
            body=event.model_dump_json().encode(),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=event.video_id,
            headers={"query": event.query, "schema_version": event.schema_version, FENCING_HEADER: lease_token},
        )
        await self._exchange.publish(message, routing_key=ROUTING_KEY_VIDEO_FOUND, mandatory=True)

    async def _publish_removal(self, removal: VideoRemoved, lease_token: int) -> None:
        message = aio_pika.Message(
            body=removal.model_dump_json().encode(),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=removal.video_id,
            headers={"kind": removal.kind, "schema_version": removal.schema_version, FENCING_HEADER: lease_token},
        )
        await self._exchange.publish(message, routing_key=ROUTING_KEY_VIDEO_REMOVED, mandatory=True)
