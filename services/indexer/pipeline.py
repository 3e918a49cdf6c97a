"""The steps of one batch, in order: decode the bodies, store the events, settle the rest, ack.

1. ``_decode``: every body becomes a ``VideoEvent``; one that is not a valid event is dead-lettered
   at once, in parallel with the rest of the batch.
2. ``_store``: ``VideoWriter`` writes the events to MongoDB then Elasticsearch, retried while a store
   is out (the consumer's ``until_stored``); it returns each event's rejection reason or None.
3. ``StoredEventPublisher.publish``: one "videos stored" event naming the stored videos, confirmed
   by RabbitMQ before anything is acked (if it fails, the whole batch goes back to the queue).
4. ``_settle_rejected``: each rejected message is re-queued as a copy counting the attempt, or
   dead-lettered after its last one.
5. ``ack_in_order``: one ``basic.ack(multiple=True)`` once every earlier batch is acked.

Should anything else fail, every message of the batch goes back to the queue.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable

from aiormq.abc import DeliveredMessage

from services.common.events import VideoEvent
from services.indexer.decoding import decode_event
from services.indexer.metrics import IndexerMetrics
from services.indexer.settlement import Batch, Settler, ack_in_order, requeue
from services.indexer.store import VideoWriter
from services.indexer.stored_events import StoredEventPublisher

logger = logging.getLogger(__name__)

Reasons = list[str | None]
# Runs a store operation until no store is out (the consumer's backoff and readiness bookkeeping).
StoreRetry = Callable[[Callable[[], Awaitable[Reasons]]], Awaitable[Reasons]]
Decoded = list[tuple[DeliveredMessage, VideoEvent]]


class BatchPipeline:
    def __init__(
        self,
        writer: VideoWriter,
        metrics: IndexerMetrics,
        settler: Settler,
        until_stored: StoreRetry,
        stored_events: StoredEventPublisher,
    ) -> None:
        self._writer = writer
        self._stored_events = stored_events
        self._metrics = metrics
        self._settler = settler
        self._until_stored = until_stored

    async def handle(self, batch: Batch, previous: Batch | None) -> None:
        """Take ``batch`` through every step; ``previous`` is the batch delivered before it."""
        try:
            decoded, settling = self._decode(batch)
            if decoded:
                reasons = await self._store([event for _, event in decoded])
                stored = [event.video_id for (_, event), reason in zip(decoded, reasons, strict=True) if reason is None]
                if await self._stored_events.publish(stored):
                    self._metrics.stored_events.inc()
                settling += self._settle_rejected(batch, decoded, reasons)
            await asyncio.gather(*settling)
            await ack_in_order(batch, previous)
        except Exception:
            logger.exception("batch failed; its messages go back to the queue", extra={"size": len(batch.messages)})
            for message in batch.messages:
                await requeue(batch, message)
        finally:
            if not batch.acked.done():
                batch.acked.set_result(None)

    def _decode(self, batch: Batch) -> tuple[Decoded, list[asyncio.Future[None]]]:
        """The valid events with their messages, and the dead-lettering of the others (under way)."""
        decoded: Decoded = []
        settling: list[asyncio.Future[None]] = []
        for message in batch.messages:
            try:
                decoded.append((message, decode_event(message.body)))
            except ValueError as exc:
                settling.append(
                    asyncio.ensure_future(self._settler.dead_letter(batch, message, f"invalid event: {exc}"))
                )
        return decoded, settling

    async def _store(self, events: list[VideoEvent]) -> Reasons:
        """Per event, None once both stores hold it, or the reason a store rejected it."""
        self._metrics.batch_size.observe(len(events))
        with self._metrics.batch_seconds.time():
            reasons = await self._until_stored(functools.partial(self._writer.write_batch, events))
        self._metrics.messages.labels("stored").inc(reasons.count(None))
        return reasons

    def _settle_rejected(self, batch: Batch, decoded: Decoded, reasons: Reasons) -> list[asyncio.Future[None]]:
        """Start re-queueing or dead-lettering each message a store rejected."""
        return [
            asyncio.ensure_future(self._settler.retry_or_dead_letter(batch, message, reason))
            for (message, _), reason in zip(decoded, reasons, strict=True)
            if reason is not None
        ]
