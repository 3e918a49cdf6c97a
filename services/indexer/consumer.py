"""Consumes video events in batches and acknowledges them only once both stores hold them."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from pydantic import ValidationError

from services.common.events import VideoEvent
from services.common.topology import QueueNames, declare_index_queue
from services.indexer.settings import Settings
from services.indexer.store import StoreUnavailableError, VideoWriter

logger = logging.getLogger(__name__)

DEAD_REASON_HEADER = "x-tubewatch-dead-reason"


class IndexerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = Counter(
            "tubewatch_indexer_messages", "Messages handled, by outcome", ["outcome"], registry=registry
        )
        self.batch_size = Histogram(
            "tubewatch_indexer_batch_size",
            "Messages per flushed batch",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2500),
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "tubewatch_indexer_batch_seconds", "Time to store one batch in both stores", registry=registry
        )
        self.store_outages = Counter(
            "tubewatch_indexer_store_outages", "Batch attempts that met an unavailable store", registry=registry
        )
        self.ready = Gauge("tubewatch_indexer_ready", "1 while both stores accept writes", registry=registry)


@dataclass
class _Decoded:
    message: AbstractIncomingMessage
    event: VideoEvent


class BatchIndexer:
    """Pulls messages from the queue, flushes them in batches through ``VideoWriter``."""

    def __init__(self, settings: Settings, writer: VideoWriter, metrics: IndexerMetrics) -> None:
        self._settings = settings
        self._writer = writer
        self._metrics = metrics
        self._names = QueueNames(settings.amqp_exchange, settings.amqp_queue)
        self._inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        self._stopping = asyncio.Event()
        self.stores_ready = True
        self.consuming = False

    async def run(self, channel: AbstractChannel) -> None:
        await channel.set_qos(prefetch_count=self._settings.index_prefetch)
        queue = await declare_index_queue(channel, self._names)
        dead_exchange = await channel.get_exchange(self._names.dead_exchange)
        consumer_tag = await queue.consume(self._inbox.put)
        self.consuming = True
        logger.info("consuming", extra={"queue": self._names.queue})
        try:
            while not self._stopping.is_set():
                batch = await self._collect()
                if batch:
                    await self._handle_batch(batch, dead_exchange)
        finally:
            self.consuming = False
            # Unacked messages still in the inbox are redelivered when the channel closes.
            if not channel.is_closed:
                await queue.cancel(consumer_tag)

    def stop(self) -> None:
        """Finish the batch in hand, then return from ``run``."""
        self._stopping.set()

    async def _collect(self) -> list[AbstractIncomingMessage]:
        size = self._settings.index_batch_size
        max_wait = self._settings.index_batch_max_wait_ms / 1000
        stop_wait = asyncio.ensure_future(self._stopping.wait())
        try:
            first_get = asyncio.ensure_future(self._inbox.get())
            done, _ = await asyncio.wait({first_get, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            if first_get not in done:
                first_get.cancel()
                return []
            batch = [first_get.result()]
            deadline = asyncio.get_running_loop().time() + max_wait
            while len(batch) < size:
                while not self._inbox.empty() and len(batch) < size:
                    batch.append(self._inbox.get_nowait())
                remaining = deadline - asyncio.get_running_loop().time()
                if len(batch) >= size or remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._inbox.get(), timeout=remaining))
                except TimeoutError:
                    break
            return batch
        finally:
            stop_wait.cancel()

    async def _handle_batch(self, batch: Sequence[AbstractIncomingMessage], dead: AbstractExchange) -> None:
        decoded: list[_Decoded] = []
        for message in batch:
            try:
                decoded.append(_Decoded(message, decode_event(message.body)))
            except ValueError as exc:
                await self._dead_letter(message, dead, f"invalid event: {exc}")
        if not decoded:
            return
        self._metrics.batch_size.observe(len(decoded))
        with self._metrics.batch_seconds.time():
            result = await self._write_until_stored([d.event for d in decoded])
        for item in decoded:
            reason = result.get(item.event.video_id)
            if reason is not None:
                await self._dead_letter(item.message, dead, reason)
            else:
                await item.message.ack()
                self._metrics.messages.labels("stored").inc()

    async def _write_until_stored(self, events: Sequence[VideoEvent]) -> dict[str, str]:
        """Retry the batch with capped, jittered backoff while a store is out; never drop it."""
        delay = 0.2
        while True:
            try:
                result = await self._writer.write_batch(events)
            except StoreUnavailableError as exc:
                self._metrics.store_outages.inc()
                if self.stores_ready:
                    logger.warning("store unavailable, holding batch", extra={"error": str(exc)[:300]})
                self.stores_ready = False
                self._metrics.ready.set(0)
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, self._settings.index_retry_max_seconds)
                continue
            if not self.stores_ready:
                logger.info("stores available again")
            self.stores_ready = True
            self._metrics.ready.set(1)
            return result.rejected

    async def _dead_letter(self, message: AbstractIncomingMessage, dead: AbstractExchange, reason: str) -> None:
        reason = reason[:1000]
        logger.warning("dead-lettering message", extra={"message_id": message.message_id, "reason": reason})
        headers = dict(message.headers or {})
        headers[DEAD_REASON_HEADER] = reason
        await dead.publish(
            aio_pika.Message(
                body=message.body,
                headers=headers,
                message_id=message.message_id,
                content_type=message.content_type,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=message.routing_key or "",
        )
        await message.ack()
        self._metrics.messages.labels("dead_lettered").inc()


def decode_event(body: bytes) -> VideoEvent:
    """Parse one message body; ValueError (with a short reason) when it is not a valid event."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("body is not a JSON object")
    try:
        return VideoEvent.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        location = ".".join(str(p) for p in first["loc"]) or "event"
        raise ValueError(f"{exc.error_count()} schema error(s); {location}: {first['msg']}") from None
