"""``python -m services.notifier`` as a real process delivering webhooks: SIGKILLed while its retries wait
in RabbitMQ, started again, it delivers every one of them (a restart loses no retry)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.common.settings import PROJECT_ROOT, StackSettings
from services.common.topology import QueueNames
from tests.conftest import free_port
from tests.integration.delivery_support import DeliveryQueues, requests_for, saved_search_with_webhook
from tests.integration.webhook_receiver import HOST, WebhookReceiver
from tests.waiting import wait_until


class NotifierProcess:
    """``python -m services.notifier`` on its own port, logging to a file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.env = env | {"NOTIFIER_PORT": str(self.port)}
        self.log = log
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "services.notifier",
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )

    async def metric(self, name: str, **labels: str) -> float:
        label_text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        wanted = f"{name}{{{label_text}}}" if labels else name
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
                session.get(f"http://127.0.0.1:{self.port}/metrics") as response,
            ):
                text = await response.text()
        except aiohttp.ClientError:
            return 0.0
        for line in text.splitlines():
            sample, _, value = line.rpartition(" ")
            if sample == wanted:
                return float(value)
        return 0.0

    async def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), timeout=30)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


@pytest.fixture
async def queues(
    amqp: aio_pika.abc.AbstractRobustConnection, unique_name: str, queue_names: QueueNames
) -> AsyncIterator[DeliveryQueues]:
    queues = DeliveryQueues(amqp, f"{unique_name}.deliveries")
    yield queues
    await queues.delete()
    # The stored events' queue the notifier process declared as well.
    channel = await amqp.channel()
    notify_queue = f"{queue_names.queue}.notify"
    for queue in (notify_queue, f"{notify_queue}.dead"):
        await channel.queue_delete(queue)
    await channel.exchange_delete(f"{notify_queue}.dead")
    await channel.close()


def notifier_env(
    stack: StackSettings, names: QueueNames, database: str, es_alias: str, queues: DeliveryQueues
) -> dict[str, str]:
    settings = queues.settings(webhook_retry_base_seconds=1, webhook_retry_max_seconds=2)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AMQP_", "MONGODB_", "NOTIFIER_", "WEBHOOK_"))}
    return env | {
        "AMQP_URL": stack.amqp_url,
        "AMQP_EXCHANGE": names.exchange,
        "AMQP_QUEUE": names.queue,
        "NOTIFIER_QUEUE": f"{names.queue}.notify",
        "MONGODB_URL": stack.mongodb_url,
        "MONGODB_DATABASE": database,
        "ELASTICSEARCH_URL": stack.elasticsearch_url,
        "ELASTICSEARCH_INDEX": es_alias,
        "DELIVERY_QUEUE_PREFIX": queues.prefix,
        "WEBHOOK_ALLOW_HOSTS": HOST,
        "WEBHOOK_TIMEOUT_SECONDS": str(settings.webhook_timeout_seconds),
        "WEBHOOK_RETRY_BASE_SECONDS": str(settings.webhook_retry_base_seconds),
        "WEBHOOK_RETRY_MAX_SECONDS": str(settings.webhook_retry_max_seconds),
    }


async def test_a_notifier_sigkilled_while_retries_wait_delivers_every_one_after_its_restart(
    stack: StackSettings,
    amqp: aio_pika.abc.AbstractRobustConnection,
    queue_names: QueueNames,
    queues: DeliveryQueues,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es_alias: str,
    tmp_path: Path,
) -> None:
    env = notifier_env(stack, queue_names, mongo_db.name, es_alias, queues)
    async with WebhookReceiver() as receiver:
        saved, secret = await saved_search_with_webhook(mongo_db, receiver.url())
        receiver.add_secret(saved.id, secret)
        receiver.answer = lambda request: 503
        requests = requests_for(saved, 30)
        first = NotifierProcess(env, tmp_path / "notifier-1.log")
        second = NotifierProcess(env, tmp_path / "notifier-2.log")
        try:
            await first.start()
            await queues.publish(requests)

            async def all_failed_once() -> bool:
                return len({r.delivery_id for r in receiver.requests}) == len(requests)

            await wait_until(all_failed_once, within=60, what=f"every delivery tried once (log: {first.log})")

            async def retries_waiting() -> bool:
                return await first.metric("tubewatch_notifier_deliveries_total", outcome="retried") >= len(requests)

            await wait_until(retries_waiting, within=30, what="every delivery waiting for its retry")
            await first.kill()
            assert receiver.delivered_ids == set()
            counts = await queues.counts()
            assert counts["delayed"] + counts["work"] > 0  # the retries wait in RabbitMQ, not in the dead process

            receiver.answer = lambda request: 200
            await second.start()
            await receiver.wait_delivered({r.delivery_id for r in requests}, within=60)
        finally:
            await first.stop()
            await second.stop()

        assert receiver.bad_signatures == []
    assert await queues.counts() == {"work": 0, "dead": 0, "delayed": 0}
