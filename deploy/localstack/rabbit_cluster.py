"""Cluster mode's RabbitMQ: three nodes of Debian's rabbitmq-server of their own, joined into one cluster.

Node ``n`` is ``tw-cluster-<n>@localhost`` with AMQP on ``CLUSTER_AMQP_PORT + n - 1`` and Erlang
distribution on that + ``CLUSTER_DIST_PORT_OFFSET``, both on 127.0.0.1, run as the ``rabbitmq``
user with its config, data and log under ``<clone data dir>/cluster/rabbitmq/node-<n>``. The three
share that folder as their HOME and so one Erlang cookie file, not the system broker's; epmd (4369)
is shared with the system broker, which distinct node names make harmless. ``form`` joins nodes 2
and 3 to node 1 (``join_cluster``) unless they already are members. The guest user may connect
from loopback, as on the single node. ``net_ticktime`` stays Erlang's 60 s: a killed node's
connections close at once, and a node stalled by load gets a minute before it counts as gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import string
import subprocess
import time
from pathlib import Path
from typing import Any

from deploy.localstack.config import (
    CLUSTER_AMQP_PORT,
    CLUSTER_DIST_PORT_OFFSET,
    CLUSTER_NODE_PREFIX,
    LOOPBACK,
    SAFE_PATH,
    Config,
    Endpoint,
    StackError,
)
from deploy.localstack.node_group import NodeGroup
from deploy.localstack.processes import chown_tree, launch, start_failure, start_ticks_of, terminate_group, wait_until
from deploy.localstack.rabbitmq import RabbitMQ, amqp_answers
from deploy.localstack.records import Record, save_record
from deploy.localstack.server import Server

RABBIT_SCRIPTS = Path("/usr/lib/rabbitmq/bin")
CLUSTER_RABBIT_READY_TIMEOUT = 180.0
CTL_TIMEOUT = 120.0
FORM_TIMEOUT = 180.0


class RabbitNode(Server):
    """Node ``number`` of the RabbitMQ cluster: its own ports, node folder, record and log."""

    ready_timeout = CLUSTER_RABBIT_READY_TIMEOUT

    def __init__(self, config: Config, number: int) -> None:
        super().__init__(config)
        self.number = number
        self.name = f"cluster-rabbitmq-{number}"
        self.pid_file = f"{self.name}.pid"

    @property
    def node_name(self) -> str:
        return f"{CLUSTER_NODE_PREFIX}{self.number}@localhost"

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(LOOPBACK, CLUSTER_AMQP_PORT + self.number - 1)

    @property
    def dist_port(self) -> int:
        return self.endpoint.port + CLUSTER_DIST_PORT_OFFSET

    @property
    def shared_home(self) -> Path:
        """HOME of every node and of rabbitmqctl: holds the cluster's one Erlang cookie."""
        return self.config.clone_dir / "cluster" / "rabbitmq"

    @property
    def home(self) -> Path:
        return self.shared_home / f"node-{self.number}"

    @property
    def log(self) -> Path:
        return self.config.logs_dir / "cluster" / f"rabbitmq-{self.number}.log"

    def healthy(self) -> bool:
        return amqp_answers(self.endpoint)

    def reuse(self) -> None:
        raise StackError(
            f"{self.name}: port {self.endpoint} is taken by a server localstack did not start "
            "(another clone's cluster?); stop it first"
        )

    # rabbitmqctl -----------------------------------------------------------------------------

    def ctl(self, *args: str, timeout: float = CTL_TIMEOUT) -> str:
        """``rabbitmqctl -n <this node> ...`` as the rabbitmq user with the cluster's cookie; its stdout."""
        user = rabbit_user()
        try:
            result = subprocess.run(
                [str(RABBIT_SCRIPTS / "rabbitmqctl"), "-n", self.node_name, *args],
                capture_output=True,
                text=True,
                timeout=timeout,
                env={"PATH": SAFE_PATH, "LANG": "C.UTF-8", "HOME": str(self.shared_home)},
                cwd=self.shared_home,
                user=user.pw_uid,
                group=user.pw_gid,
                extra_groups=[],
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise StackError(f"{self.name}: rabbitmqctl {' '.join(args)}: {exc}") from exc
        if result.returncode != 0:
            detail = (result.stderr.strip() or result.stdout.strip()).splitlines()
            raise StackError(f"{self.name}: rabbitmqctl {' '.join(args)} failed: {detail[-1] if detail else '?'}")
        return result.stdout

    def cluster_status(self) -> dict[str, Any]:
        status: dict[str, Any] = json.loads(self.ctl("cluster_status", "--formatter", "json", timeout=30))
        return status

    # start, check, stop ----------------------------------------------------------------------

    def prepare(self) -> None:
        """The cookie (once for the cluster) and this node's config files, handed to the rabbitmq user."""
        user = rabbit_user()
        shared = self.shared_home
        shared.mkdir(parents=True, exist_ok=True)
        cookie = shared / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text("".join(secrets.choice(string.ascii_uppercase) for _ in range(32)))
        cookie.chmod(0o400)
        home = self.home
        (home / "mnesia").mkdir(parents=True, exist_ok=True)
        (home / "rabbitmq.conf").write_text(
            "# Written by python -m deploy.localstack on every start; edits are overwritten.\n"
            f"listeners.tcp.1 = {LOOPBACK}:{self.endpoint.port}\n"
            f"default_user = {self.config.amqp_user}\n"
            f"default_pass = {self.config.amqp_password}\n"
        )
        (home / "rabbitmq.conf").chmod(0o600)
        (home / "enabled_plugins").write_text("[].\n")
        (home / "rabbitmq-env.conf").write_text(f"ERL_EPMD_ADDRESS={LOOPBACK}\n")
        os.chown(shared, user.pw_uid, user.pw_gid)
        os.chown(cookie, user.pw_uid, user.pw_gid)
        shared.chmod(0o700)
        chown_tree(home, user.pw_uid, user.pw_gid)

    def environment(self) -> dict[str, str]:
        home = self.home
        return {
            "PATH": SAFE_PATH,
            "LANG": "C.UTF-8",
            "HOME": str(self.shared_home),
            "RABBITMQ_NODENAME": self.node_name,
            "RABBITMQ_NODE_IP_ADDRESS": LOOPBACK,
            "RABBITMQ_NODE_PORT": str(self.endpoint.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(home / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(home / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(home / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(home / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(home / "mnesia"),
            "RABBITMQ_LOG_BASE": str(home / "log"),
            # To standard output, which goes to our log (the rabbitmq user cannot reach the state dir).
            "RABBITMQ_LOGS": "-",
            "RABBITMQ_PID_FILE": str(home / "rabbitmq.pid"),
            "ERL_EPMD_ADDRESS": LOOPBACK,
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def start(self) -> Record:
        user = RabbitMQ(self.config).install()
        self.prepare()
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            log.write(f"\n--- localstack: starting rabbitmq node {self.node_name} at {time.ctime()} ---\n".encode())
        pid = launch(
            [str(RABBIT_SCRIPTS / "rabbitmq-server")],
            self.log,
            cwd=self.home,
            env=self.environment(),
            user=user.pw_uid,
            group=user.pw_gid,
        )
        record = Record(
            self.name, pid, start_ticks_of(pid), self.endpoint.port, str(self.log), extra={"node": self.node_name}
        )
        save_record(self.config, record, self.pid_file)
        print(f"{self.name}: launched {self.node_name} (pid {pid}, distribution port {self.dist_port})")
        return record

    def wait_ready(self, record: Record | None, timeout: float) -> str:
        def ready() -> bool:
            self.check_process(record, "before accepting AMQP connections")
            return amqp_answers(self.endpoint)

        if not wait_until(ready, timeout, interval=1.0):
            raise start_failure(self.name, self.log, f"no AMQP answer on {self.endpoint} within {timeout:.0f} s")
        return "AMQP answers"

    def stop(self, record: Record) -> None:
        if record.alive():
            with contextlib.suppress(StackError):
                self.ctl("stop", timeout=90)
        terminate_group(record.pid, record.start_ticks, f"rabbitmq node {self.node_name} (pid {record.pid})")


def rabbit_user() -> Any:
    import pwd  # noqa: PLC0415 - only cluster mode's RabbitMQ needs it

    try:
        return pwd.getpwnam("rabbitmq")
    except KeyError as exc:
        raise StackError("rabbitmq: the rabbitmq system user is missing; reinstall rabbitmq-server") from exc


class RabbitCluster(NodeGroup):
    """The three nodes as one cluster: joined once, which nodes run, a queue's leader."""

    name = "cluster-rabbitmq"
    # Node 1 stops last, so it can start first next time without waiting for the others' tables.
    stop_in_order = True

    def __init__(self, config: Config, size: int) -> None:
        self.rabbit_nodes = [RabbitNode(config, n) for n in range(1, size + 1)]
        super().__init__(config, self.rabbit_nodes)

    def urls(self, user: str, password: str) -> list[str]:
        return [f"amqp://{user}:{password}@{node.endpoint}/" for node in self.rabbit_nodes]

    def node(self, name: str) -> RabbitNode:
        """A node by its Erlang name (``tw-cluster-2@localhost``) or record name (``cluster-rabbitmq-2``)."""
        for node in self.rabbit_nodes:
            if name in (node.node_name, node.name):
                return node
        raise StackError(f"{self.name}: no node {name!r}")

    def status_seen(self) -> dict[str, Any]:
        """``cluster_status`` as the first node that answers sees it ({} when none answers)."""
        for node in self.rabbit_nodes:
            with contextlib.suppress(StackError, ValueError):
                if node.healthy():
                    return node.cluster_status()
        return {}

    def roles(self) -> dict[str, str]:
        status = self.status_seen()
        running = set(status.get("running_nodes", []))
        members = set(status.get("disk_nodes", [])) | set(status.get("ram_nodes", []))
        return {
            node.name: "running" if node.node_name in running else "stopped" if node.node_name in members else "down"
            for node in self.rabbit_nodes
        }

    def form(self) -> str:
        first = self.rabbit_nodes[0]
        for node in self.rabbit_nodes[1:]:
            if first.node_name in node.cluster_status().get("disk_nodes", []):
                continue
            print(f"{self.name}: joining {node.node_name} to {first.node_name}")
            node.ctl("stop_app")
            node.ctl("join_cluster", first.node_name)
            node.ctl("start_app")
        return self.wait_whole(FORM_TIMEOUT)

    def wait_whole(self, timeout: float) -> str:
        wanted = {node.node_name for node in self.rabbit_nodes}
        running: set[str] = set()

        def whole() -> bool:
            nonlocal running
            running = set(self.status_seen().get("running_nodes", []))
            return running == wanted and all(node.healthy() for node in self.rabbit_nodes)

        if not wait_until(whole, timeout, interval=1.0):
            raise StackError(f"{self.name}: not all running within {timeout:.0f} s (running: {sorted(running)})")
        return f"{len(running)} nodes running ({', '.join(sorted(running))})"

    def queue_leader(self, queue: str, vhost: str = "/") -> RabbitNode:
        """The node leading quorum queue ``queue`` (or holding classic queue ``queue``)."""
        for node in self.rabbit_nodes:
            if not node.healthy():
                continue
            with contextlib.suppress(StackError, ValueError):
                rows = json.loads(node.ctl("list_queues", "-p", vhost, "name", "leader", "pid", "--formatter", "json"))
                for row in rows:
                    if row.get("name") == queue:
                        leader = str(row.get("leader") or row.get("pid", ""))
                        for candidate in self.rabbit_nodes:
                            if candidate.node_name in leader:
                                return candidate
        raise StackError(f"{self.name}: no node leads queue {queue!r} in vhost {vhost!r}")
