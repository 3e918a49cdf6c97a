"""What the notifier's matching tests share: settings on per-test names, saved searches written straight to
MongoDB (as the admin API saves them), the matching running in this process, the queued deliveries."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aio_pika
from elasticsearch import AsyncElasticsearch
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
from services.common.settings import StackSettings
from services.common.stored_events import VideosStored
from services.common.topology import QueueNames, declare_stored_exchange
from services.common.video_filters import VideoFilters
from services.notifier.deliveries import DeliveryPublisher, DeliveryRequest, declare_delivery_topology
from services.notifier.match_store import MatchStore
from services.notifier.matching import StoredEventMatcher
from services.notifier.metrics import NotifierMetrics
from services.notifier.saved_search_index import SavedSearchPercolator
from services.notifier.saved_search_sync import SavedSearchSync
from services.notifier.settings import Settings
from services.notifier.stored_consumer import StoredEventConsumer
from tests.integration.delivery_support import DeliveryQueues
from tests.waiting import wait_until


def notifier_settings(
    stack: StackSettings, names: QueueNames, database: str, alias: str, queues: DeliveryQueues, **extra: Any
) -> Settings:
    """Notifier settings on the shared local stack, for this test's queues, database and alias."""
    return Settings(
        amqp_url=stack.amqp_url,
        amqp_exchange=names.exchange,
        amqp_queue=names.queue,
        notifier_queue=f"{names.queue}.notify",
        mongodb_url=stack.mongodb_url,
        mongodb_database=database,
        elasticsearch_url=stack.elasticsearch_url,
        elasticsearch_index=alias,
        delivery_queue_prefix=queues.prefix,
        **extra,
    )


async def delete_notifier_queues(amqp: aio_pika.abc.AbstractRobustConnection, settings: Settings) -> None:
    channel = await amqp.channel()
    for name in (settings.notifier_queue, f"{settings.notifier_queue}.dead"):
        await channel.queue_delete(name)
    await channel.exchange_delete(f"{settings.notifier_queue}.dead")
    await channel.close()


async def save_search(
    db: AsyncDatabase[dict[str, Any]],
    filters: dict[str, Any],
    *,
    url: str = "http://127.0.0.1:9/hook",
    webhook: bool = True,
    paused: bool = False,
    created_at: datetime | None = None,
) -> tuple[SavedSearch, str]:
    """A saved search of ``filters`` (with a webhook to ``url`` unless not ``webhook``) stored in MongoDB,
    created at ``created_at`` (now); and its secret."""
    now = created_at or datetime.now(UTC)
    secret = new_webhook_secret()
    hook = Webhook(url=url, paused=paused, secrets=[WebhookSecret(value=secret, created_at=now)]) if webhook else None
    saved = new_saved_search(str(filters.get("q") or "everything"), VideoFilters.model_validate(filters), hook, now)
    await db[SAVED_SEARCHES_COLLECTION].insert_one(saved.document())
    return saved, secret


@dataclass
class RunningMatcher:
    consumer: StoredEventConsumer
    sync: SavedSearchSync
    registry: CollectorRegistry

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


@contextlib.asynccontextmanager
async def running_matcher(
    settings: Settings,
    amqp: aio_pika.abc.AbstractRobustConnection,
    db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
) -> AsyncIterator[RunningMatcher]:
    """The notifier's matching in this process (its percolator sync, consumer and delivery publisher, on
    the test's clients), consuming until the block ends; deliveries stay queued for the test to read."""
    registry = CollectorRegistry()
    metrics = NotifierMetrics(registry)
    percolator = SavedSearchPercolator(es, settings.elasticsearch_index)
    sync = SavedSearchSync(db, percolator, metrics)
    publish_channel = await amqp.channel()
    publisher = DeliveryPublisher(await declare_delivery_topology(publish_channel, settings.delivery_queue_prefix))
    matches = MatchStore(db)
    await matches.prepare()
    matcher = StoredEventMatcher(
        db=db, percolator=percolator, sync=sync, matches=matches, deliveries=publisher, metrics=metrics
    )
    consumer = StoredEventConsumer(settings, matcher, metrics)
    consume_channel = await amqp.channel()
    sync_task = asyncio.create_task(sync.run())
    try:
        await consumer.start(consume_channel)
        yield RunningMatcher(consumer, sync, registry)
    finally:
        await consumer.stop(10)
        sync_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sync_task
        await consume_channel.close()
        await publish_channel.close()


async def take_deliveries(queues: DeliveryQueues, count: int, *, within: float = 30) -> list[DeliveryRequest]:
    """Take ``count`` queued delivery requests off the work queue (waiting for them)."""
    channel = await queues.amqp.channel()
    taken: list[DeliveryRequest] = []
    try:
        queue = await channel.declare_queue(queues.names.work_queue, passive=True)

        async def enough() -> bool:
            while len(taken) < count and (message := await queue.get(no_ack=True, fail=False)) is not None:
                taken.append(DeliveryRequest.model_validate_json(message.body))
            return len(taken) >= count

        await wait_until(enough, within=within, what=f"{count} queued deliveries")
        return taken
    finally:
        await channel.close()


@dataclass
class StoredEventsWatch:
    """A queue of the test bound to the stored events' exchange: which videos the indexer announced."""

    queue: aio_pika.abc.AbstractQueue
    events: int = 0
    announced: set[str] = field(default_factory=set)

    async def wait_announced(self, video_ids: set[str], *, within: float = 30) -> int:
        """Wait until the indexer announced every one of ``video_ids``; returns the events so far."""

        async def all_announced() -> bool:
            while (message := await self.queue.get(no_ack=True, fail=False)) is not None:
                self.events += 1
                self.announced.update(VideosStored.model_validate_json(message.body).video_ids)
            return video_ids <= self.announced

        await wait_until(all_announced, within=within, what=f"{len(video_ids)} videos announced as stored")
        return self.events


@contextlib.asynccontextmanager
async def stored_events_watch(
    amqp: aio_pika.abc.AbstractRobustConnection, names: QueueNames
) -> AsyncIterator[StoredEventsWatch]:
    channel = await amqp.channel()
    queue = await channel.declare_queue(f"{names.queue}.stored-watch", durable=True)
    await queue.bind(await declare_stored_exchange(channel, names))
    try:
        yield StoredEventsWatch(queue)
    finally:
        await queue.delete(if_unused=False, if_empty=False)
        await channel.close()


async def wait_matched(matcher: RunningMatcher, events: int, *, within: float = 30) -> None:
    """Wait until the notifier acknowledged ``events`` stored events (all their deliveries queued)."""

    async def matched() -> bool:
        return matcher.metric("tubewatch_notifier_stored_events_total", outcome="matched") >= events

    await wait_until(matched, within=within, what=f"{events} stored events matched")


async def queued_deliveries(queues: DeliveryQueues) -> int:
    """Delivery requests waiting in the work queue."""
    return (await queues.counts())["work"]
