"""Cluster mode's Elasticsearch: three nodes of the single stack's 8.12.2 install forming one cluster.

Node ``n`` is ``tw-cluster-<n>`` (master-eligible and data, 512 MB heap), HTTP on
``CLUSTER_ES_HTTP_PORT + n - 1`` and transport on ``CLUSTER_ES_TRANSPORT_PORT + n - 1``, both on
127.0.0.1, security off, with its config, data and logs under ``<clone data dir>/cluster/``. The
nodes find each other through the transport ports (``discovery.seed_hosts``) and bootstrap from all
three names; fault detection is slower than the default so that load on two cores alone does not
drop a node (a killed node is still noticed at once: its connections close).
"""

from __future__ import annotations

import time
import urllib.error
from pathlib import Path
from typing import Any

from deploy.localstack.config import (
    CLUSTER_ES_HTTP_PORT,
    CLUSTER_ES_NAME,
    CLUSTER_ES_TRANSPORT_PORT,
    CLUSTER_NODE_PREFIX,
    LOOPBACK,
    Config,
    Endpoint,
    StackError,
)
from deploy.localstack.elasticsearch import Elasticsearch, http_json
from deploy.localstack.node_group import NodeGroup
from deploy.localstack.processes import start_failure
from deploy.localstack.records import Record

CLUSTER_ES_HEAP = "-Xms512m -Xmx512m"
# Three JVMs starting at once on two cores that are busy with other work take minutes.
CLUSTER_ES_READY_TIMEOUT = 600.0
# Defaults: checks every 1 s, 10 s timeout, 3 retries. A node stalled by load (GC, a busy disk, two
# cores shared by nine servers) gets 3 x 30 s before it is dropped; a killed one drops at once.
FAULT_DETECTION = {
    "cluster.fault_detection.leader_check.interval": "2s",
    "cluster.fault_detection.leader_check.timeout": "30s",
    "cluster.fault_detection.leader_check.retry_count": "3",
    "cluster.fault_detection.follower_check.interval": "2s",
    "cluster.fault_detection.follower_check.timeout": "30s",
    "cluster.fault_detection.follower_check.retry_count": "3",
}


class ElasticsearchNode(Elasticsearch):
    """Node ``number`` of the cluster: its own ports, home, record and log."""

    heap = CLUSTER_ES_HEAP
    ready_timeout = CLUSTER_ES_READY_TIMEOUT
    ready_goal = "an HTTP answer"

    def __init__(self, config: Config, number: int, size: int) -> None:
        super().__init__(config)
        self.number = number
        self.size = size
        self.name = f"cluster-elasticsearch-{number}"
        self.pid_file = f"{self.name}.pid"

    @property
    def node_name(self) -> str:
        return f"{CLUSTER_NODE_PREFIX}{self.number}"

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(LOOPBACK, CLUSTER_ES_HTTP_PORT + self.number - 1)

    @property
    def base_url(self) -> str:
        return f"http://{self.endpoint}"

    @property
    def log(self) -> Path:
        return self.config.logs_dir / "cluster" / f"elasticsearch-{self.number}.log"

    @property
    def home(self) -> Path:
        return self.config.clone_dir / "cluster" / f"elasticsearch-{self.number}"

    def transport_ports(self) -> str:
        return str(CLUSTER_ES_TRANSPORT_PORT + self.number - 1)

    def write_settings(self, conf: Path, transport_port: str) -> None:
        home = self.home
        seeds = ", ".join(f'"{LOOPBACK}:{CLUSTER_ES_TRANSPORT_PORT + n}"' for n in range(self.size))
        masters = ", ".join(f'"{CLUSTER_NODE_PREFIX}{n + 1}"' for n in range(self.size))
        (conf / "elasticsearch.yml").write_text(
            "# Written by python -m deploy.localstack on every start; edits are overwritten.\n"
            f"cluster.name: {CLUSTER_ES_NAME}\n"
            f"node.name: {self.node_name}\n"
            "node.roles: [master, data, ingest]\n"
            f"network.host: {LOOPBACK}\n"
            f"http.port: {self.endpoint.port}\n"
            f"transport.port: {transport_port}\n"
            f"discovery.seed_hosts: [{seeds}]\n"
            f"cluster.initial_master_nodes: [{masters}]\n"
            f"path.data: {home / 'data'}\n"
            f"path.logs: {home / 'logs'}\n"
            "xpack.security.enabled: false\n"
            "xpack.ml.enabled: false\n"
            "ingest.geoip.downloader.enabled: false\n"
            "cluster.routing.allocation.disk.threshold_enabled: false\n"
            + "".join(f"{key}: {value}\n" for key, value in FAULT_DETECTION.items())
        )

    def start(self) -> Record:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        return super().start()

    def reuse(self) -> None:
        raise StackError(
            f"{self.name}: port {self.endpoint} is taken by a server localstack did not start "
            "(another clone's cluster?); stop it first"
        )

    def wait_ready(self, record: Record | None, timeout: float) -> str:
        """The node answers HTTP (it joins the cluster once enough of the others run: ``form`` waits)."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_process(record, "before answering HTTP")
            if self.healthy():
                return "answers HTTP"
            if time.monotonic() >= deadline:
                raise start_failure(self.name, self.log, f"no HTTP answer on {self.endpoint} within {timeout:.0f} s")
            time.sleep(1.0)


class ElasticsearchCluster(NodeGroup):
    """The three nodes as one cluster: health, the elected master, where an index's primaries live."""

    name = "cluster-elasticsearch"

    def __init__(self, config: Config, size: int) -> None:
        self.es_nodes = [ElasticsearchNode(config, n, size) for n in range(1, size + 1)]
        super().__init__(config, self.es_nodes)

    @property
    def urls(self) -> list[str]:
        return [node.base_url for node in self.es_nodes]

    def get(self, path: str, timeout: float = 10.0) -> Any:
        """GET ``path`` from the first node that answers."""
        last: Exception | None = None
        for node in self.es_nodes:
            try:
                return http_json(node.base_url + path, timeout=timeout)
            except urllib.error.HTTPError:
                raise
            except (OSError, ValueError) as exc:
                last = exc
        raise StackError(f"{self.name}: no node answers ({last})")

    def health(self, wait: str = "") -> dict[str, Any]:
        health: dict[str, Any] = self.get(f"/_cluster/health?timeout=5s{wait}", timeout=15)
        return health

    def wait_for(self, status: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        wanted = ("green",) if status == "green" else ("yellow", "green")
        last = "no answer yet"
        while True:
            try:
                health = self.health(f"&wait_for_nodes={len(self.nodes)}&wait_for_status={status}")
                if health.get("number_of_nodes") == len(self.nodes) and health.get("status") in wanted:
                    return f"{health['number_of_nodes']} nodes, health {health['status']}, master {self.master()}"
                last = f"{health.get('number_of_nodes')} nodes, health {health.get('status')}"
            except (StackError, urllib.error.HTTPError) as exc:
                last = str(exc)
            if time.monotonic() >= deadline:
                wanted_state = f"{len(self.nodes)} nodes and {status}"
                raise StackError(f"{self.name}: not {wanted_state} within {timeout:.0f} s ({last})")
            time.sleep(1.0)

    def form(self) -> str:
        return self.wait_for("yellow", 180.0)

    def wait_whole(self, timeout: float) -> str:
        return self.wait_for("green", timeout)

    def master(self) -> str:
        """The elected master's node name, or ``-`` while there is none."""
        try:
            rows = self.get("/_cat/master?format=json")
        except (StackError, urllib.error.HTTPError):
            return "-"
        return str(rows[0]["node"]) if rows else "-"

    def roles(self) -> dict[str, str]:
        try:
            rows = self.get("/_cat/nodes?format=json&h=name,master")
        except (StackError, urllib.error.HTTPError):
            return {}
        by_name = {node.node_name: node.name for node in self.es_nodes}
        return {
            by_name[row["name"]]: "master" if row["master"] == "*" else "eligible"
            for row in rows
            if row["name"] in by_name
        }

    def node_holding_primary(self, index: str, shard: int = 0) -> ElasticsearchNode:
        """The node holding primary ``shard`` of ``index`` (an index or an alias naming one)."""
        rows = self.get(f"/_cat/shards/{index}?format=json&h=index,shard,prirep,state,node")
        for row in rows:
            if row["prirep"] == "p" and int(row["shard"]) == shard and row["state"] == "STARTED":
                for node in self.es_nodes:
                    if node.node_name == row["node"]:
                        return node
        raise StackError(f"{self.name}: no started primary of {index} shard {shard} ({rows})")
