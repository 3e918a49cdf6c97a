"""Cluster mode's public face: the clusters' URLs and environment, and one node found, killed or restarted.

    from deploy.localstack.cluster import Cluster
    cluster = Cluster()                   # the settings' state dir, 3 nodes each
    cluster.env()                         # ELASTICSEARCH_URL, MONGODB_URL, AMQP_URL, ... for the services
    node = cluster.elasticsearch.node_holding_primary("videos")    # an index or an alias
    node = cluster.mongodb.primary()      # cluster.mongodb.step_down(): a planned election
    node = cluster.rabbitmq.node("tw-cluster-2@localhost")          # or .queue_leader(queue)
    cluster.kill(node); cluster.restart(node); cluster.wait_whole()

``up`` writes the same environment to ``<state>/cluster.env`` (``down`` removes it). Every node is a
``Server`` with its own record, so ``kill`` (SIGKILL to the node's processes, as a crash) leaves a
stale record that ``restart`` replaces by starting the node again on its data.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from deploy.localstack.config import CLUSTER_SIZES, Config, StackError, load_config
from deploy.localstack.es_cluster import ElasticsearchCluster
from deploy.localstack.mongo_cluster import MongoReplicaSet
from deploy.localstack.node_group import MB, NodeGroup, node_pids
from deploy.localstack.processes import file_lock, pid_alive, wait_port_closed, wait_until
from deploy.localstack.rabbit_cluster import RabbitCluster
from deploy.localstack.server import Server

CLUSTER_KINDS = ("rabbitmq", "mongodb", "elasticsearch")
WHOLE_TIMEOUT = 300.0


class Cluster:
    """The clusters of cluster mode (RabbitMQ, MongoDB, Elasticsearch), ``size`` nodes each."""

    def __init__(self, config: Config | None = None, size: int = 3) -> None:
        if size not in CLUSTER_SIZES:
            raise StackError(f"cluster mode runs {' or '.join(map(str, CLUSTER_SIZES))} nodes, not {size}")
        self.config = config or load_config()
        self.size = size
        self.elasticsearch = ElasticsearchCluster(self.config, size)
        self.mongodb = MongoReplicaSet(self.config, size)
        self.rabbitmq = RabbitCluster(self.config, size)

    def groups(self, only: list[str] | None = None) -> list[NodeGroup]:
        """The clusters in stack order (RabbitMQ, MongoDB, Elasticsearch), or those named in ``only``."""
        by_kind: dict[str, NodeGroup] = {
            "rabbitmq": self.rabbitmq,
            "mongodb": self.mongodb,
            "elasticsearch": self.elasticsearch,
        }
        return [by_kind[kind] for kind in CLUSTER_KINDS if kind in by_kind and (only is None or kind in only)]

    # the services' environment ---------------------------------------------------------------

    @property
    def env_file(self) -> Path:
        return self.config.state_dir / "cluster.env"

    def env(self) -> dict[str, str]:
        """What the services need to use the clusters (comma-separated URL lists)."""
        return {
            "ELASTICSEARCH_URL": ",".join(self.elasticsearch.urls),
            "MONGODB_URL": self.mongodb.url,
            "AMQP_URL": ",".join(self.rabbitmq.urls(self.config.amqp_user, self.config.amqp_password)),
            "AMQP_QUEUE_TYPE": "quorum",
            "ELASTICSEARCH_REPLICAS": "1",
        }

    def write_env(self) -> None:
        self.env_file.parent.mkdir(parents=True, exist_ok=True)
        lines = "".join(f"{key}={value}\n" for key, value in self.env().items())
        self.env_file.write_text(f"# Written by python -m deploy.localstack up --cluster {self.size}.\n{lines}")

    # nodes -----------------------------------------------------------------------------------

    def nodes(self) -> list[Server]:
        return [node for group in self.groups() for node in group.nodes]

    def node(self, name: str) -> Server:
        """A node by its record name (``cluster-mongodb-2``)."""
        for node in self.nodes():
            if node.name == name:
                return node
        raise StackError(f"no cluster node {name!r}; nodes: {', '.join(node.name for node in self.nodes())}")

    def pids(self, node: Server) -> list[int]:
        return node_pids(node)

    def kill(self, node: Server, timeout: float = 30.0) -> list[int]:
        """SIGKILL every process of ``node`` (a crash: no shutdown) and wait until they are gone."""
        pids = node_pids(node)
        if not pids:
            raise StackError(f"{node.name} is not running (no live process of its record)")
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if not wait_until(lambda: not any(pid_alive(pid) for pid in pids), timeout, interval=0.1):
            raise StackError(f"{node.name}: processes {pids} survived SIGKILL for {timeout:.0f} s")
        # A killed server's main thread is a zombie while its other threads still close its sockets.
        if not wait_port_closed(node.endpoint, timeout):
            raise StackError(f"{node.name}: {node.endpoint} still accepts connections after SIGKILL")
        return pids

    def restart(self, node: Server) -> None:
        """Start ``node`` again on its data (after ``kill`` or a stop) and wait until it answers."""
        with file_lock(self.config.run_dir / "localstack.lock", "the state dir"):
            node.up()

    def wait_whole(self, timeout: float = WHOLE_TIMEOUT) -> dict[str, str]:
        """Wait until every cluster has all its nodes back; returns each cluster's description."""
        deadline = time.monotonic() + timeout
        return {group.name: group.wait_whole(max(1.0, deadline - time.monotonic())) for group in self.groups()}

    # status ----------------------------------------------------------------------------------

    def status(self, only: list[str] | None = None) -> bool:
        """Every node's line, then the nodes' RSS together; True when every node is up."""
        groups = self.groups(only)
        all_up = True
        for group in groups:
            all_up = group.status() and all_up
        total = sum(group.rss() for group in groups)
        print(f"{'cluster total':<24} rss {total / MB:.0f} MB over {sum(len(g.nodes) for g in groups)} nodes")
        return all_up
