"""AMQP_QUEUE_TYPE=quorum on the real broker (quorum queues work on one node): every queue the project
declares is a quorum queue, messages flow, dead-letter and wait out their delay as with classic queues,
passive declares read them, and a queue of the other type stops a service at start with one line."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aio_pika
import pytest
from elasticsearch import AsyncElasticsearch
from pymongo.asynchronous.database import AsyncDatabase

from services.common.settings import PROJECT_ROOT, StackSettings
from services.common.topology import (
    ROUTING_KEY_VIDEO_FOUND,
    QueueMismatchError,
    QueueNames,
    declare_index_queue,
    declare_stored_queue,
)
from services.fetcher.websub_notices import declare_notice_queue
from services.indexer.settlement import DEAD_REASON_HEADER
from services.notifier.deliveries import declare_delivery_topology
from tests.conftest import free_port
from tests.factories import make_event
from tests.integration.indexer_support import (
    bodies,
    publish,
    ready_counts,
    running_indexer,
    shared_stack_settings,
    wait_stored,
)

DELAY_MS = 300


async def _rabbitmqctl(*args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        "rabbitmqctl", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def _queue_types(prefix: str) -> dict[str, str]:
    listed = await _rabbitmqctl("list_queues", "name", "type", "--no-table-headers", "--quiet")
    rows = (line.split("\t") for line in listed.splitlines() if line.startswith(prefix))
    return {name: kind for name, kind in rows}


@pytest.fixture
async def cleanup(amqp: aio_pika.abc.AbstractRobustConnection, unique_name: str) -> AsyncIterator[None]:
    """Deletes every queue and exchange of this test (all are named after ``unique_name``)."""
    yield
    listed = await _rabbitmqctl("list_queues", "name", "--no-table-headers", "--quiet")
    exchanges = await _rabbitmqctl("list_exchanges", "name", "--no-table-headers", "--quiet")
    channel = await amqp.channel()
    for name in listed.split():
        if name.startswith(unique_name):
            await channel.queue_delete(name)
    for name in exchanges.split():
        if name.startswith(unique_name):
            await channel.exchange_delete(name)
    await channel.close()


async def _get(channel: aio_pika.abc.AbstractChannel, queue: str, within: float = 10) -> aio_pika.IncomingMessage:
    declared = await channel.declare_queue(queue, passive=True)
    for _ in range(int(within / 0.05)):
        message = await declared.get(fail=False)
        if message is not None:
            assert isinstance(message, aio_pika.IncomingMessage)
            return message
        await asyncio.sleep(0.05)
    raise AssertionError(f"nothing arrived in {queue} within {within} s")


def _death_reason(message: aio_pika.IncomingMessage) -> str:
    """Why the broker dead-lettered ``message`` last (its x-death header)."""
    deaths = message.headers["x-death"]
    assert isinstance(deaths, list) and isinstance(deaths[0], dict)
    return str(deaths[0]["reason"])


async def test_the_whole_topology_declared_with_quorum_queues_carries_dead_letters_and_delays(
    amqp: aio_pika.abc.AbstractRobustConnection, unique_name: str, cleanup: None
) -> None:
    names = QueueNames(f"{unique_name}.videos", f"{unique_name}.videos.index", "quorum")
    stored_queue = f"{unique_name}.notifier"
    notices = f"{unique_name}.notices"
    prefix = f"{unique_name}.deliveries"
    channel = await amqp.channel()
    await declare_index_queue(channel, names)
    await declare_stored_queue(channel, names, stored_queue)
    await declare_notice_queue(channel, notices, "quorum")
    deliveries = await declare_delivery_topology(channel, prefix, (DELAY_MS,), "quorum")
    # Declaring again (every start does) is accepted as it is.
    await declare_index_queue(channel, names)
    await declare_delivery_topology(channel, prefix, (DELAY_MS,), "quorum")

    expected = {
        names.queue,
        names.dead_queue,
        stored_queue,
        f"{stored_queue}.dead",
        notices,
        f"{notices}.dead",
        deliveries.names.work_queue,
        deliveries.names.dead_queue,
        deliveries.names.delay_queue(DELAY_MS),
    }
    types = await _queue_types(unique_name)
    assert expected <= set(types)
    assert set(types.values()) == {"quorum"}

    # Published, consumed, rejected: the dead-letter queue has it (at least once, via its exchange).
    exchange = await channel.get_exchange(names.exchange)
    await exchange.publish(
        aio_pika.Message(b"video", delivery_mode=aio_pika.DeliveryMode.PERSISTENT), ROUTING_KEY_VIDEO_FOUND
    )
    taken = await _get(channel, names.queue)
    assert taken.body == b"video"
    await taken.reject(requeue=False)
    dead = await _get(channel, names.dead_queue)
    assert dead.body == b"video"
    assert _death_reason(dead) == "rejected"
    await dead.ack()

    # A delivery put on its delay queue comes back to the work queue once its TTL has passed.
    sent = asyncio.get_running_loop().time()
    await deliveries.exchange.publish(
        aio_pika.Message(b"retry", delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
        deliveries.names.delay_routing_key(DELAY_MS),
    )
    back = await _get(channel, deliveries.names.work_queue)
    assert back.body == b"retry"
    assert asyncio.get_running_loop().time() - sent >= DELAY_MS / 1000 * 0.9
    assert _death_reason(back) == "expired"
    await back.reject(requeue=False)
    assert (await _get(channel, deliveries.names.dead_queue)).body == b"retry"

    # Passive declares (the consumers' depth gauges, the API's status) read quorum queues too.
    for name in expected:
        declared = await channel.declare_queue(name, passive=True)
        assert declared.declaration_result.message_count is not None
    await channel.close()


async def test_the_indexer_stores_and_dead_letters_through_quorum_queues(
    stack: StackSettings,
    amqp: aio_pika.abc.AbstractRobustConnection,
    unique_name: str,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    es_alias: str,
    cleanup: None,
) -> None:
    names = QueueNames(f"{unique_name}.videos", f"{unique_name}.videos.index", "quorum")
    rng = random.Random(23)
    events = [make_event(rng) for _ in range(200)]
    await publish(amqp, names, [*bodies(events[:100]), b"not json", *bodies(events[100:])])
    settings = shared_stack_settings(
        stack, names, mongo_db.name, es_alias, amqp_queue_type="quorum", index_batch_size=50, index_batch_max_wait_ms=50
    )
    async with running_indexer(settings, amqp, mongo_db, es):
        await wait_stored(mongo_db, es, es_alias, len(events))
        channel = await amqp.channel()
        dead = await _get(channel, names.dead_queue)
        assert dead.body == b"not json"
        assert "not JSON" in str(dead.headers[DEAD_REASON_HEADER])
        await dead.ack()
        await channel.close()
    assert await ready_counts(amqp, names) == (0, 0)
    assert (await _queue_types(unique_name))[names.queue] == "quorum"


async def test_a_queue_of_the_other_type_is_refused_with_how_to_migrate(
    amqp: aio_pika.abc.AbstractRobustConnection, unique_name: str, cleanup: None
) -> None:
    classic = QueueNames(f"{unique_name}.videos", f"{unique_name}.videos.index")
    channel = await amqp.channel()
    await declare_index_queue(channel, classic)
    with pytest.raises(QueueMismatchError) as refused:
        await declare_index_queue(channel, replace(classic, queue_type="quorum"))
    message = str(refused.value)
    # The dead-letter queue is declared first: it is the one named.
    assert f"RabbitMQ queue '{classic.dead_queue}' exists of another type than AMQP_QUEUE_TYPE=quorum" in message
    assert f"rabbitmqctl delete_queue {classic.dead_queue}" in message and "drain" in message
    assert "\n" not in message

    # And the other way round (RabbitMQ closed the channel that was refused).
    channel = await amqp.channel()
    quorum = QueueNames(f"{unique_name}.q.videos", f"{unique_name}.q.videos.index", "quorum")
    await declare_index_queue(channel, quorum)
    with pytest.raises(QueueMismatchError, match="exists of another type than AMQP_QUEUE_TYPE=classic"):
        await declare_index_queue(channel, replace(quorum, queue_type="classic"))
    await channel.close()


@pytest.mark.parametrize("service", ["indexer", "fetcher", "notifier"])
async def test_a_service_started_on_a_queue_of_the_other_type_exits_with_one_line(
    stack: StackSettings, amqp: aio_pika.abc.AbstractRobustConnection, unique_name: str, cleanup: None, service: str
) -> None:
    names = QueueNames(f"{unique_name}.videos", f"{unique_name}.videos.index")
    notifier_queue = f"{unique_name}.notify"
    channel = await amqp.channel()
    await declare_index_queue(channel, names)
    await declare_stored_queue(channel, names, notifier_queue)
    await channel.close()
    # The first queue each declares at start is a dead-letter queue.
    refused = f"{notifier_queue}.dead" if service == "notifier" else names.dead_queue
    env = {name: value for name, value in os.environ.items() if not name.startswith(("AMQP_", "MONGODB_", "INDEX"))}
    env |= {
        "AMQP_URL": stack.amqp_url,
        "AMQP_EXCHANGE": names.exchange,
        "AMQP_QUEUE": names.queue,
        "AMQP_QUEUE_TYPE": "quorum",
        "NOTIFIER_QUEUE": notifier_queue,
        "DELIVERY_QUEUE_PREFIX": f"{unique_name}.deliveries",
        "MONGODB_URL": stack.mongodb_url,
        "MONGODB_DATABASE": unique_name.replace("-", "_"),
        "ELASTICSEARCH_URL": stack.elasticsearch_url,
        "ELASTICSEARCH_INDEX": unique_name,
        f"{service.upper()}_PORT": str(free_port()),
        "LOG_FORMAT": "json",
        "YOUTUBE_API_KEYS": "test-key-of-the-quorum-test-0123456789",
    }
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", f"services.{service}"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(f"tubewatch: RabbitMQ queue '{refused}' exists of another type"), lines
    # Above it, only the service's own log lines (JSON), none of them an error.
    for line in lines[:-1]:
        assert json.loads(line)["level"] not in ("ERROR", "CRITICAL"), line
