"""Webhook deliveries through RabbitMQ: the request message, its queues, its publisher and its worker.

One ``DeliveryRequest`` per (saved search, video) match goes to the work queue ``<prefix>.work``
(through the direct exchange ``<prefix>``, routing key ``work``), persistent and confirmed by the
broker before the match is acknowledged. A delivery that failed in a way worth retrying waits in a
delay queue ``<prefix>.retry.<ms>ms`` whose TTL dead-letters it back to the work queue: the waits
live in RabbitMQ, so a restart of the notifier loses none. A delivery given up on lands in the
dead-letter queue ``<prefix>.dead`` (exchange ``<prefix>.dead``) with its reason in a header, for
``python -m services.notifier replay-dead``. ``DeliveryWorker`` consumes the work queue and settles
each request by what its POST (services/notifier/webhook_sender.py) came to. A delivery held back
because its host has too many in hand waits ``DEFER_MS`` in a delay queue of its own wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import aio_pika
import pydantic_core
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage, AbstractQueue
from aio_pika.exceptions import AMQPError, ChannelInvalidStateError
from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError
from pymongo.asynchronous.database import AsyncDatabase

from services.common.catalogue import REMOVED_AT_FIELD, VIDEOS_COLLECTION
from services.common.dead_letter_replay import BROKER_DEATH_HEADERS
from services.common.saved_searches import SavedSearch, get_saved_search, pause_webhook, signing_secrets
from services.common.timefmt import utc_now
from services.common.topology import QueueType, declare_durable_queue
from services.common.webhook_target import Resolver, system_resolver
from services.notifier.metrics import DeliveryMetrics
from services.notifier.webhook_sender import Outcome, WebhookSender, host_key
from services.notifier.webhook_settings import DeliverySettings

logger = logging.getLogger(__name__)

WORK_ROUTING_KEY = "work"
# Headers a delivery carries between attempts; a first attempt has none of them.
ATTEMPTS_HEADER = "x-tubewatch-attempts"
FIRST_FAILURE_HEADER = "x-tubewatch-first-failure-ms"
LAST_ERROR_HEADER = "x-tubewatch-last-error"
DEAD_REASON_HEADER = "x-tubewatch-dead-reason"
# Deliveries one worker holds unacknowledged: what its hosts' slots and waits draw from.
PREFETCH = 256
# The channels a notifier publishes its delivery requests on.
PUBLISH_CHANNELS = 8
# The wait of a delivery held back because its host had too many in hand (no attempt counted).
DEFER_MS = 1000
# What a channel that died or closed raises when a message is published or settled on it.
_CHANNEL_ERRORS = (AMQPError, ChannelInvalidStateError, RuntimeError, asyncio.TimeoutError)


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
    channel: AbstractChannel, prefix: str, delays_ms: Sequence[int] = (), queue_type: QueueType = "classic"
) -> DeliveryTopology:
    """Declare the exchange, work queue, dead-letter exchange and queue, and a delay queue per wait.

    A publisher needs no delay queue (``delays_ms`` empty); the worker declares those of its policy,
    and the defer's (``DEFER_MS``) with them: one queue if a retry waits as long.
    """
    names = DeliveryQueueNames(prefix)
    delays_ms = sorted({DEFER_MS, *delays_ms}) if delays_ms else []
    exchange = await channel.declare_exchange(names.exchange, aio_pika.ExchangeType.DIRECT, durable=True)
    dead_exchange = await channel.declare_exchange(names.dead_exchange, aio_pika.ExchangeType.FANOUT, durable=True)
    dead_queue = await declare_durable_queue(channel, names.dead_queue, queue_type)
    await dead_queue.bind(dead_exchange)
    work_queue = await declare_durable_queue(
        channel, names.work_queue, queue_type, dead_letter_exchange=names.dead_exchange
    )
    await work_queue.bind(exchange, routing_key=WORK_ROUTING_KEY)
    for delay_ms in delays_ms:
        # A delay queue dead-letters each message back to the work queue when its TTL ends.
        delay_queue = await declare_durable_queue(
            channel,
            names.delay_queue(delay_ms),
            queue_type,
            message_ttl_ms=delay_ms,
            dead_letter_exchange=names.exchange,
            dead_letter_routing_key=WORK_ROUTING_KEY,
        )
        await delay_queue.bind(exchange, routing_key=names.delay_routing_key(delay_ms))
    return DeliveryTopology(names, exchange, dead_exchange, work_queue, tuple(delays_ms))


class DeliveryPublisher:
    """Puts delivery requests on the work queue; ``publish`` returns once the broker confirmed them all.

    Every channel must have publisher confirms on (aio-pika's default). One channel sends one message
    per turn of the event loop (aiormq holds the channel's lock until its frames are written), so a
    busy notifier spreads the requests over several channels (``on_channels``).
    """

    def __init__(self, topology: DeliveryTopology, more: Sequence[AbstractExchange] = ()) -> None:
        self._exchanges = [topology.exchange, *more]

    @classmethod
    async def on_channels(cls, topology: DeliveryTopology, channels: Sequence[AbstractChannel]) -> DeliveryPublisher:
        """Publishing on the topology's channel and on ``channels`` besides."""
        name = topology.names.exchange
        return cls(topology, [await channel.get_exchange(name, ensure=False) for channel in channels])

    async def publish(self, requests: Sequence[DeliveryRequest]) -> None:
        """Persistent and confirmed: raises if the broker refused any of them (publish them all again)."""
        exchanges = self._exchanges
        await asyncio.gather(
            *(
                exchanges[n % len(exchanges)].publish(request.to_message(), routing_key=WORK_ROUTING_KEY)
                for n, request in enumerate(requests)
            )
        )


class SavedSearchSource(Protocol):
    async def get(self, saved_search_id: str) -> SavedSearch | None:
        """The saved search (``None`` if it is deleted), as of the call or a moment before."""
        ...

    def changed(self, saved_search_id: str) -> None:
        """The delivery worker wrote the saved search: the next lookups must see that write."""
        ...


class MongoSavedSearches:
    """Each lookup a read of MongoDB."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._db = db

    async def get(self, saved_search_id: str) -> SavedSearch | None:
        return await get_saved_search(self._db, saved_search_id)

    def changed(self, saved_search_id: str) -> None:
        pass


class RemovedVideos:
    """Whether YouTube deleted a video, asked of MongoDB for many deliveries in one query.

    The lookups made while a query runs are answered together by the next one, so each answer
    comes from a query begun after it was asked, as a query of its own would.
    """

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._videos = db[VIDEOS_COLLECTION]
        self._asked: dict[str, list[asyncio.Future[bool]]] = {}
        self._querying: asyncio.Task[None] | None = None

    async def removed(self, video_id: str) -> bool:
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._asked.setdefault(video_id, []).append(answer)
        if self._querying is None or self._querying.done():
            self._querying = asyncio.create_task(self._query(), name="removed-videos")
        return await answer

    async def _query(self) -> None:
        while self._asked:
            asked, self._asked = self._asked, {}
            try:
                removed = {
                    doc["video_id"]
                    async for doc in self._videos.find(
                        {"video_id": {"$in": list(asked)}, REMOVED_AT_FIELD: {"$ne": None}}, {"_id": 0, "video_id": 1}
                    )
                }
            except Exception as exc:
                for answers in asked.values():
                    for answer in answers:
                        if not answer.done():
                            answer.set_exception(exc)
                continue
            for video_id, answers in asked.items():
                for answer in answers:
                    if not answer.done():
                        answer.set_result(video_id in removed)


def webhook_body(request: DeliveryRequest, saved_search: SavedSearch) -> bytes:
    """What the receiver gets: ``{"delivery_id", "saved_search": {"id", "name"}, "video"}`` as UTF-8 JSON."""
    payload = {
        "delivery_id": request.delivery_id,
        "saved_search": {"id": saved_search.id, "name": saved_search.name},
        "video": request.video,
    }
    # pydantic-core's encoder: compact UTF-8 JSON as json.dumps(ensure_ascii=False) writes it, 3x faster.
    return pydantic_core.to_json(payload)


class DeliveryWorker:
    """Consumes the work queue and POSTs each request to its saved search's webhook.

    Per request, exactly one of: delivered (2xx; acked); retried (429, 5xx, a timeout, a connection
    error: a copy waits in the delay queue of its backoff, then the original is acked); dead-lettered
    (another 4xx, a redirect, a refused address, or still failing WEBHOOK_RETRY_HOURS after the first
    failure); gone (410: the webhook is paused in MongoDB, the request dropped); skipped (the saved
    search is deleted, has no webhook or it is paused, or YouTube deleted the video since it was
    queued: a retry waiting hours must not post a removed video). Every copy is confirmed by the broker before
    the original is acked, so a crash in between can only repeat a delivery, never lose one.

    A host with ``4 x WEBHOOK_CONCURRENCY_PER_HOST`` requests in hand gets its next ones deferred for
    ``DEFER_MS`` (no attempt counted), so a slow receiver cannot fill the prefetch window the other
    hosts' deliveries need.

    The saved searches come from ``saved_searches`` (the notifier's synced copy), MongoDB by default.
    """

    def __init__(
        self,
        channel: AbstractChannel,
        db: AsyncDatabase[dict[str, Any]],
        settings: DeliverySettings,
        allow_hosts: frozenset[str],
        metrics: DeliveryMetrics,
        *,
        resolver: Resolver = system_resolver,
        prefetch: int = PREFETCH,
        saved_searches: SavedSearchSource | None = None,
        queue_type: QueueType = "classic",
    ) -> None:
        self._channel = channel
        self._db = db
        self._saved_searches = saved_searches or MongoSavedSearches(db)
        self._removed_videos = RemovedVideos(db)
        self._queue_type = queue_type
        self._settings = settings
        self._policy = settings.retry_policy
        self._metrics = metrics
        self._prefetch = prefetch
        self._held_per_host = 4 * settings.webhook_concurrency_per_host
        self._sender = WebhookSender(
            settings.webhook_timeout_seconds, settings.webhook_concurrency_per_host, allow_hosts, resolver
        )
        self._closing = asyncio.Event()
        self._stopped = asyncio.Event()
        self._running = False
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._topology: DeliveryTopology | None = None
        self.consuming = False

    async def run(self) -> None:
        """Consume until ``close``; then finish the deliveries in hand and return."""
        if self._closing.is_set():
            return
        self._running = True
        try:
            self._topology = await declare_delivery_topology(
                self._channel,
                self._settings.delivery_queue_prefix,
                self._policy.delays_ms,
                self._queue_type,
            )
            await self._channel.set_qos(prefetch_count=self._prefetch)
            await self._sender.start()
            queue = self._topology.work_queue
            consumer_tag = await queue.consume(self._on_message)
            self.consuming = True
            logger.info("consuming deliveries", extra={"queue": queue.name})
            try:
                await self._closing.wait()
            finally:
                self.consuming = False
                with contextlib.suppress(*_CHANNEL_ERRORS):
                    await queue.cancel(consumer_tag)
                if self._in_flight:
                    await asyncio.gather(*self._in_flight, return_exceptions=True)
        finally:
            await self._sender.close()
            self._stopped.set()

    async def close(self) -> None:
        """Stop consuming and wait for the deliveries in hand (each bounded by WEBHOOK_TIMEOUT_SECONDS)."""
        self._closing.set()
        if self._running:
            await self._stopped.wait()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            await self._handle(message)
        except Exception:
            # MongoDB out, a channel lost: the delivery is tried again after the shortest wait, no
            # attempt counted (with the channel gone, RabbitMQ redelivers it instead).
            logger.exception("could not handle a delivery; tried again later", extra=_ids(message))
            await self._defer(message)
        finally:
            if task is not None:
                self._in_flight.discard(task)

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        try:
            request = DeliveryRequest.model_validate_json(message.body)
        except ValidationError as exc:
            await self._dead_letter(message, f"not a delivery request: {str(exc)[:500]}", "invalid")
            return
        log_extra = {"delivery_id": request.delivery_id, "saved_search_id": request.saved_search_id}
        saved = await self._saved_searches.get(request.saved_search_id)
        webhook = saved.webhook if saved is not None else None
        if saved is None or webhook is None or webhook.paused:
            why = "deleted" if saved is None else "no webhook" if webhook is None else "paused"
            logger.info("delivery skipped: the saved search's webhook is %s", why, extra=log_extra)
            self._metrics.deliveries.labels("skipped").inc()
            await message.ack()
            return
        if await self._removed_videos.removed(request.video_id):
            logger.info("delivery skipped: the video was removed", extra=log_extra | {"video_id": request.video_id})
            self._metrics.deliveries.labels("skipped").inc()
            await message.ack()
            return
        host = host_key(webhook.url)
        log_extra["host"] = host
        if self._sender.slots.held(host) >= self._held_per_host:
            await self._defer(message)
            return
        secrets = signing_secrets(saved, utc_now())
        if not secrets:
            await self._dead_letter(message, "the webhook has no signing secret left", "rejected", log_extra)
            return
        started = time.monotonic()
        result = await self._sender.send(webhook.url, webhook_body(request, saved), secrets, log_extra)
        self._metrics.request_seconds.observe(time.monotonic() - started)
        if result.outcome is Outcome.DELIVERED:
            await message.ack()
            self._metrics.deliveries.labels("delivered").inc()
            self._metrics.latency.observe(max(0.0, (utc_now() - request.indexed_at).total_seconds()))
        elif result.outcome is Outcome.GONE:
            reason = f"the receiver answered {result.detail} at {utc_now().isoformat(timespec='seconds')}"
            await pause_webhook(self._db, saved.id, reason)
            self._saved_searches.changed(saved.id)
            logger.warning("webhook paused: its receiver answered 410 Gone", extra=log_extra)
            await message.ack()
            self._metrics.deliveries.labels("gone").inc()
        elif result.outcome is Outcome.REJECTED:
            await self._dead_letter(message, result.detail, result.cause, log_extra)
        else:
            await self._retry_or_give_up(message, result.detail, log_extra)

    async def _retry_or_give_up(self, message: AbstractIncomingMessage, detail: str, log_extra: dict[str, Any]) -> None:
        headers = dict(message.headers or {})
        previous = headers.get(ATTEMPTS_HEADER)
        failures = (previous if isinstance(previous, int) and previous >= 0 else 0) + 1
        now_ms = int(time.time() * 1000)
        first = headers.get(FIRST_FAILURE_HEADER)
        first_failure_ms = first if isinstance(first, int) and 0 < first <= now_ms else now_ms
        delay_ms = self._policy.delay_ms(failures)
        if self._policy.gives_up(first_failure_ms, now_ms, delay_ms):
            hours = (now_ms - first_failure_ms) / 3_600_000
            reason = f"still failing after {failures} attempts over {hours:.1f} h; the last: {detail}"
            await self._dead_letter(message, reason, "expired", log_extra, attempts=failures)
            return
        headers.update({ATTEMPTS_HEADER: failures, FIRST_FAILURE_HEADER: first_failure_ms, LAST_ERROR_HEADER: detail})
        logger.info(
            "delivery failed; retried later",
            extra=log_extra | {"attempts": failures, "delay_ms": delay_ms, "error": detail[:300]},
        )
        assert self._topology is not None
        if await self._publish_copy(message, self._topology.names.delay_routing_key(delay_ms), headers):
            self._metrics.deliveries.labels("retried").inc()
            self._metrics.retries_queued.labels(f"{delay_ms / 1000:g}s").inc()

    async def _defer(self, message: AbstractIncomingMessage) -> None:
        """Back to RabbitMQ for ``DEFER_MS``, the attempts unchanged."""
        assert self._topology is not None
        routing_key = self._topology.names.delay_routing_key(DEFER_MS)
        if await self._publish_copy(message, routing_key, dict(message.headers or {})):
            self._metrics.deliveries.labels("deferred").inc()

    async def _dead_letter(
        self,
        message: AbstractIncomingMessage,
        reason: str,
        cause: str,
        log_extra: dict[str, Any] | None = None,
        *,
        attempts: int | None = None,
    ) -> None:
        reason = reason[:1000]
        logger.warning(
            "delivery dead-lettered", extra=(log_extra or _ids(message)) | {"reason": reason, "cause": cause}
        )
        headers = dict(message.headers or {})
        headers[DEAD_REASON_HEADER] = reason
        if attempts is not None:
            headers[ATTEMPTS_HEADER] = attempts
        assert self._topology is not None
        if await self._publish_copy(message, "", headers, exchange=self._topology.dead_exchange):
            self._metrics.deliveries.labels("dead_lettered").inc()
            self._metrics.dead_letters.labels(cause).inc()

    async def _publish_copy(
        self,
        message: AbstractIncomingMessage,
        routing_key: str,
        headers: dict[str, Any],
        *,
        exchange: AbstractExchange | None = None,
    ) -> bool:
        """A confirmed persistent copy, then the original acked; if the copy fails the original is requeued."""
        assert self._topology is not None
        copy = aio_pika.Message(
            body=message.body,
            # The broker's own records of earlier dead-lettering (through the delay queues) stay with
            # the broker: a client may not set them.
            headers={k: v for k, v in headers.items() if k not in BROKER_DEATH_HEADERS},
            content_type=message.content_type,
            message_id=message.message_id,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        try:
            await (exchange or self._topology.exchange).publish(copy, routing_key=routing_key)
        except _CHANNEL_ERRORS:
            logger.exception("could not publish a delivery's copy; requeued", extra=_ids(message))
            with contextlib.suppress(*_CHANNEL_ERRORS):
                await message.nack(requeue=True)
            return False
        with contextlib.suppress(*_CHANNEL_ERRORS):
            await message.ack()
        return True


def _ids(message: AbstractIncomingMessage) -> dict[str, Any]:
    return {"delivery_id": message.message_id}
