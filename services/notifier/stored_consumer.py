"""``StoredEventConsumer``: the notifier's consumer of the indexer's stored events (a competing consumer).

It declares its durable queue bound to ``<AMQP_EXCHANGE>.stored`` with a dead-letter exchange
(``services.common.topology.declare_stored_queue``), takes up to ``NOTIFIER_PREFETCH`` events at
once (each handled in its own task), and settles each one: a body that is not a stored event is
dead-lettered at once; any other failure (MongoDB, Elasticsearch or RabbitMQ out) holds the event
and tries it again with capped, jittered backoff, never giving up, so nothing is lost; it is
acknowledged once ``StoredEventMatcher.handle`` returned, i.e. after its deliveries were confirmed.
On ``stop`` it stops consuming and leaves the events in hand to redelivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from aio_pika.exceptions import AMQPError, ChannelInvalidStateError
from pydantic import ValidationError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_random_exponential

from services.common.stored_events import VideosStored
from services.common.topology import QueueNames, declare_stored_queue
from services.notifier.deliveries import DeliveryQueueNames
from services.notifier.matching import StoredEventMatcher
from services.notifier.metrics import NotifierMetrics
from services.notifier.settings import Settings

logger = logging.getLogger(__name__)

RETRY_MAX_SECONDS = 10.0


class StoredEventConsumer:
    def __init__(self, settings: Settings, matcher: StoredEventMatcher, metrics: NotifierMetrics) -> None:
        self._settings = settings
        self._matcher = matcher
        self._metrics = metrics
        self.names = QueueNames(settings.amqp_exchange, settings.amqp_queue, settings.amqp_queue_type)
        self.queue_name = settings.notifier_queue
        deliveries = DeliveryQueueNames(settings.delivery_queue_prefix)
        # The gauges' queues: stored events (the matching's lag) and deliveries (the webhooks' lag),
        # and the dead letters of each.
        self.watched_queues = (
            self.queue_name,
            f"{self.queue_name}.dead",
            deliveries.work_queue,
            deliveries.dead_queue,
        )
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._in_flight: set[asyncio.Task[object]] = set()
        self.state = "starting"
        self.holding = 0

    async def start(self, channel: AbstractChannel) -> None:
        """Declare the queue and start consuming (aio-pika consumes again whenever the channel reopens)."""
        await channel.set_qos(prefetch_count=self._settings.notifier_prefetch)
        self._queue = await declare_stored_queue(channel, self.names, self.queue_name)
        self._consumer_tag = await self._queue.consume(self._on_message)
        self.state = "consuming"
        logger.info("consuming stored events", extra={"queue": self.queue_name})

    async def stop(self, grace_seconds: float) -> None:
        """No new events; the events in hand get ``grace_seconds`` to finish, then are left to
        redelivery (unacked, they go back to the queue when the channel closes)."""
        self.state = "stopping"
        if self._queue is not None and self._consumer_tag is not None:
            with contextlib.suppress(AMQPError, ChannelInvalidStateError, RuntimeError, asyncio.TimeoutError):
                await self._queue.cancel(self._consumer_tag, timeout=5)
            self._consumer_tag = None
        if self._in_flight:
            _, pending = await asyncio.wait(set(self._in_flight), timeout=grace_seconds)
            for task in pending:
                task.cancel()
            if pending:
                logger.warning(
                    "stored events not matched in time; leaving them to redelivery", extra={"events": len(pending)}
                )
                await asyncio.gather(*pending, return_exceptions=True)
        self.state = "stopped"

    @property
    def consuming(self) -> bool:
        return self._queue is not None and self._consumer_tag is not None and not self._queue.channel.is_closed

    async def refresh_queue_depth(self, channel: AbstractChannel) -> None:
        """Publish the ready-message counts of the watched queues as gauges."""
        for name in self.watched_queues:
            queue = await channel.declare_queue(name, passive=True)
            if queue.declaration_result.message_count is not None:
                self._metrics.queue_depth.labels(name).set(queue.declaration_result.message_count)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        try:
            event = VideosStored.model_validate_json(message.body)
        except ValidationError as exc:
            logger.warning(
                "dead-lettering a message that is not a stored event",
                extra={"message_id": message.message_id, "error": str(exc)[:300]},
            )
            await message.reject(requeue=False)
            self._metrics.events.labels("dead_lettered").inc()
            return
        started = time.perf_counter()
        held = False

        def on_failure(retry_state: RetryCallState) -> None:
            nonlocal held
            error = retry_state.outcome.exception() if retry_state.outcome else None
            if not held:
                held = True
                self.holding += 1
                self._metrics.events.labels("retried").inc()
                logger.warning(
                    "could not match a stored event; holding it and trying again",
                    extra={"message_id": message.message_id, "error": f"{type(error).__name__}: {str(error)[:300]}"},
                )
            self.state = f"holding: {type(error).__name__}"

        retrying = AsyncRetrying(
            retry=retry_if_exception_type(Exception),
            wait=wait_random_exponential(multiplier=0.2, max=RETRY_MAX_SECONDS),
            before_sleep=on_failure,
            reraise=True,
        )
        try:
            await retrying(self._matcher.handle, event)
        finally:
            if held:
                self.holding -= 1
                if not self.holding and self.state.startswith("holding"):
                    self.state = "consuming"
        await message.ack()
        self._metrics.events.labels("matched").inc()
        self._metrics.event_seconds.observe(time.perf_counter() - started)
