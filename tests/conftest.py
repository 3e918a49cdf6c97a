"""Fixtures shared by the integration and e2e tests: real servers, per-test names, cleanup.

The servers come from `make up` (deploy/localstack/). A missing server fails the test with a
clear message; it never skips, because a skipped integration test hides a broken stack in CI.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aio_pika
import pytest
from elasticsearch import AsyncElasticsearch
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from services.common.settings import StackSettings
from services.common.topology import QueueNames
from tests.private_stack import PrivateStack


@pytest.fixture(scope="session")
def stack() -> StackSettings:
    return StackSettings()


@pytest.fixture
def unique_name() -> str:
    """A name no other test uses, valid for a Mongo database, an ES index and an AMQP queue."""
    return f"twtest-{uuid.uuid4().hex[:12]}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def mongo_client(stack: StackSettings) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        stack.mongodb_url, tz_aware=True, serverSelectionTimeoutMS=5000
    )
    try:
        await client.admin.command("ping")
    except Exception as exc:
        pytest.fail(f"MongoDB is not reachable at {stack.mongodb_url} (run `make up`): {exc}")
    yield client
    await client.close()


@pytest.fixture
async def mongo_db(
    mongo_client: AsyncMongoClient[dict[str, Any]], unique_name: str
) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    name = unique_name.replace("-", "_")
    yield mongo_client[name]
    await mongo_client.drop_database(name)


@pytest.fixture
async def es(stack: StackSettings) -> AsyncIterator[AsyncElasticsearch]:
    client = AsyncElasticsearch(stack.elasticsearch_url, request_timeout=30)
    if not await client.ping():
        await client.close()
        pytest.fail(f"Elasticsearch is not reachable at {stack.elasticsearch_url} (run `make up`)")
    yield client
    await client.close()


@pytest.fixture
async def es_alias(es: AsyncElasticsearch, unique_name: str) -> AsyncIterator[str]:
    yield unique_name
    # Elasticsearch 8 refuses wildcard deletes (action.destructive_requires_name): resolve names first.
    found = await es.indices.get(index=f"{unique_name}*", allow_no_indices=True, expand_wildcards="all")
    if found.body:
        await es.indices.delete(index=",".join(found.body))


@pytest.fixture
async def amqp(stack: StackSettings) -> AsyncIterator[aio_pika.abc.AbstractRobustConnection]:
    try:
        connection = await aio_pika.connect_robust(stack.amqp_url, timeout=10)
    except Exception as exc:
        pytest.fail(f"RabbitMQ is not reachable at {stack.amqp_url} (run `make up`): {exc}")
    yield connection
    await connection.close()


@pytest.fixture
async def queue_names(amqp: aio_pika.abc.AbstractRobustConnection, unique_name: str) -> AsyncIterator[QueueNames]:
    names = QueueNames(exchange=f"{unique_name}.videos", queue=f"{unique_name}.videos.index")
    yield names
    channel = await amqp.channel()
    for queue in (names.queue, names.dead_queue):
        await channel.queue_delete(queue)
    for exchange in (names.exchange, names.dead_exchange, names.stored_exchange):
        await channel.exchange_delete(exchange)
    await channel.close()


@pytest.fixture(scope="session")
def private_stack() -> Iterator[PrivateStack]:
    """A MongoDB and an Elasticsearch of this test session alone, for outage tests (stop/start)."""
    stack = PrivateStack(mongodb_port=free_port(), elasticsearch_port=free_port())
    try:
        stack.start("mongodb")
        stack.start("elasticsearch")
        yield stack
    finally:
        stack.close()
