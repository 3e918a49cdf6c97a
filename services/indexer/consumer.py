"""Consumes video events in batches and acknowledges them only once both stores hold them.

Per message, exactly one of: stored (acked after both stores accepted it); not a valid event
(dead-lettered at once); rejected by a store (re-queued as a copy that counts the attempt, and
dead-lettered after ``INDEX_MAX_ATTEMPTS``). A store outage is nobody's fault: the batch is held
and retried with capped backoff, nothing is acked, and RabbitMQ stops delivering once the
prefetch window is full, so the rest of the backlog waits safely in the queue.

Attempts are counted in the ``x-tubewatch-attempts`` header of a re-published copy rather than in
memory: RabbitMQ's redeliveries of a classic queue carry no count, a restart would forget an
in-memory one, and a copy at the tail of the queue spaces the attempts out and never holds up the
batch it came in. The copy is confirmed by the broker before the original is acked, so a crash in
between can only duplicate it, which the idempotent writes absorb.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import aio_pika
import aiormq.abc
from aio_pika import RobustChannel
from aio_pika.abc import AbstractChannel, AbstractExchange, HeadersType
from aio_pika.exceptions import AMQPError, ChannelInvalidStateError
from aiormq.abc import DeliveredMessage
from pamqp.commands import Basic
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from pydantic import ValidationError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_random_exponential

from services.common.events import VideoEvent
from services.common.topology import QueueNames, declare_index_queue
from services.indexer.settings import Settings
from services.indexer.store import StoreUnavailableError, VideoWriter

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEAD_REASON_HEADER = "x-tubewatch-dead-reason"
ATTEMPTS_HEADER = "x-tubewatch-attempts"


class IndexerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = Counter(
            "tubewatch_indexer_messages",
            "Messages settled, by outcome: stored, retried (a store rejected it; re-queued), dead_lettered",
            ["outcome"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "tubewatch_indexer_dead_letters",
            "Messages sent to the dead-letter queue, by cause: invalid (not an event), rejected (by a store)",
            ["cause"],
            registry=registry,
        )
        self.batch_size = Histogram(
            "tubewatch_indexer_batch_size",
            "Messages per flushed batch",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000),
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "tubewatch_indexer_batch_seconds",
            "Time to store one batch in both stores, outage retries included",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=registry,
        )
        self.store_seconds = Histogram(
            "tubewatch_indexer_store_seconds",
            "Time one store took for its part of a batch (MongoDB: upserts and read-back; Elasticsearch: bulk)",
            ["store"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.store_outages = Counter(
            "tubewatch_indexer_store_outages",
            "Batch attempts that met an unavailable store",
            ["store"],
            registry=registry,
        )
        self.ready = Gauge("tubewatch_indexer_ready", "1 while both stores accept writes", registry=registry)
        self.queue_depth = Gauge(
            "tubewatch_indexer_queue_depth",
            "Messages ready in a queue (the work queue's depth is the indexer's lag)",
            ["queue"],
            registry=registry,
        )
        for outcome in ("stored", "retried", "dead_lettered"):
            self.messages.labels(outcome)
        for cause in ("invalid", "rejected"):
            self.dead_letters.labels(cause)

    def observe_store(self, store: str, seconds: float) -> None:
        self.store_seconds.labels(store).observe(seconds)


@dataclass
class _Batch:
    messages: list[DeliveredMessage]
    # Delivery tags settled on their own (sent back to the queue after a failure): never in ``multiple``.
    settled: set[int] = field(default_factory=set)
    # Done once every message of the batch is settled; the next batch acks only after it.
    acked: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


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
        self.names = QueueNames(settings.amqp_exchange, settings.amqp_queue)
        self._inbox: collections.deque[DeliveredMessage] = collections.deque()
        self._arrived = asyncio.Event()
        self._wake_at = 1
        self._stopping = asyncio.Event()
        self._slots = asyncio.Semaphore(settings.index_concurrency)
        self._previous: _Batch | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._consumer: tuple[aiormq.abc.AbstractChannel, str] | None = None
        self.stores_ready = False
        self.state = "waiting for the stores"

    async def run(self, channel: AbstractChannel) -> None:
        """Consume until ``stop``; then finish the batches in hand, ack them and return."""
        if not await self._unless_stopped(self._until_stored(self._writer.prepare)):
            return
        await channel.set_qos(prefetch_count=self._settings.index_prefetch)
        await declare_index_queue(channel, self.names)
        dead_exchange = await channel.get_exchange(self.names.dead_exchange)
        await self._start_consuming(channel)
        if isinstance(channel, RobustChannel):
            channel.reopen_callbacks.add(self._start_consuming)
        self.state = "consuming"
        try:
            while not self._stopping.is_set():
                await self._slots.acquire()
                try:
                    messages = await self._collect()
                except BaseException:
                    self._slots.release()
                    raise
                if not messages:
                    self._slots.release()
                    continue
                batch = _Batch(messages)
                task = asyncio.create_task(self._handle_batch(batch, self._previous, dead_exchange, channel))
                self._previous = batch
                self._in_flight.add(task)
                task.add_done_callback(self._batch_done)
        finally:
            self.state = "stopping"
            if isinstance(channel, RobustChannel):
                channel.reopen_callbacks.discard(self._start_consuming)
            # No new deliveries from here; messages delivered but not yet batched go back to the
            # queue when the channel closes.
            await self._stop_consuming()
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

    async def _start_consuming(self, channel: AbstractChannel | None = None, *_: object) -> None:
        if channel is None or self._stopping.is_set():
            return
        # Deliveries of a channel that died are void (the broker requeued them): drop them unbatched.
        self._inbox = collections.deque(m for m in self._inbox if not m.channel.is_closed)
        try:
            underlay = await channel.get_underlay_channel()
            consume_ok = await underlay.basic_consume(self.names.queue, self._deliver)
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

    async def _deliver(self, message: DeliveredMessage) -> None:
        self._inbox.append(message)
        if len(self._inbox) >= self._wake_at:
            self._arrived.set()

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

    async def _collect(self) -> list[DeliveredMessage]:
        """The next batch: wait for a first message, then up to the batch size or the maximum wait.

        One wake-up per batch: deliveries only signal when the inbox holds what the collector waits for.
        """
        size = self._settings.index_batch_size
        if not self._inbox and not await self._wait_for_inbox(1, None):
            return []
        if len(self._inbox) < size:
            deadline = asyncio.get_running_loop().time() + self._settings.index_batch_max_wait_ms / 1000
            await self._wait_for_inbox(size, deadline)
        return [self._inbox.popleft() for _ in range(min(size, len(self._inbox)))]

    async def _wait_for_inbox(self, count: int, deadline: float | None) -> bool:
        """Until the inbox holds ``count`` messages, ``deadline`` passes or ``stop``; False when stopped."""
        self._wake_at = count
        self._arrived.clear()
        if len(self._inbox) < count:
            timeout = None if deadline is None else max(0.0, deadline - asyncio.get_running_loop().time())
            waiters = {asyncio.ensure_future(self._arrived.wait()), asyncio.ensure_future(self._stopping.wait())}
            _, pending = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            for waiter in pending:
                waiter.cancel()
        self._wake_at = 1
        return bool(self._inbox) or not self._stopping.is_set()

    async def _handle_batch(
        self, batch: _Batch, previous: _Batch | None, dead: AbstractExchange, channel: AbstractChannel
    ) -> None:
        try:
            valid: list[tuple[DeliveredMessage, VideoEvent]] = []
            settling: list[asyncio.Future[None]] = []
            for message in batch.messages:
                try:
                    valid.append((message, decode_event(message.body)))
                except ValueError as exc:
                    settling.append(
                        asyncio.ensure_future(self._dead_letter(batch, message, dead, f"invalid event: {exc}"))
                    )
            if valid:
                self._metrics.batch_size.observe(len(valid))
                events = [event for _, event in valid]
                with self._metrics.batch_seconds.time():
                    reasons = await self._until_stored(functools.partial(self._writer.write_batch, events))
                stored = 0
                for (message, _), reason in zip(valid, reasons, strict=True):
                    if reason is None:
                        stored += 1
                    else:
                        settling.append(
                            asyncio.ensure_future(self._retry_or_dead_letter(batch, message, dead, channel, reason))
                        )
                self._metrics.messages.labels("stored").inc(stored)
            await asyncio.gather(*settling)
            await self._ack_in_order(batch, previous)
        except Exception:
            logger.exception("batch failed; its messages go back to the queue", extra={"size": len(batch.messages)})
            for message in batch.messages:
                await _requeue(batch, message)
        finally:
            if not batch.acked.done():
                batch.acked.set_result(None)

    async def _ack_in_order(self, batch: _Batch, previous: _Batch | None) -> None:
        """Ack once every earlier batch is settled, so ``multiple`` covers exactly this batch."""
        if previous is not None:
            await asyncio.shield(previous.acked)
        outstanding = [m for m in batch.messages if _tag(m) not in batch.settled]
        if not outstanding:
            return
        last = outstanding[-1]
        try:
            await last.channel.basic_ack(_tag(last), multiple=True)
        except (AMQPError, ChannelInvalidStateError, RuntimeError):
            # The channel died after the write: the broker redelivers these, and writing them
            # again changes nothing.
            logger.warning("could not ack a stored batch; it will be redelivered", extra={"size": len(outstanding)})

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

    async def _retry_or_dead_letter(
        self, batch: _Batch, message: DeliveredMessage, dead: AbstractExchange, channel: AbstractChannel, reason: str
    ) -> None:
        attempts = _attempts(message) + 1
        if attempts >= self._settings.index_max_attempts:
            await self._dead_letter(batch, message, dead, reason, attempts=attempts, cause="rejected")
            return
        properties = message.header.properties
        logger.info(
            "a store rejected a document; re-queued",
            extra={"message_id": properties.message_id, "attempts": attempts, "reason": reason[:300]},
        )
        headers = dict(properties.headers or {})
        headers[ATTEMPTS_HEADER] = attempts
        if await _publish_copy(batch, message, channel.default_exchange, self.names.queue, headers):
            self._metrics.messages.labels("retried").inc()

    async def _dead_letter(
        self,
        batch: _Batch,
        message: DeliveredMessage,
        dead: AbstractExchange,
        reason: str,
        *,
        attempts: int | None = None,
        cause: str = "invalid",
    ) -> None:
        reason = reason[:1000]
        properties = message.header.properties
        logger.warning("dead-lettering message", extra={"message_id": properties.message_id, "reason": reason})
        headers = dict(properties.headers or {})
        headers[DEAD_REASON_HEADER] = reason
        if attempts is not None:
            headers[ATTEMPTS_HEADER] = attempts
        if await _publish_copy(batch, message, dead, message.routing_key or "", headers):
            self._metrics.messages.labels("dead_lettered").inc()
            self._metrics.dead_letters.labels(cause).inc()


async def _publish_copy(
    batch: _Batch, message: DeliveredMessage, exchange: AbstractExchange, routing_key: str, headers: HeadersType
) -> bool:
    """Publish a persistent copy (confirmed by the broker); the original is then acked with its batch.

    If the broker refuses the copy, the original goes back to the queue instead: never lost.
    """
    properties = message.header.properties
    copy = aio_pika.Message(
        body=message.body,
        headers=headers,
        message_id=properties.message_id,
        content_type=properties.content_type,
        timestamp=properties.timestamp,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )
    try:
        await exchange.publish(copy, routing_key=routing_key)
    except (AMQPError, ChannelInvalidStateError, RuntimeError):
        logger.exception(
            "could not publish a copy; requeueing the message", extra={"message_id": properties.message_id}
        )
        await _requeue(batch, message)
        return False
    return True


async def _requeue(batch: _Batch, message: DeliveredMessage) -> None:
    tag = _tag(message)
    if tag in batch.settled:
        return
    batch.settled.add(tag)
    with contextlib.suppress(AMQPError, ChannelInvalidStateError, RuntimeError):
        await message.channel.basic_nack(tag, requeue=True)


def _tag(message: DeliveredMessage) -> int:
    delivery = message.delivery
    return int(delivery.delivery_tag or 0) if isinstance(delivery, Basic.Deliver) else 0


def _attempts(message: DeliveredMessage) -> int:
    value = (message.header.properties.headers or {}).get(ATTEMPTS_HEADER)
    return value if isinstance(value, int) and value >= 0 else 0


def decode_event(body: bytes) -> VideoEvent:
    """Parse one message body; ValueError (with a short reason) when it is not a valid event."""
    try:
        return VideoEvent.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        if first["type"] == "json_invalid":
            raise ValueError(f"body is not JSON: {first['msg'].removeprefix('Invalid JSON: ')}") from None
        if first["type"] == "model_type" and not first["loc"]:
            raise ValueError("body is not a JSON object") from None
        location = ".".join(str(p) for p in first["loc"]) or "event"
        raise ValueError(f"{exc.error_count()} schema error(s); {location}: {first['msg']}") from None
