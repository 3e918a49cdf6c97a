"""Fixtures shared by the integration and e2e tests: real servers, per-test names, cleanup.

The servers come from `make up` (deploy/localstack/). A missing server fails the test with a
clear message; it never skips, because a skipped integration test hides a broken stack in CI.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from elasticsearch import AsyncElasticsearch
from hypothesis import settings
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from xdist.scheduler import LoadScopeScheduling

from deploy.localstack.cluster import Cluster
from deploy.localstack.node_group import node_pids
from services.common.settings import PROJECT_ROOT, StackSettings
from services.common.topology import QueueNames
from tests.private_stack import PrivateStack

# The unit tests share the two cores with cluster mode's bring-up (see ClusterBringUp): a wall-clock
# deadline per generated example would judge the machine's load, not the code.
settings.register_profile("tubewatch", deadline=None)
settings.load_profile("tubewatch")


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
    """A MongoDB and an Elasticsearch of this test session alone, for outage tests (stop/start); a
    RabbitMQ of its own too, started only when a test (the short soak) asks for it."""
    stack = PrivateStack(mongodb_port=free_port(), elasticsearch_port=free_port(), amqp_port=free_port())
    try:
        stack.start("mongodb")
        stack.start("elasticsearch")
        yield stack
    finally:
        stack.close()


@dataclass
class ClusterBringUp:
    """Cluster mode's ``up``, started in the background while the unit tests run (they need no
    server), so the nine nodes are ready when the first test on them starts."""

    first_item: pytest.Item | None = None
    was_running: bool = False
    process: subprocess.Popen[bytes] | None = None
    output: Path | None = None
    used: bool = False

    def start(self) -> None:
        self.was_running = cluster_running(Cluster())
        self.output = Path(tempfile.mkstemp(prefix="tubewatch-cluster-up-", suffix=".log")[1])
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "deploy.localstack", "up", "--cluster", "3"],
                cwd=PROJECT_ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait(self, timeout: float = 900) -> None:
        """Wait for the background ``up``; its failure fails the test with its output."""
        assert self.process is not None and self.output is not None
        code = self.process.wait(timeout)
        output = self.output.read_text(errors="replace")
        self.output.unlink(missing_ok=True)
        if code != 0:
            pytest.fail(f"localstack up --cluster 3 (in the background) exited {code}:\n{output}")


CLUSTER_BRING_UP = ClusterBringUp()


# Modules that spend their time waiting on timers (poll intervals, retries, backoff, timeouts, time
# budgets) rather than on the CPU. With `--lanes` (and `-n 2`, as `make test` runs) they run in a
# second pytest-xdist worker beside everything else, which runs in order in the other worker. None
# of them uses the session's private servers or the clusters, which only the main lane starts.
WAITING_LANE = frozenset(
    {
        "tests/integration/test_api_admin_schemathesis.py",
        "tests/integration/test_api_hostile_clients.py",
        "tests/integration/test_api_schemathesis.py",
        "tests/integration/test_api_walks.py",
        "tests/integration/test_fetcher_channels.py",
        "tests/integration/test_fetcher_delivery.py",
        "tests/integration/test_fetcher_follows_status.py",
        "tests/integration/test_fetcher_hostile_upstream.py",
        "tests/integration/test_fetcher_key_leak.py",
        "tests/integration/test_fetcher_processes.py",
        "tests/integration/test_fetcher_quota.py",
        "tests/integration/test_fetcher_scheduling.py",
        "tests/integration/test_fetcher_sources.py",
        "tests/integration/test_fetcher_sources_not_found.py",
        "tests/integration/test_fetcher_websub.py",
        "tests/integration/test_indexer_reindex.py",
        "tests/integration/test_indexer_replay.py",
        "tests/integration/test_indexer_upgrade.py",
        "tests/integration/test_localstack_prometheus.py",
        "tests/integration/test_notifier_deliveries.py",
        "tests/integration/test_notifier_webhooks.py",
        "tests/integration/test_quorum_topology.py",
    }
)


def lane_of(nodeid: str) -> str:
    """The lane of a test (its node id, relative to the project): "waiting" for the modules in
    WAITING_LANE, "main" for the rest."""
    return "waiting" if nodeid.split("::", 1)[0] in WAITING_LANE else "main"


class LaneScheduling(LoadScopeScheduling):
    """pytest-xdist's scope scheduler with one scope per lane: each lane goes whole, in collection
    order, to one worker."""

    def _split_scope(self, nodeid: str) -> str:
        return lane_of(nodeid)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--lanes",
        action="store_true",
        help="with -n 2: the tests that mostly wait (WAITING_LANE) in one worker, the rest in order in the other",
    )


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> LaneScheduling | None:
    return LaneScheduling(config, log) if config.getoption("lanes") else None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order the tests: the integration tests, the e2e tests, the unit tests, then the tests on
    cluster mode's clusters, one after the other (in their own order): the nine nodes come up while
    the unit tests run, and then run only while they are used, not beside the rest of the suite."""
    tests = PROJECT_ROOT / "tests"

    def rank(item: pytest.Item) -> int:
        if "project_cluster" in getattr(item, "fixturenames", ()):
            return 3
        if item.path.is_relative_to(tests / "unit"):
            return 2
        return 1 if item.path.is_relative_to(tests / "e2e") else 0

    items.sort(key=rank)  # stable: each part keeps its collection order
    unit = [item for item in items if rank(item) == 2]
    CLUSTER_BRING_UP.first_item = unit[0] if unit and rank(items[-1]) == 3 else None


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item is CLUSTER_BRING_UP.first_item and CLUSTER_BRING_UP.process is None:
        CLUSTER_BRING_UP.start()


def pytest_sessionfinish() -> None:
    # A session that ended before its cluster tests (-x, an interrupt) leaves nothing running that
    # it started.
    bring_up = CLUSTER_BRING_UP
    if bring_up.process is not None and not bring_up.used:
        bring_up.process.wait(900)
        if bring_up.output is not None:
            bring_up.output.unlink(missing_ok=True)
        if not bring_up.was_running:
            subprocess.run(
                [sys.executable, "-m", "deploy.localstack", "down", "--cluster", "3"],
                cwd=PROJECT_ROOT,
                capture_output=True,
                timeout=900,
                check=False,
            )


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
    bring_up = CLUSTER_BRING_UP
    if bring_up.process is not None:
        bring_up.used = True
        was_running = bring_up.was_running
        bring_up.wait()
    else:
        was_running = cluster_running(cluster)
        cluster_localstack("up")
    yield cluster
    if not was_running:
        cluster_localstack("down")
    elif not cluster_running(cluster):
        cluster_localstack("up")
