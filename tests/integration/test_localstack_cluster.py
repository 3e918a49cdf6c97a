"""Cluster mode of the local stack (``up --cluster 3``) against the real servers, beside the single node.

The clusters' ports are fixed (deploy/localstack/config.py), so this module drives the project's own
cluster (the settings' state dir), the session's ``project_cluster`` it shares with the failover soak
(tests/e2e/test_soak_cluster_short.py, which kills the Elasticsearch node holding a primary and the
MongoDB primary under load, restarts them and checks they rejoin and kept every video). The
single-node stack and the machine's RabbitMQ on 5672 are only looked at, never stopped.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from pymongo import MongoClient

from deploy.localstack.cluster import Cluster
from deploy.localstack.config import CLUSTER_REPLICA_SET, Endpoint, load_config
from deploy.localstack.mongo_cluster import CLUSTER_ELECTION_TIMEOUT_MS
from deploy.localstack.node_group import node_pids
from deploy.localstack.processes import listener_pids, pid_alive, wait_until
from deploy.localstack.records import load_record
from deploy.localstack.server import Server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SYSTEM_BROKER = Endpoint("127.0.0.1", 5672)
SINGLE_NODE = ("mongodb", "elasticsearch", "prometheus")
GB = 1024**3


def localstack(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "deploy.localstack", *args],
        cwd=PROJECT_ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, (
        f"localstack {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    )
    return result


def node_pid_map(cluster: Cluster) -> dict[str, list[int]]:
    return {node.name: node_pids(node) for node in cluster.nodes()}


def single_node_pids() -> dict[str, int]:
    """The single-node stack's servers localstack started (by record), which cluster mode must not touch."""
    config = load_config()
    records = {name: load_record(config, name) for name in SINGLE_NODE}
    return {name: record.pid for name, record in records.items() if record and record.alive()}


@pytest.fixture(scope="module")
def cluster(project_cluster: Cluster) -> Cluster:
    return project_cluster


def es_get(url: str, path: str) -> Any:
    with urllib.request.urlopen(url + path, timeout=30) as response:
        return json.loads(response.read())


def es_request(url: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        url + path,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
        method=method,
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def test_up_brings_three_healthy_clusters(cluster: Cluster) -> None:
    for url in cluster.elasticsearch.urls:
        health = es_get(url, "/_cluster/health")
        assert health["number_of_nodes"] == 3
        assert health["status"] in ("green", "yellow")
        assert health["cluster_name"] == "tubewatch-cluster"

    client: MongoClient[dict[str, Any]] = MongoClient(cluster.mongodb.url, serverSelectionTimeoutMS=30000)
    with client:
        status = client.admin.command("replSetGetStatus")
        config = client.admin.command("replSetGetConfig")["config"]
    assert status["set"] == CLUSTER_REPLICA_SET
    states = sorted(member["stateStr"] for member in status["members"])
    assert states == ["PRIMARY", "SECONDARY", "SECONDARY"]
    assert config["settings"]["electionTimeoutMillis"] == CLUSTER_ELECTION_TIMEOUT_MS

    rabbit = cluster.rabbitmq.rabbit_nodes[0].cluster_status()
    assert sorted(rabbit["running_nodes"]) == [f"tw-cluster-{n}@localhost" for n in (1, 2, 3)]

    env = dict(line.split("=", 1) for line in cluster.env_file.read_text().splitlines() if "=" in line)
    assert env == cluster.env()
    assert env["ELASTICSEARCH_URL"] == "http://127.0.0.1:9211,http://127.0.0.1:9212,http://127.0.0.1:9213"
    assert env["MONGODB_URL"] == "mongodb://127.0.0.1:27031,127.0.0.1:27032,127.0.0.1:27033/?replicaSet=rs-cluster"
    assert env["AMQP_URL"].count("amqp://") == 3
    assert env["AMQP_QUEUE_TYPE"] == "quorum"

    # Every node on loopback only, each a process of its own.
    pids = node_pid_map(cluster)
    assert all(pids.values()), pids
    for node in cluster.nodes():
        owners = listener_pids(node.endpoint.port)
        assert owners and set(owners) <= set(pids[node.name]), node.name

    status_out = localstack("status", "--cluster", "3").stdout
    for node in cluster.nodes():
        line = next(line for line in status_out.splitlines() if line.startswith(node.name + " "))
        assert line.split()[1] == "up", line
        assert re.search(r"rss +\d+ MB", line), line
    roles = [line.split()[2] for line in status_out.splitlines() if line.startswith("cluster-")]
    assert roles.count("master") == 1 and roles.count("PRIMARY") == 1 and roles.count("running") == 3, status_out
    total = re.search(r"cluster total +rss (\d+) MB over 9 nodes", status_out)
    assert total and int(total.group(1)) * 1024**2 < 8 * GB, status_out


def test_up_again_restarts_nothing(cluster: Cluster) -> None:
    before = node_pid_map(cluster)
    single = single_node_pids()
    out = localstack("up", "--cluster", "3").stdout
    assert out.count("already running (started by localstack") == 9, out
    assert "started (pid" not in out and "joining" not in out and "initiated" not in out
    assert node_pid_map(cluster) == before
    assert single_node_pids() == single


def kill_and_restart(cluster: Cluster, node: Server, failed_over: Callable[[], bool] | None = None) -> None:
    killed = cluster.kill(node)
    assert not any(pid_alive(pid) for pid in killed)
    if failed_over is not None:
        assert wait_until(failed_over, 90, 0.5), f"no failover after killing {node.name}"
    cluster.restart(node)
    cluster.wait_whole(300)
    assert node_pids(node) and not set(node_pids(node)) & set(killed)


async def publish_and_count(urls: list[str], queue: str, publish: bool) -> int:
    """Declare quorum queue ``queue`` through the first URL that connects; publish one message; its depth."""
    connection = await aio_pika.connect(urls[0])
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        declared = await channel.declare_queue(queue, durable=True, arguments={"x-queue-type": "quorum"})
        if publish:
            await channel.default_exchange.publish(
                aio_pika.Message(b"kept", delivery_mode=aio_pika.DeliveryMode.PERSISTENT), routing_key=queue
            )
            declared = await channel.declare_queue(queue, passive=True)
        return int(declared.declaration_result.message_count or 0)


def test_a_killed_rabbitmq_queue_leader_rejoins(cluster: Cluster) -> None:
    queue = f"tw-cluster-test-{uuid.uuid4().hex[:8]}"
    urls = cluster.env()["AMQP_URL"].split(",")
    assert asyncio.run(publish_and_count(urls, queue, publish=True)) == 1
    leader = cluster.rabbitmq.queue_leader(queue)
    node = cluster.rabbitmq.node(leader.node_name)
    kill_and_restart(cluster, node)
    assert cluster.rabbitmq.roles()[node.name] == "running"
    others = [url for url in urls if f":{node.endpoint.port}/" not in url]
    # The queue elected another leader and kept its message; the restarted node is a member again.
    assert wait_until(lambda: asyncio.run(publish_and_count(others, queue, publish=False)) == 1, 60, 2.0)
    node.ctl("delete_queue", queue)


def test_down_stops_only_what_it_started(cluster: Cluster) -> None:
    pids = [pid for node_list in node_pid_map(cluster).values() for pid in node_list]
    single = single_node_pids()
    system_broker = listener_pids(SYSTEM_BROKER.port)

    out = ""
    if load_record(cluster.config, "rabbitmq") is None:
        # A plain down (no --cluster) stops the cluster's nodes too; with --only rabbitmq it touches
        # no single-node server here, since the single stack's RabbitMQ is one localstack reused.
        out += localstack("down", "--only", "rabbitmq").stdout
        assert "rabbitmq: not started by localstack; leaving the server" in out, out
        assert all(f"{node.name}: stopped (pid" in out for node in cluster.rabbitmq.nodes), out
    out += localstack("down", "--cluster", "3").stdout
    for node in cluster.nodes():
        assert f"{node.name}: stopped (pid" in out, out
        assert not node_pids(node)
        assert listener_pids(node.endpoint.port) == []
        assert load_record(cluster.config, node.name) is None
    assert not any(pid_alive(pid) for pid in pids)
    assert not cluster.env_file.exists()
    assert single_node_pids() == single
    assert listener_pids(SYSTEM_BROKER.port) == system_broker
    status = subprocess.run(
        [sys.executable, "-m", "deploy.localstack", "status", "--cluster", "3"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert status.returncode == 3, status.stdout
