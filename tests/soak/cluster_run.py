"""The failover soak (`make soak-cluster`): the pipeline on cluster mode's three-node clusters while
their nodes fail, then every video reconciled and every API read accounted for.

The clusters are the project's own (``python -m deploy.localstack up --cluster 3``, fixed ports):
the soak brings them up when they are not running and stops them again at the end in that case.
Its services keep their data under names of this run alone (database, alias, exchange and queues),
removed at the end, so the clusters stay as they were. A majority of every cluster stays up
throughout, so no API read may fail: a read waits for an election, it is not excused.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from deploy.localstack.cluster import Cluster
from deploy.localstack.config import StackError
from deploy.localstack.node_group import MB, node_pids
from deploy.localstack.server import Server
from services.common.clients import connect_amqp_robust
from services.common.settings import PROJECT_ROOT
from tests.soak.report import FAILOVER_KEYS, write_cluster_summary
from tests.soak.run import FaultWindow, Soak, SoakConfig

logger = logging.getLogger("soak")

CLUSTER_FAULT_KINDS = (
    "kill_elasticsearch_primary",
    "stepdown_mongodb",
    "kill_mongodb_primary",
    "stop_rabbitmq_leader",
)
# The cluster each fault takes a node from (deploy.localstack.cluster.CLUSTER_KINDS).
FAULT_CLUSTERS = {
    "kill_elasticsearch_primary": "elasticsearch",
    "stepdown_mongodb": "mongodb",
    "kill_mongodb_primary": "mongodb",
    "stop_rabbitmq_leader": "rabbitmq",
}
FAILOVER_TIMEOUT = 90.0
WHOLE_TIMEOUT = 300.0
PROBE_INTERVAL = 0.25
NODE_RSS_SECONDS = 5.0
# A fault's cost is counted until this long after the harness is done with it (the services'
# reconnections and retries settle after the node is back).
RECOVERY_SECONDS = 10.0
# Writes may pause for the failover and this much more: the pipeline's own cadence (the fetcher polls
# every 2 s, the indexer writes in batches) and a reconnection to another node.
WRITE_PAUSE_SLACK_SECONDS = 6.0
# The first seconds (services warming up, the backfill arriving) are no baseline.
WARMUP_SECONDS = 20.0


class ClusterSoak(Soak):
    """One fetcher, one indexer and two API processes (API_WORKERS=2) on the three clusters."""

    fault_kinds = CLUSTER_FAULT_KINDS
    excused_kinds: frozenset[str] = frozenset()
    report_stem = "soak-cluster"
    chart_title = "tubewatch failover soak on 3-node clusters: ingest, API latency, memory; shaded: faults"

    def __init__(self, config: SoakConfig, cluster: Cluster | None = None, *, overlap: bool = False) -> None:
        super().__init__(config)
        self.cluster = cluster or Cluster()
        # With overlap a node is started again while the next fault (on another cluster) goes on, so
        # every cluster still lacks at most one node at a time; without it each fault waits for its
        # node to be back and its cluster whole, so each fault's cost is its own.
        self.overlap = overlap
        self._recovering: dict[str, asyncio.Task[None]] = {}
        run = secrets.token_hex(4)
        self.namespace = f"soak-{run}"
        self.database = f"soak_{run}"
        self.index = f"soak-{run}-videos"
        self.exchange = f"soak-{run}.videos"
        self.queue = f"soak-{run}.videos.index"
        self.was_running = False
        # (seconds, MiB): the nine server nodes' RSS together, read every NODE_RSS_SECONDS.
        self.node_rss_mib: list[tuple[float, float]] = []

    # servers -------------------------------------------------------------------------------------

    @property
    def mongodb_url(self) -> str:
        return self.cluster.mongodb.url

    @property
    def elasticsearch_url(self) -> str:
        return ",".join(self.cluster.elasticsearch.urls)

    @property
    def amqp_url(self) -> str:
        return ",".join(self.cluster.rabbitmq.urls(self.cluster.config.amqp_user, self.cluster.config.amqp_password))

    def servers_env(self) -> dict[str, str]:
        return {
            **self.cluster.env(),
            "MONGODB_DATABASE": self.database,
            "ELASTICSEARCH_INDEX": self.index,
            "AMQP_EXCHANGE": self.exchange,
            "AMQP_QUEUE": self.queue,
        }

    def _localstack(self, action: str) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "deploy.localstack", action, "--cluster", str(self.cluster.size)],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"localstack {action} --cluster failed:\n{result.stdout}\n{result.stderr}")

    async def start_servers(self) -> None:
        self.was_running = all(node_pids(node) for node in self.cluster.nodes())
        await asyncio.to_thread(self._localstack, "up")

    async def close_servers(self) -> None:
        try:
            await asyncio.to_thread(self.cluster.wait_whole, WHOLE_TIMEOUT)
            await self._remove_namespace()
        finally:
            if not self.was_running:
                await asyncio.to_thread(self._localstack, "down")

    async def _remove_namespace(self) -> None:
        """Drop what this run's services made in the clusters: its database, indices, queues, exchanges."""
        await self.drop_stores(f"{self.namespace}*")
        node = self.cluster.rabbitmq.rabbit_nodes[0]
        queues = json.loads(await asyncio.to_thread(node.ctl, "list_queues", "name", "--formatter", "json"))
        exchanges = json.loads(await asyncio.to_thread(node.ctl, "list_exchanges", "name", "--formatter", "json"))
        connection = await connect_amqp_robust(self.amqp_url, "soak-cleanup", timeout=10)
        try:
            channel = await connection.channel()
            for row in queues:
                if str(row["name"]).startswith(self.namespace):
                    await channel.queue_delete(row["name"])
            for row in exchanges:
                if str(row["name"]).startswith(self.namespace):
                    await channel.exchange_delete(row["name"])
        finally:
            await connection.close()

    async def sample(self) -> None:
        await asyncio.gather(super().sample(), self._sample_nodes())

    async def _sample_nodes(self) -> None:
        while not self._stop_load.is_set():
            total = await asyncio.to_thread(lambda: sum(group.rss() for group in self.cluster.groups()))
            self.node_rss_mib.append((self.now(), total / MB))
            await asyncio.sleep(NODE_RSS_SECONDS)

    # services ------------------------------------------------------------------------------------

    def start_services(self, fetcher_env: dict[str, str]) -> list[str]:
        self._service("indexer", "indexer", INDEXER_PORT=str(self.ports["indexer1"])).start()
        self._service("fetcher", "fetcher", FETCHER_PORT=str(self.ports["fetcher1"]), **fetcher_env).start()
        # Two API processes behind the one port (SO_REUSEPORT): the load's reads go to either.
        self._service("api", "api", API_PORT=str(self.ports["api"]), API_WORKERS="2").start()
        self.ports["indexer"], self.ports["fetcher"] = self.ports["indexer1"], self.ports["fetcher1"]
        return ["indexer", "fetcher", "api"]

    # faults --------------------------------------------------------------------------------------

    async def chaos(self) -> None:
        try:
            await super().chaos()
        finally:
            recovering, self._recovering = list(self._recovering.values()), {}
            await asyncio.gather(*recovering)

    async def _inflict(self, kind: str, window: FaultWindow) -> None:
        group = FAULT_CLUSTERS[kind]
        if group in self._recovering:  # this cluster's last node lost is not back yet
            await self._recovering.pop(group)
        began = time.monotonic()

        def since() -> float:
            return round(time.monotonic() - began, 2)

        if kind == "kill_elasticsearch_primary":
            node: Server = await asyncio.to_thread(self.cluster.elasticsearch.node_holding_primary, self.index)
            window.target = node.name
            await asyncio.to_thread(self.cluster.kill, node)
            window.measures["killed_s"] = since()
            await self._until(lambda: self._es_primary_elsewhere(node), "a primary elsewhere", window)
            window.measures["primary_promoted_s"] = since()
            await self._down_and_back(node, window, since, group)
        elif kind == "stepdown_mongodb":
            old = await asyncio.to_thread(self.cluster.mongodb.step_down, 30)
            window.target = old.name
            await self._until(lambda: self._mongo_primary_other_than(old), "a new primary", window)
            window.measures["election_s"] = since()
            await asyncio.to_thread(self.cluster.groups([group])[0].wait_whole, WHOLE_TIMEOUT)
            window.measures["whole_s"] = since()
        elif kind == "kill_mongodb_primary":
            node = await asyncio.to_thread(self.cluster.mongodb.primary)
            window.target = node.name
            await asyncio.to_thread(self.cluster.kill, node)
            window.measures["killed_s"] = since()
            await self._until(lambda: self._mongo_primary_other_than(node), "a new primary", window)
            window.measures["election_s"] = since()
            await self._down_and_back(node, window, since, group)
        elif kind == "stop_rabbitmq_leader":
            node = await asyncio.to_thread(self.cluster.rabbitmq.queue_leader, self.queue)
            window.target = node.name
            await asyncio.to_thread(node.down)  # rabbitmqctl stop: a node taken out, not a crash
            window.measures["stopped_s"] = since()
            await self._until(lambda: self._rabbit_leader_other_than(node), "a new queue leader", window)
            window.measures["leader_elected_s"] = since()
            await self._down_and_back(node, window, since, group)
        else:
            raise ValueError(f"unknown cluster fault {kind!r}")

    async def _down_and_back(self, node: Server, window: FaultWindow, since: Callable[[], float], group: str) -> None:
        """Keep ``node`` down a while longer, then start it on its data and wait until its cluster is
        whole: before the fault ends, or (overlap) while the next one goes on."""
        await asyncio.sleep(self.rng.uniform(*self.config.outage_seconds))
        back = self._back(node, window, since, group)
        if self.overlap:
            self._recovering[group] = asyncio.create_task(back)
        else:
            await back

    async def _back(self, node: Server, window: FaultWindow, since: Callable[[], float], group: str) -> None:
        await asyncio.to_thread(self.cluster.restart, node)
        window.measures["restarted_s"] = since()
        await asyncio.to_thread(self.cluster.groups([group])[0].wait_whole, WHOLE_TIMEOUT)
        window.measures["whole_s"] = since()

    async def _until(self, check: Callable[[], bool], what: str, window: FaultWindow) -> None:
        deadline = time.monotonic() + FAILOVER_TIMEOUT
        while not await asyncio.to_thread(check):
            if time.monotonic() > deadline:
                self.problem(f"{window.kind} on {window.target}: no {what} within {FAILOVER_TIMEOUT:.0f} s")
                return
            await asyncio.sleep(PROBE_INTERVAL)

    def _es_primary_elsewhere(self, killed: Server) -> bool:
        try:
            return self.cluster.elasticsearch.node_holding_primary(self.index) is not killed
        except (StackError, OSError):
            return False

    def _mongo_primary_other_than(self, old: Server) -> bool:
        try:
            return self.cluster.mongodb.primary() is not old
        except StackError:
            return False

    def _rabbit_leader_other_than(self, old: Server) -> bool:
        try:
            return self.cluster.rabbitmq.queue_leader(self.queue) is not old
        except StackError:
            return False

    # judging and the report ------------------------------------------------------------------------

    def growths(self) -> list[float]:
        """When MongoDB's video count was seen to grow (seconds since the start)."""
        grew: list[float] = []
        last: int | None = None
        for sample in self.samples:
            if sample.videos_in_mongo is None:
                continue
            if last is not None and sample.videos_in_mongo > last:
                grew.append(sample.t)
            last = sample.videos_in_mongo
        return grew

    def write_gaps(self) -> list[tuple[float, float]]:
        """The spans between successive growths of the count: (from, to) seconds."""
        grew = self.growths()
        return list(itertools.pairwise(grew))

    def fault_costs(self) -> list[dict[str, Any]]:
        """Per fault: the harness's timings, the longest write pause and the reads made meanwhile."""
        gaps, grew = self.write_gaps(), self.growths()
        costs = []
        starts = [w.started for w in self.faults]
        for number, window in enumerate(self.faults):
            ended = window.ended + RECOVERY_SECONDS
            # A pause is the fault's when it overlaps the fault, or lies in its recovery before the
            # next fault starts (one that runs into the next fault is that fault's).
            next_start = starts[number + 1] if number + 1 < len(starts) else float("inf")
            pauses = [
                b - a
                for a, b in gaps
                if (a < window.ended and b > window.started) or (window.ended <= a < ended and b <= next_start)
            ]
            reads = sorted(s.latency_ms for s in self.api_samples if window.started <= s.t <= ended and s.status == 200)
            failed = sum(
                1 for s in self.api_samples if window.started <= s.t <= ended and (s.status == 0 or s.status >= 500)
            )
            costs.append(
                {
                    "kind": window.kind,
                    "target": window.target,
                    "started": round(window.started, 1),
                    "seconds": round(window.ended - window.started, 1),
                    **window.measures,
                    "write_pause_s": round(max(pauses), 1) if pauses else None,
                    "writes_resumed": any(t > window.ended for t in grew),
                    "reads": len(reads),
                    "reads_failed": failed,
                    "read_ms_p50": percentile(reads, 0.5),
                    "read_ms_p99": percentile(reads, 0.99),
                    "read_ms_max": round(reads[-1], 1) if reads else None,
                }
            )
        return costs

    def baseline(self) -> dict[str, Any]:
        """The same figures away from every fault (and its recovery), to compare with."""
        windows = [(w.started, w.ended + RECOVERY_SECONDS) for w in self.faults]

        def quiet(a: float, b: float) -> bool:
            return a > WARMUP_SECONDS and not any(a < end and b > start for start, end in windows)

        pauses = [b - a for a, b in self.write_gaps() if quiet(a, b)]
        reads = sorted(s.latency_ms for s in self.api_samples if s.status == 200 and quiet(s.t, s.t))
        return {
            "write_pause_s": round(max(pauses), 1) if pauses else None,
            "reads": len(reads),
            "read_ms_p50": percentile(reads, 0.5),
            "read_ms_p99": percentile(reads, 0.99),
            "read_ms_max": round(reads[-1], 1) if reads else None,
        }

    def judge(self) -> list[str]:
        problems = []
        for cost in self.fault_costs():
            where = f"{cost['kind']} on {cost['target']}"
            if not cost["writes_resumed"]:
                problems.append(f"{where}: writes did not resume after the fault")
            failover = failover_seconds(cost)
            pause = cost["write_pause_s"]
            if failover is not None and pause is not None and pause > failover + WRITE_PAUSE_SLACK_SECONDS:
                problems.append(
                    f"{where}: writes paused {pause} s, longer than the failover ({failover} s) "
                    f"and {WRITE_PAUSE_SLACK_SECONDS:.0f} s more"
                )
        return problems

    def report_extra(self) -> dict[str, Any]:
        return {
            "cluster": {
                "size": self.cluster.size,
                "env": self.servers_env(),
                "nodes_rss_mib_peak": round(max((mib for _, mib in self.node_rss_mib), default=0.0)),
            },
            "fault_costs": self.fault_costs(),
            "baseline": self.baseline(),
        }

    def write_summary(self, report: dict[str, Any]) -> None:
        write_cluster_summary(self.report_dir / "soak-cluster-report.md", report)


def failover_seconds(cost: dict[str, Any]) -> float | None:
    """When the fault's cluster had failed over (a primary promoted or elected, a leader elected)."""
    for key in FAILOVER_KEYS:
        if key in cost:
            return float(cost[key])
    return None


def cluster_config(config: SoakConfig) -> SoakConfig:
    """The failover soak's settings on top of ``config``: a finer count sampling (write pauses are
    read off it) and a quiet tail after the last fault, so its recovery is seen before the drain."""
    return replace(config, sample_seconds=0.5, tail_seconds=RECOVERY_SECONDS)


def percentile(ordered: list[float], p: float) -> float | None:
    return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 1) if ordered else None
