"""What every cluster of cluster mode shares: its nodes brought up and down in order, and their status.

A ``NodeGroup`` holds one server per node (each a ``Server`` with a record of its own, named
``cluster-<server>-<n>``); a subclass says how the started nodes become one cluster (``form``),
which role each node plays now (``roles``) and when the cluster is whole again (``wait_whole``).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from deploy.localstack.config import Config, StackError
from deploy.localstack.processes import group_members, listener_pids, port_open, rss_bytes, with_descendants
from deploy.localstack.server import Server

MB = 1024 * 1024


def node_pids(node: Server) -> list[int]:
    """The processes of a node localstack started: its process group and whatever runs below them."""
    record = node.load()
    if record is None or not record.alive():
        return []
    pids = set(group_members(record.pid, record.start_ticks))
    for pid in list(pids):
        pids.update(with_descendants(pid))
    return sorted(pids)


def node_up(node: Server) -> str:
    """``node.up()``; its failure as one line ("" when it is up)."""
    try:
        node.up()
    except (StackError, OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    return ""


def node_down(node: Server) -> str:
    """``node.down()``; its failure as one line ("" when it is stopped)."""
    try:
        node.down()
    except (StackError, OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    return ""


class NodeGroup:
    """One cluster of cluster mode: ``size`` nodes of one server, each started and stopped on its own."""

    name = ""
    required = True
    stop_in_order = False

    def __init__(self, config: Config, nodes: Sequence[Server]) -> None:
        self.config = config
        self.nodes = list(nodes)

    def form(self) -> str:
        """Make the running nodes one cluster (idempotent); returns a short description of it."""
        raise NotImplementedError

    def roles(self) -> dict[str, str]:
        """Node record name -> its role now (``down`` for a node that does not answer)."""
        raise NotImplementedError

    def wait_whole(self, timeout: float) -> str:
        """Wait until every node is back in the cluster; returns a short description."""
        raise NotImplementedError

    def up(self) -> None:
        """Every node up at once (each waits for itself only), then the cluster formed."""
        began = time.monotonic()
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            outcomes = list(pool.map(node_up, self.nodes))
        failed = [failure for failure in outcomes if failure]
        if failed:
            raise StackError(f"{self.name}: {'; '.join(failed)}")
        print(f"{self.name}: {self.form()} ({time.monotonic() - began:.1f} s)")

    def down(self) -> None:
        """Every node stopped, at once unless the cluster wants them one after the other (last first)."""
        nodes = list(reversed(self.nodes))
        if self.stop_in_order:
            outcomes = [node_down(node) for node in nodes]
        else:
            with ThreadPoolExecutor(len(nodes)) as pool:
                outcomes = list(pool.map(node_down, nodes))
        failed = [failure for failure in outcomes if failure]
        if failed:
            raise StackError(f"{self.name}: {'; '.join(failed)}")

    def started(self) -> bool:
        """Whether localstack holds a record of any node of this cluster."""
        return any(node.load() is not None for node in self.nodes)

    def status(self) -> bool:
        """One line per node: state, role, pid, endpoint, RSS and log; True when every node is up."""
        roles = self.roles()
        all_up = True
        for node in self.nodes:
            record = node.load()
            pids = node_pids(node)
            if pids:
                state, pid = ("up" if node.healthy() else "starting"), str(record.pid if record else "?")
            elif port_open(node.endpoint):
                state, pids = "foreign", listener_pids(node.endpoint.port)
                pid = ",".join(str(p) for p in pids) or "?"
            else:
                state, pid = "down", "-"
            all_up = all_up and state == "up"
            role = roles.get(node.name, "down")
            rss = f"{rss_bytes(pids) / MB:.0f} MB" if pids else "-"
            print(
                f"{node.name:<24} {state:<8} {role:<10} pid {pid:<8} {node.endpoint!s:<16} rss {rss:>8}  log {node.log}"
            )
        return all_up

    def rss(self) -> int:
        return sum(rss_bytes(node_pids(node)) for node in self.nodes)
