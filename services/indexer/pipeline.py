"""The steps of one batch, in order: decode the bodies, store the finds, then the removals, settle the rest, ack.

1. ``_decode``: every body becomes a ``VideoEvent`` (a find) or a ``VideoRemoved`` (a removal); one
   that is neither is dead-lettered at once, in parallel with the rest of the batch.
2. ``_store``: ``VideoWriter`` writes the finds to MongoDB then Elasticsearch (``write_batch``), then
   the removals (``write_removals``), each retried while a store is out (the consumer's
   ``until_stored``); each returns its messages' rejection reasons or None. The later-wins rule of
   ``removal`` makes the outcome the same in either order; finds first keeps the common path as it is.
3. ``StoredEventPublisher.publish``: one "videos stored" event naming the stored finds (a removal is
   no new match for anyone; a find of a removed video, which lists it again, is a find like any
   other), confirmed by RabbitMQ before anything is acked (if it fails, the whole batch goes back to
   the queue).
4. ``_settle_rejected``: each rejected message, find or removal, is re-queued as a copy counting the
   attempt, or dead-lettered after its last one.
5. ``ack_in_order``: one ``basic.ack(multiple=True)`` once every earlier batch is acked.

Should anything else fail, every message of the batch goes back to the queue.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from aiormq.abc import DeliveredMessage

from services.common.events import VideoEvent, VideoRemoved
from services.indexer.decoding import decode_message
from services.indexer.metrics import IndexerMetrics
from services.indexer.settlement import Batch, Settler, ack_in_order, requeue
from services.indexer.store import VideoWriter
from services.indexer.stored_events import StoredEventPublisher

logger = logging.getLogger(__name__)

Reasons = list[str | None]
# Runs a store operation until no store is out (the consumer's backoff and readiness bookkeeping).
StoreRetry = Callable[[Callable[[], Awaitable[Reasons]]], Awaitable[Reasons]]
Message = TypeVar("Message", VideoEvent, VideoRemoved)
Decoded = list[tuple[DeliveredMessage, Message]]


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
            finds, removals, settling = self._decode(batch)
            if finds or removals:
                self._metrics.batch_size.observe(len(finds) + len(removals))
                with self._metrics.batch_seconds.time():
                    find_reasons = await self._store(self._writer.write_batch, finds)
                    removal_reasons = await self._store(self._writer.write_removals, removals)
                self._metrics.removals.inc(removal_reasons.count(None))
                stored = [
                    event.video_id for (_, event), reason in zip(finds, find_reasons, strict=True) if reason is None
                ]
                if await self._stored_events.publish(stored):
                    self._metrics.stored_events.inc()
                settling += self._settle_rejected(batch, finds, find_reasons)
                settling += self._settle_rejected(batch, removals, removal_reasons)
            await asyncio.gather(*settling)
            await ack_in_order(batch, previous)
        except Exception:
            logger.exception("batch failed; its messages go back to the queue", extra={"size": len(batch.messages)})
            for message in batch.messages:
                await requeue(batch, message)
        finally:
            if not batch.acked.done():
                batch.acked.set_result(None)

    def _decode(self, batch: Batch) -> tuple[Decoded[VideoEvent], Decoded[VideoRemoved], list[asyncio.Future[None]]]:
        """The valid finds and removals with their messages, and the dead-lettering of the others (under way)."""
        finds: Decoded[VideoEvent] = []
        removals: Decoded[VideoRemoved] = []
        settling: list[asyncio.Future[None]] = []
        for message in batch.messages:
            try:
                decoded = decode_message(message.body)
            except ValueError as exc:
                settling.append(
                    asyncio.ensure_future(self._settler.dead_letter(batch, message, f"invalid event: {exc}"))
                )
                continue
            if isinstance(decoded, VideoRemoved):
                removals.append((message, decoded))
            else:
                finds.append((message, decoded))
        return finds, removals, settling

    async def _store(
        self, write: Callable[[Sequence[Message]], Awaitable[Reasons]], decoded: Decoded[Message]
    ) -> Reasons:
        """Per message, None once both stores hold it, or the reason a store rejected it."""
        if not decoded:
            return []
        reasons = await self._until_stored(functools.partial(write, [item for _, item in decoded]))
        self._metrics.messages.labels("stored").inc(reasons.count(None))
        return reasons

    def _settle_rejected(self, batch: Batch, decoded: Decoded[Message], reasons: Reasons) -> list[asyncio.Future[None]]:
        """Start re-queueing or dead-lettering each message a store rejected."""
        return [
            asyncio.ensure_future(self._settler.retry_or_dead_letter(batch, message, reason))
            for (message, _), reason in zip(decoded, reasons, strict=True)
            if reason is not None
        ]
