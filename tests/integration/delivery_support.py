"""What the webhook delivery tests share: per-test delivery queues, saved searches with webhooks, a worker.

``DeliveryQueues`` names one test's deliveries (``<unique name>.deliveries``) and deletes its queues and
exchanges at the end; ``settings`` gives delivery settings on them with a short backoff, so retries
happen within a test's time. ``saved_search_with_webhook`` writes a saved search straight to
MongoDB (what the admin API would have saved) and returns its secret.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
from prometheus_client import CollectorRegistry
from pymongo.asynchronous.database import AsyncDatabase

from services.common.saved_searches import (
    SAVED_SEARCHES_COLLECTION,
    SavedSearch,
    Webhook,
    WebhookSecret,
    new_saved_search,
    new_webhook_secret,
)
from services.common.video_filters import VideoFilters
from services.common.webhook_target import Resolver, system_resolver
from services.notifier.deliveries import (
    DEFER_MS,
    DeliveryPublisher,
    DeliveryQueueNames,
    DeliveryRequest,
    DeliveryWorker,
    declare_delivery_topology,
)
from services.notifier.metrics import DeliveryMetrics
from services.notifier.webhook_settings import DeliverySettings
from tests.integration.webhook_receiver import HOST
from tests.waiting import wait_until

# The test receivers listen on loopback: allowed, as WEBHOOK_ALLOW_HOSTS=127.0.0.1 allows them.
LOOPBACK_ALLOWED = frozenset({HOST})


@dataclass
class DeliveryQueues:
    amqp: aio_pika.abc.AbstractRobustConnection
    prefix: str
    delays_ms: set[int] = field(default_factory=set)

    @property
    def names(self) -> DeliveryQueueNames:
        return DeliveryQueueNames(self.prefix)

    def settings(self, **overrides: Any) -> DeliverySettings:
        values: dict[str, Any] = {
            "delivery_queue_prefix": self.prefix,
            "webhook_timeout_seconds": 2.0,
            "webhook_retry_base_seconds": 0.5,
            "webhook_retry_max_seconds": 2.0,
        }
        settings = DeliverySettings(**(values | overrides))
        self.delays_ms.update({DEFER_MS, *settings.retry_policy.delays_ms})
        return settings

    async def publish(self, requests: Sequence[DeliveryRequest]) -> None:
        channel = await self.amqp.channel()
        try:
            publisher = DeliveryPublisher(await declare_delivery_topology(channel, self.prefix))
            await publisher.publish(requests)
        finally:
            await channel.close()

    async def counts(self) -> dict[str, int]:
        """Ready messages in the work queue, the dead-letter queue and all the delay queues together."""
        channel = await self.amqp.channel()
        try:
            names = self.names
            counts = {}
            for label, queue_name in (("work", names.work_queue), ("dead", names.dead_queue)):
                queue = await channel.declare_queue(queue_name, passive=True)
                counts[label] = queue.declaration_result.message_count or 0
            waiting = 0
            for delay in self.delays_ms:
                queue = await channel.declare_queue(names.delay_queue(delay), passive=True)
                waiting += queue.declaration_result.message_count or 0
            counts["delayed"] = waiting
            return counts
        finally:
            await channel.close()

    async def take_dead_letters(self) -> list[aio_pika.abc.AbstractIncomingMessage]:
        channel = await self.amqp.channel()
        try:
            queue = await channel.declare_queue(self.names.dead_queue, passive=True)
            taken = []
            while (message := await queue.get(no_ack=True, fail=False)) is not None:
                taken.append(message)
            return taken
        finally:
            await channel.close()

    async def wait_dead_letters(self, count: int, within: float = 30) -> None:
        async def enough() -> bool:
            return (await self.counts())["dead"] >= count

        await wait_until(enough, within=within, what=f"{count} dead-lettered deliveries")

    async def delete(self) -> None:
        channel = await self.amqp.channel()
        names = self.names
        for queue in (names.work_queue, names.dead_queue, *(names.delay_queue(d) for d in self.delays_ms)):
            await channel.queue_delete(queue)
        for exchange in (names.exchange, names.dead_exchange):
            await channel.exchange_delete(exchange)
        await channel.close()


async def saved_search_with_webhook(
    db: AsyncDatabase[dict[str, Any]],
    url: str,
    *,
    name: str = "cricket",
    secrets: Sequence[WebhookSecret] | None = None,
) -> tuple[SavedSearch, str]:
    """A saved search with a webhook to ``url``, stored in MongoDB; and its (newest) secret."""
    now = datetime.now(UTC)
    secret = new_webhook_secret()
    kept = list(secrets) if secrets is not None else []
    webhook = Webhook(url=url, secrets=[WebhookSecret(value=secret, created_at=now), *kept])
    saved = new_saved_search(name, VideoFilters.model_validate({"q": name}), webhook, now - timedelta(minutes=1))
    await db[SAVED_SEARCHES_COLLECTION].insert_one(saved.document())
    return saved, secret


def requests_for(saved: SavedSearch, count: int, *, first: int = 0) -> list[DeliveryRequest]:
    indexed_at = datetime.now(UTC)
    return [
        DeliveryRequest.for_match(
            saved.id, f"vid{n:08d}", {"video_id": f"vid{n:08d}", "title": f"{saved.name} {n} ✓"}, indexed_at
        )
        for n in range(first, first + count)
    ]


@contextlib.asynccontextmanager
async def running_worker(
    queues: DeliveryQueues,
    db: AsyncDatabase[dict[str, Any]],
    settings: DeliverySettings,
    *,
    allow_hosts: frozenset[str] = LOOPBACK_ALLOWED,
    resolver: Resolver = system_resolver,
) -> AsyncIterator[tuple[DeliveryWorker, CollectorRegistry]]:
    """A ``DeliveryWorker`` consuming this test's work queue until the block ends; and its metrics' registry."""
    registry = CollectorRegistry()
    channel = await queues.amqp.channel()
    worker = DeliveryWorker(channel, db, settings, allow_hosts, DeliveryMetrics(registry), resolver=resolver)
    task = asyncio.create_task(worker.run())

    async def consuming() -> bool:
        if task.done():
            task.result()
        return worker.consuming

    try:
        await wait_until(consuming, within=10, what="the delivery worker consuming")
        yield worker, registry
    finally:
        await worker.close()
        await task
        await channel.close()
