"""Fixtures shared by the integration and e2e tests: real servers, per-test names, cleanup.

The servers come from `make up` (deploy/localstack/). A missing server fails the test with a
clear message; it never skips, because a skipped integration test hides a broken stack in CI.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aio_pika
import pytest
from elasticsearch import AsyncElasticsearch
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from deploy.localstack.cluster import Cluster
from deploy.localstack.node_group import node_pids
from services.common.settings import PROJECT_ROOT, StackSettings
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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the tests on cluster mode's clusters last, one after the other (in their own order): the
    nine nodes then run only while they are used, not beside the rest of the suite."""
    on_cluster = [item for item in items if "project_cluster" in getattr(item, "fixturenames", ())]
    if on_cluster:
        items[:] = [item for item in items if item not in on_cluster] + on_cluster


def cluster_localstack(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """``python -m deploy.localstack ARGS --cluster 3``; a failure fails the test with its output."""
    result = subprocess.run(
        [sys.executable, "-m", "deploy.localstack", *args, "--cluster", "3"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        command = f"localstack {' '.join(args)} --cluster 3"
        pytest.fail(f"{command} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def cluster_running(cluster: Cluster) -> bool:
    return all(node_pids(node) for node in cluster.nodes())


@pytest.fixture(scope="session")
def project_cluster() -> Iterator[Cluster]:
    """Cluster mode's three-node clusters (fixed ports, the settings' state dir), brought up once for
    the session: the failover soak and the cluster tests share them. At the end they are stopped
    again when they were not running before, and brought back when they were and a test stopped them."""
    cluster = Cluster()
    was_running = cluster_running(cluster)
    cluster_localstack("up")
    yield cluster
    if not was_running:
        cluster_localstack("down")
    elif not cluster_running(cluster):
        cluster_localstack("up")
