"""The local stack script against real servers, each on its own free port and state dir.

The main stack (default ports) may be running meanwhile: nothing here touches its ports, its state
dir or the machine's own RabbitMQ beyond reading from it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from pymongo import MongoClient

from deploy.localstack.config import Endpoint, clone_data_dir
from deploy.localstack.processes import cmdline, listener_pids, pid_alive, wait_until
from deploy.localstack.rabbitmq import amqp_answers

pytestmark = pytest.mark.integration

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SYSTEM_BROKER = Endpoint("127.0.0.1", 5672)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Stack:
    """Runs ``python -m deploy.localstack`` with an isolated environment."""

    def __init__(self, state_dir: Path, env: dict[str, str]) -> None:
        self.state_dir = state_dir
        self.env = env

    def run(self, *args: str, timeout: float = 240, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "deploy.localstack", *args],
            cwd=PROJECT_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            pytest.fail(f"localstack {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    def record(self, server: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.state_dir / "run" / f"{server}.json").read_text())
        return data

    def has_record(self, server: str) -> bool:
        return (self.state_dir / "run" / f"{server}.json").exists()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    state_dir = tmp_path / "state"
    env = {
        **os.environ,
        "STATE_DIR": str(state_dir),
        "MONGODB_URL": f"mongodb://127.0.0.1:{free_port()}/?replicaSet=rs0",
        "ELASTICSEARCH_URL": f"http://127.0.0.1:{free_port()}",
        "AMQP_URL": f"amqp://guest:guest@{SYSTEM_BROKER}/",
    }
    stack = Stack(state_dir, env)
    yield stack
    # Whatever a failed test left behind: stop it, then drop the per-clone data under /var/lib.
    stack.run("down", check=False)
    shutil.rmtree(clone_data_dir(state_dir), ignore_errors=True)


def status_line(stack: Stack, server: str) -> str:
    result = stack.run("status", "--only", server, check=False)
    lines = [line for line in result.stdout.splitlines() if line.startswith(server)]
    assert len(lines) == 1, result.stdout
    return lines[0]


def processes_mentioning(text: str) -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and text in " ".join(cmdline(int(p.name)))]


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


def test_mongodb_up_is_idempotent_and_down_stops_it(stack: Stack) -> None:
    port = port_of(stack.env["MONGODB_URL"])

    first = stack.run("up", "--only", "mongodb")
    assert "mongodb: started" in first.stdout
    pid = stack.record("mongodb")["pid"]
    assert pid_alive(pid)
    assert listener_pids(port) == [pid]

    client: MongoClient[dict[str, Any]] = MongoClient(
        "127.0.0.1", port, directConnection=True, serverSelectionTimeoutMS=5000
    )
    with client:
        hello = client.admin.command("hello")
        assert hello["isWritablePrimary"] is True
        assert hello["setName"] == "rs0"
        client.tubewatch_test.items.insert_one({"written": True})
        assert client.tubewatch_test.items.count_documents({"written": True}) == 1

    second = stack.run("up", "--only", "mongodb")
    assert "already running" in second.stdout
    assert stack.record("mongodb")["pid"] == pid

    line = status_line(stack, "mongodb")
    assert line.split()[1:3] == ["up", "localstack"]
    assert f"pid {pid} " in line
    assert f"127.0.0.1:{port}" in line
    assert str(stack.state_dir / "logs" / "mongod.log") in line

    down = stack.run("down", "--only", "mongodb")
    assert f"mongodb: stopped (pid {pid})" in down.stdout
    assert not pid_alive(pid)
    assert listener_pids(port) == []
    assert processes_mentioning(f"--port {port}") == []
    assert not stack.has_record("mongodb")
    assert status_line(stack, "mongodb").split()[1] == "down"


def test_mongodb_down_copes_with_a_stale_record(stack: Stack) -> None:
    stack.run("up", "--only", "mongodb")
    pid = stack.record("mongodb")["pid"]
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: not pid_alive(pid), timeout=10)
    assert "stale record" in status_line(stack, "mongodb")

    down = stack.run("down", "--only", "mongodb")
    assert "was not running" in down.stdout
    assert not stack.has_record("mongodb")


@pytest.mark.timeout(900)
def test_elasticsearch_up_is_idempotent_and_down_stops_it(stack: Stack) -> None:
    url = stack.env["ELASTICSEARCH_URL"]
    port = port_of(url)

    first = stack.run("up", "--only", "elasticsearch", timeout=600)
    assert "elasticsearch: started" in first.stdout
    record = stack.record("elasticsearch")
    pid = record["pid"]
    home = record["extra"]["home"]
    assert home.startswith(str(clone_data_dir(stack.state_dir)))

    with urllib.request.urlopen(url + "/", timeout=10) as response:
        info = json.loads(response.read())
    assert info["version"]["number"] == "8.12.2"
    # It runs as the unprivileged user, on loopback only.
    server_pids = listener_pids(port)
    assert server_pids
    assert all(Path(f"/proc/{p}").stat().st_uid != 0 for p in server_pids)
    # Elasticsearch picked its transport port from the configured range: ask it which one.
    with urllib.request.urlopen(url + "/_nodes/_local/transport?filter_path=nodes.*.transport", timeout=10) as r:
        node = next(iter(json.loads(r.read())["nodes"].values()))
    transport = int(node["transport"]["publish_address"].rsplit(":", 1)[1])
    low, high = (int(part) for part in record["extra"]["transport_port"].split("-"))
    assert low <= transport <= high
    assert listener_pids(transport) == server_pids
    for line in (
        Path("/proc/net/tcp6").read_text().splitlines()[1:] + Path("/proc/net/tcp").read_text().splitlines()[1:]
    ):
        local, state = line.split()[1], line.split()[3]
        if state == "0A" and int(local.rsplit(":", 1)[1], 16) in (port, transport):
            assert local.rsplit(":", 1)[0] in ("0100007F", "0000000000000000FFFF00000100007F"), line

    request = urllib.request.Request(
        url + "/tubewatch-test/_doc/1?refresh=true",
        data=b'{"title": "hello"}',
        headers={"Content-Type": "application/json"},
        method="PUT",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.loads(response.read())["result"] == "created"

    second = stack.run("up", "--only", "elasticsearch", timeout=600)
    assert "already running" in second.stdout
    assert stack.record("elasticsearch")["pid"] == pid

    line = status_line(stack, "elasticsearch")
    assert line.split()[1:3] == ["up", "localstack"]
    assert f"pid {pid} " in line
    assert str(stack.state_dir / "logs" / "elasticsearch.log") in line

    down = stack.run("down", "--only", "elasticsearch")
    assert f"elasticsearch: stopped (pid {pid})" in down.stdout
    assert not pid_alive(pid)
    assert listener_pids(port) == []
    assert processes_mentioning(home) == []
    assert not stack.has_record("elasticsearch")


def test_rabbitmq_reuses_the_running_broker_and_down_leaves_it(stack: Stack) -> None:
    if not amqp_answers(SYSTEM_BROKER):
        pytest.skip("no RabbitMQ answers on 127.0.0.1:5672 on this machine")
    broker = listener_pids(SYSTEM_BROKER.port)

    up = stack.run("up", "--only", "rabbitmq")
    assert "reusing the server already running" in up.stdout
    assert not stack.has_record("rabbitmq")
    assert "external" in status_line(stack, "rabbitmq")

    down = stack.run("down", "--only", "rabbitmq")
    assert "leaving the server" in down.stdout
    assert amqp_answers(SYSTEM_BROKER)
    assert listener_pids(SYSTEM_BROKER.port) == broker


def test_rabbitmq_starts_its_own_node_on_a_free_port_and_stops_it(stack: Stack) -> None:
    port = free_port()
    stack.env["AMQP_URL"] = f"amqp://guest:guest@127.0.0.1:{port}/"
    system_broker = listener_pids(SYSTEM_BROKER.port)

    up = stack.run("up", "--only", "rabbitmq")
    assert "rabbitmq: started" in up.stdout
    pid = stack.record("rabbitmq")["pid"]
    node = stack.record("rabbitmq")["extra"]["node"]
    assert amqp_answers(Endpoint("127.0.0.1", port))
    assert listener_pids(port) == [pid]

    again = stack.run("up", "--only", "rabbitmq")
    assert "already running" in again.stdout

    down = stack.run("down", "--only", "rabbitmq")
    assert f"rabbitmq: stopped (pid {pid})" in down.stdout
    assert not pid_alive(pid)
    assert processes_mentioning(node) == []
    assert not amqp_answers(Endpoint("127.0.0.1", port))
    assert listener_pids(SYSTEM_BROKER.port) == system_broker
