"""Helpers of the indexer's tests: settings on per-test names, publishing, queues, real indexer processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import pytest
from elasticsearch import AsyncElasticsearch
from prometheus_client import CollectorRegistry
from pymongo.asynchronous.database import AsyncDatabase

from services.common.catalogue import VIDEOS_COLLECTION
from services.common.events import VideoEvent
from services.common.settings import PROJECT_ROOT, StackSettings
from services.common.topology import ROUTING_KEY_VIDEO_FOUND, QueueNames, declare_index_queue
from services.indexer.consumer import BatchIndexer
from services.indexer.metrics import IndexerMetrics
from services.indexer.settings import Settings
from services.indexer.store import VideoWriter
from tests.conftest import free_port
from tests.waiting import wait_until


def indexer_settings(
    *,
    amqp_url: str,
    names: QueueNames,
    mongodb_url: str,
    database: str,
    elasticsearch_url: str,
    alias: str,
    **extra: Any,
) -> Settings:
    return Settings(
        amqp_url=amqp_url,
        amqp_exchange=names.exchange,
        amqp_queue=names.queue,
        mongodb_url=mongodb_url,
        mongodb_database=database,
        elasticsearch_url=elasticsearch_url,
        elasticsearch_index=alias,
        **extra,
    )


def shared_stack_settings(stack: StackSettings, names: QueueNames, database: str, alias: str, **extra: Any) -> Settings:
    """Indexer settings on the shared local stack, for this test's queue, database and alias."""
    return indexer_settings(
        amqp_url=stack.amqp_url,
        names=names,
        mongodb_url=stack.mongodb_url,
        database=database,
        elasticsearch_url=stack.elasticsearch_url,
        alias=alias,
        **extra,
    )


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes ``python -m services.indexer`` read ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INDEX_", "REINDEX_", "AMQP_", "MONGODB_"))}
    for name, value in settings.model_dump().items():
        if value is None:
            continue  # unset: the service's own default
        # Lists as the settings read them (comma-separated), not as Python prints them.
        env[name.upper()] = ",".join(map(str, value)) if isinstance(value, list) else str(value)
    return env


def bodies(events: Iterable[VideoEvent]) -> list[bytes]:
    return [e.model_dump_json().encode() for e in events]


async def publish(
    amqp: aio_pika.abc.AbstractRobustConnection,
    names: QueueNames,
    payloads: list[bytes],
    *,
    headers: Mapping[str, Any] | None = None,
) -> None:
    """Publish persistent messages to the exchange with confirms, many in flight."""
    channel = await amqp.channel(publisher_confirms=True)
    try:
        await declare_index_queue(channel, names)
        exchange = await channel.get_exchange(names.exchange)
        for start in range(0, len(payloads), 2000):
            await asyncio.gather(
                *(
                    exchange.publish(
                        aio_pika.Message(
                            body,
                            headers=dict(headers or {}),
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        ),
                        ROUTING_KEY_VIDEO_FOUND,
                    )
                    for body in payloads[start : start + 2000]
                )
            )
    finally:
        await channel.close()


async def ready_counts(amqp: aio_pika.abc.AbstractRobustConnection, names: QueueNames) -> tuple[int, int]:
    """Messages ready in the work queue and in the dead-letter queue."""
    channel = await amqp.channel()
    try:
        work = await channel.declare_queue(names.queue, passive=True)
        dead = await channel.declare_queue(names.dead_queue, passive=True)
        return int(work.declaration_result.message_count or 0), int(dead.declaration_result.message_count or 0)
    finally:
        await channel.close()


@dataclass
class DeadLetter:
    body: bytes
    headers: dict[str, Any]


async def take_dead_letters(
    amqp: aio_pika.abc.AbstractRobustConnection, names: QueueNames, expected: int, *, within: float = 60
) -> list[DeadLetter]:
    """Consume ``expected`` dead letters (waiting for them to arrive)."""
    channel = await amqp.channel()
    found: list[DeadLetter] = []
    try:
        dead = await channel.declare_queue(names.dead_queue, durable=True)

        async def all_taken() -> bool:
            message = await dead.get(no_ack=True, fail=False)
            if message is not None:
                found.append(DeadLetter(message.body, dict(message.headers or {})))
            return len(found) >= expected

        await wait_until(all_taken, within=within, what=f"{expected} dead letters")
    finally:
        await channel.close()
    return found


async def stored_counts(db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, alias: str) -> tuple[int, int]:
    """(MongoDB videos, Elasticsearch documents after a refresh)."""
    await es.indices.refresh(index=alias)
    return await db[VIDEOS_COLLECTION].count_documents({}), int((await es.count(index=alias))["count"])


async def wait_stored(
    db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    alias: str,
    expected: int,
    *,
    in_search: int | None = None,
    within: float = 120,
) -> None:
    """Wait until MongoDB holds ``expected`` videos and Elasticsearch ``in_search`` (default: as many)."""
    in_search = expected if in_search is None else in_search

    async def mongo_has_all() -> bool:
        return await db[VIDEOS_COLLECTION].count_documents({}) >= expected

    await wait_until(mongo_has_all, within=within, what=f"{expected} videos in MongoDB")

    async def es_has_all() -> bool:
        return (await stored_counts(db, es, alias))[1] >= in_search

    await wait_until(es_has_all, within=within, what=f"{in_search} documents in Elasticsearch")


@contextlib.asynccontextmanager
async def running_indexer(
    settings: Settings,
    amqp: aio_pika.abc.AbstractRobustConnection,
    db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
) -> AsyncIterator[tuple[BatchIndexer, CollectorRegistry]]:
    """The batch consumer in this process (on the test's clients), stopped gracefully at the end."""
    registry = CollectorRegistry()
    indexer = BatchIndexer(settings, VideoWriter(db, es, settings.elasticsearch_index), IndexerMetrics(registry))
    channel = await amqp.channel()
    task = asyncio.create_task(indexer.run(channel))
    try:
        yield indexer, registry
    finally:
        indexer.stop()
        await asyncio.wait_for(task, timeout=60)
        with contextlib.suppress(Exception):
            await channel.close()


def holds(predicate: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    """An awaitable condition for ``wait_until`` from a plain predicate."""

    async def check() -> bool:
        return predicate()

    return check


def metric(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


class IndexerProcess:
    """``python -m services.indexer`` as a real process, on its own port, logging to a file."""

    def __init__(self, settings: Settings, log_dir: Path, name: str = "indexer") -> None:
        self.port = free_port()
        self.settings = settings.model_copy(update={"indexer_port": self.port})
        self.log = log_dir / f"{name}-{self.port}.log"
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, *args: str) -> IndexerProcess:
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "services.indexer",
                *args,
                cwd=PROJECT_ROOT,
                env=settings_env(self.settings),
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def get(self, path: str) -> tuple[int, str]:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
            session.get(self.url + path) as response,
        ):
            return response.status, await response.text()

    async def is_ready(self) -> bool:
        try:
            return (await self.get("/readyz"))[0] == 200
        except aiohttp.ClientError:
            return False

    async def wait_ready(self, within: float = 60) -> None:
        await wait_until(self.is_ready, within=within, what=f"indexer ready on {self.url} (log: {self.log})")

    async def metric(self, name: str, **labels: str) -> float:
        """One sample of the process's /metrics (0 when absent)."""
        _, text = await self.get("/metrics")
        label_text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        pattern = re.escape(name) + (r"\{" + re.escape(label_text) + r"\}" if labels else "") + r" (\S+)"
        match = re.search(r"^" + pattern + r"$", text, re.MULTILINE)
        return float(match.group(1)) if match else 0.0

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    async def wait_exit(self, within: float = 60) -> int:
        assert self.process is not None
        try:
            return await asyncio.wait_for(self.process.wait(), timeout=within)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            pytest.fail(f"indexer did not exit within {within}s; log: {self.log.read_text()[-3000:]}")

    async def stop(self) -> None:
        """SIGTERM and wait; SIGKILL if it hangs. Safe to call twice."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), timeout=60)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""
