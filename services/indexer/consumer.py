"""``BatchIndexer``: consumes video events from the work queue and runs them through the batch pipeline.

Per message, exactly one of: stored (acked after both stores accepted it); not a valid event
(dead-lettered at once); rejected by a store (re-queued as a copy that counts the attempt, and
dead-lettered after ``INDEX_MAX_ATTEMPTS``). A store outage is nobody's fault: the batch is held
and retried with capped backoff, nothing is acked, and RabbitMQ stops delivering once the
prefetch window is full, so the rest of the backlog waits safely in the queue.

This module attaches the consumer to the queue, cuts batches from the ``Inbox``, runs up to
``INDEX_CONCURRENCY`` of them through ``BatchPipeline`` at once, drains them on ``stop``, and keeps
the readiness state (``/readyz``) that outages change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiormq.abc
from aio_pika import RobustChannel
from aio_pika.abc import AbstractChannel
from aio_pika.exceptions import AMQPError, ChannelInvalidStateError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_random_exponential

from services.common.errors import StoreUnavailableError
from services.common.topology import QueueNames, declare_index_queue
from services.indexer.inbox import Inbox
from services.indexer.metrics import IndexerMetrics
from services.indexer.pipeline import BatchPipeline
from services.indexer.settings import Settings
from services.indexer.settlement import Batch, Settler
from services.indexer.store import VideoWriter
from services.indexer.stored_events import StoredEventPublisher

logger = logging.getLogger(__name__)

T = TypeVar("T")


class BatchIndexer:
    """Pulls messages from the queue and flushes them in batches through ``VideoWriter``.

    Up to ``INDEX_CONCURRENCY`` batches are stored at once (the next one fills and is written while
    the previous one waits for Elasticsearch); acks still go out in delivery order, so a single
    ``basic.ack(multiple=True)`` settles a whole batch.

    Deliveries are taken at the AMQP protocol level (aiormq, under aio-pika's robust channel): at
    thousands of messages a second, aio-pika's per-message wrapper and extra task cost about a third
    of the consumer's CPU. The consumer is registered again whenever the robust channel reopens.
    """

    def __init__(self, settings: Settings, writer: VideoWriter, metrics: IndexerMetrics) -> None:
        self._settings = settings
        self._writer = writer
        self._metrics = metrics
        self.names = QueueNames(settings.amqp_exchange, settings.amqp_queue, settings.amqp_queue_type)
        self._stopping = asyncio.Event()
        self._inbox = Inbox(self._stopping)
        self._slots = asyncio.Semaphore(settings.index_concurrency)
        self._previous: Batch | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._consumer: tuple[aiormq.abc.AbstractChannel, str] | None = None
        self.stores_ready = False
        self.state = "waiting for the stores"

    async def run(self, channel: AbstractChannel) -> None:
        """Consume until ``stop``; then finish the batches in hand, ack them and return."""
        if not await self._unless_stopped(self._until_stored(self._writer.prepare)):
            return
        pipeline = await self._attach(channel)
        self.state = "consuming"
        try:
            await self._cut_batches(pipeline)
        finally:
            self.state = "stopping"
            await self._detach(channel)
            if self._in_flight:
                await asyncio.gather(*self._in_flight, return_exceptions=True)
            self.state = "stopped"
            logger.info("stopped consuming", extra={"queue": self.names.queue})

    @property
    def consuming(self) -> bool:
        """True while the consumer is registered on an open channel."""
        return self._consumer is not None and not self._consumer[0].is_closed

    def stop(self) -> None:
        """Finish the batches in hand, then return from ``run``."""
        self._stopping.set()

    async def refresh_queue_depth(self, channel: AbstractChannel) -> None:
        """Publish the ready-message counts of the work and dead-letter queues as gauges."""
        for name in (self.names.queue, self.names.dead_queue):
            queue = await channel.declare_queue(name, passive=True)
            if queue.declaration_result.message_count is not None:
                self._metrics.queue_depth.labels(name).set(queue.declaration_result.message_count)

    async def _attach(self, channel: AbstractChannel) -> BatchPipeline:
        """Declare the queues, start consuming (again on every reopen) and build the batch pipeline."""
        await channel.set_qos(prefetch_count=self._settings.index_prefetch)
        await declare_index_queue(channel, self.names)
        dead_exchange = await channel.get_exchange(self.names.dead_exchange)
        settler = Settler(self._metrics, channel, dead_exchange, self.names.queue, self._settings.index_max_attempts)
        stored_events = await StoredEventPublisher.declare(channel, self.names)
        await self._start_consuming(channel)
        if isinstance(channel, RobustChannel):
            channel.reopen_callbacks.add(self._start_consuming)
        return BatchPipeline(self._writer, self._metrics, settler, self._until_stored, stored_events)

    async def _detach(self, channel: AbstractChannel) -> None:
        if isinstance(channel, RobustChannel):
            channel.reopen_callbacks.discard(self._start_consuming)
        # No new deliveries from here; messages delivered but not yet batched go back to the
        # queue when the channel closes.
        await self._stop_consuming()

    async def _cut_batches(self, pipeline: BatchPipeline) -> None:
        """Until ``stop``: whenever a slot is free, cut the next batch and start it through ``pipeline``."""
        max_wait = self._settings.index_batch_max_wait_ms / 1000
        while not self._stopping.is_set():
            await self._slots.acquire()
            try:
                messages = await self._inbox.next_batch(self._settings.index_batch_size, max_wait)
            except BaseException:
                self._slots.release()
                raise
            if not messages:
                self._slots.release()
                continue
            batch = Batch(messages)
            task = asyncio.create_task(pipeline.handle(batch, self._previous))
            self._previous = batch
            self._in_flight.add(task)
            task.add_done_callback(self._batch_done)

    async def _start_consuming(self, channel: AbstractChannel | None = None, *_: object) -> None:
        if channel is None or self._stopping.is_set():
            return
        self._inbox.drop_closed()
        try:
            underlay = await channel.get_underlay_channel()
            consume_ok = await underlay.basic_consume(self.names.queue, self._inbox.deliver)
        except Exception:
            # On a reopen this runs as a callback whose errors aio-pika only collects: say it here.
            logger.exception("could not start consuming", extra={"queue": self.names.queue})
            raise
        self._consumer = (underlay, str(consume_ok.consumer_tag))
        logger.info("consumer attached", extra={"queue": self.names.queue})

    async def _stop_consuming(self) -> None:
        if self._consumer is None:
            return
        underlay, consumer_tag = self._consumer
        self._consumer = None
        with contextlib.suppress(AMQPError, ChannelInvalidStateError, RuntimeError, asyncio.TimeoutError):
            if not underlay.is_closed:
                await underlay.basic_cancel(consumer_tag, timeout=5)

    async def _unless_stopped(self, work: Awaitable[object]) -> bool:
        """Await ``work`` unless ``stop`` comes first (then cancel it); True when it completed."""
        task = asyncio.ensure_future(work)
        stop_wait = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait({task, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        stop_wait.cancel()
        if task.done():
            task.result()
            return True
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return False

    def _batch_done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._slots.release()

    async def _until_stored(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run ``operation`` until no store is out: capped, jittered backoff; never gives up."""
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(StoreUnavailableError),
            wait=wait_random_exponential(multiplier=0.2, max=self._settings.index_retry_max_seconds),
            before_sleep=self._on_outage,
            reraise=True,
        )
        result: T = await retrying(operation)
        if not self.stores_ready:
            logger.info("stores available")
            self.stores_ready = True
            self._metrics.ready.set(1)
            if self.consuming:
                self.state = "consuming"
        return result

    def _on_outage(self, retry_state: RetryCallState) -> None:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        store = error.store if isinstance(error, StoreUnavailableError) else "unknown"
        self._metrics.store_outages.labels(store).inc()
        if self.stores_ready or retry_state.attempt_number == 1:
            logger.warning("store unavailable, holding the batch", extra={"store": store, "error": str(error)[:300]})
        self.stores_ready = False
        self._metrics.ready.set(0)
        self.state = f"holding: {store} unavailable"
