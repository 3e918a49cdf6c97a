"""The clients given a list of nodes, one of them dead: reads and connections go to the live ones."""

from __future__ import annotations

import asyncio
import time

import aio_pika
import elasticsearch
import pytest

from services.common.clients import RotatingRobustConnection, connect_amqp, open_amqp, open_elasticsearch
from services.common.settings import StackSettings
from tests.conftest import free_port
from tests.integration.test_indexer_consumer import _close_from_the_broker


async def test_a_dead_elasticsearch_node_in_the_list_fails_no_read(stack: StackSettings) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    hosts = f"{dead},{stack.elasticsearch_url}"
    # As the API opens it: no retry of timeouts, one retry per extra node.
    async with open_elasticsearch(hosts, 5.0, max_retries=1, retry_on_timeout=False) as es:
        for _ in range(20):
            assert (await es.info())["version"]["number"]


async def test_every_elasticsearch_node_dead_fails_at_once() -> None:
    hosts = ",".join(f"http://127.0.0.1:{free_port()}" for _ in range(3))
    async with open_elasticsearch(hosts, 5.0, max_retries=2, retry_on_timeout=False) as es:
        started = time.monotonic()
        with pytest.raises(elasticsearch.ConnectionError):
            await es.info()
        assert time.monotonic() - started < 2


async def test_a_tool_connects_to_the_first_broker_that_answers(stack: StackSettings) -> None:
    connection = await connect_amqp(f"amqp://guest:guest@127.0.0.1:{free_port()}/,{stack.amqp_url}", "twtest-tool")
    try:
        channel = await connection.channel()
        await channel.close()
    finally:
        await connection.close()


async def test_the_robust_connection_starts_past_a_dead_broker_and_reconnects_through_the_list(
    stack: StackSettings, unique_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    dead_port = free_port()
    dead = f"amqp://guest:guest@127.0.0.1:{dead_port}/"
    real_port = aio_pika.connection.make_url(stack.amqp_url).port

    def attempts_on_the_dead_broker() -> int:
        # aiormq logs each refused connection attempt.
        refused = [r for r in caplog.records if r.name == "aiormq.connection" and "creating transport" in r.msg]
        return sum(f"('127.0.0.1', {dead_port})" in record.getMessage() for record in refused)

    async with open_amqp(f"{dead},{stack.amqp_url}", unique_name, reconnect_interval=0.3) as connection:
        assert isinstance(connection, RotatingRobustConnection)
        assert connection.url.port == real_port
        assert attempts_on_the_dead_broker() == 1
        reconnected = asyncio.Event()
        connection.reconnect_callbacks.add(lambda *_: reconnected.set())
        channel = await connection.channel()
        queue = await channel.declare_queue(unique_name, auto_delete=True)

        await _close_from_the_broker(unique_name)
        await asyncio.wait_for(reconnected.wait(), timeout=30)
        # The drop moved it to the next URL (the dead broker), whose refusal moved it on to the live one.
        assert attempts_on_the_dead_broker() == 2
        assert connection.url.port == real_port
        # The robust channel is back, with the queue it declared.
        await channel.default_exchange.publish(aio_pika.Message(b"after"), routing_key=unique_name)
        message = None
        for _ in range(50):
            message = await queue.get(no_ack=True, fail=False)
            if message is not None:
                break
            await asyncio.sleep(0.1)
        assert message is not None and message.body == b"after"
        await channel.close()


async def test_no_broker_of_the_list_answering_fails_the_start() -> None:
    urls = ",".join(f"amqp://guest:guest@127.0.0.1:{free_port()}/" for _ in range(2))
    with pytest.raises(ConnectionError):
        async with open_amqp(urls, "twtest-none"):
            pass
