"""The command line: ``up``, ``down`` or ``status`` over the selected servers, in stack order.

``up`` goes RabbitMQ, MongoDB, Elasticsearch, Prometheus and ``down`` the reverse, under a lock on
the state dir; one server failing does not stop the others. ``--cluster 3`` does the same over
cluster mode's three-node clusters instead (``cluster``, the three side by side), beside the
single-node stack; a plain ``down`` stops both. Exit codes: 0 done, 1 a server failed, 2 bad
arguments, 3 ``status`` found a server down (a data server, or any server named with ``--only``:
Prometheus down alone does not fail a plain ``status``; any node down fails a cluster ``status``),
130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from deploy import localstack
from deploy.localstack.cluster import CLUSTER_KINDS, Cluster
from deploy.localstack.config import CLUSTER_SIZES, Config, StackError, load_config
from deploy.localstack.elasticsearch import Elasticsearch
from deploy.localstack.mongodb import MongoDB
from deploy.localstack.node_group import NodeGroup
from deploy.localstack.processes import file_lock
from deploy.localstack.prometheus import Prometheus
from deploy.localstack.rabbitmq import RabbitMQ
from deploy.localstack.server import Server

DESCRIPTION = (localstack.__doc__ or "").split("\n")[0]
SERVER_CLASSES: dict[str, type[Server]] = {
    "rabbitmq": RabbitMQ,
    "mongodb": MongoDB,
    "elasticsearch": Elasticsearch,
    "prometheus": Prometheus,
}
SERVERS = tuple(SERVER_CLASSES)
STATUS_DOWN = 3


def parse_only(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in SERVERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose from {','.join(SERVERS)} (got {value!r})")
    return [name for name in SERVERS if name in names]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m deploy.localstack", description=DESCRIPTION)
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument(
        "--only",
        type=parse_only,
        default=None,
        help=f"comma-separated subset of {','.join(SERVERS)} (default: all)",
    )
    parser.add_argument(
        "--cluster",
        type=int,
        choices=CLUSTER_SIZES,
        default=None,
        help="cluster mode: that many nodes of RabbitMQ, MongoDB and Elasticsearch, beside the single-node stack",
    )
    args = parser.parse_args(argv)
    if args.cluster and args.only and not set(args.only) <= set(CLUSTER_KINDS):
        parser.error(f"--cluster runs {','.join(CLUSTER_KINDS)} only")
    return args


def change(command: str, servers: Sequence[Server | NodeGroup], config: Config, *, concurrently: bool = False) -> int:
    """Bring ``servers`` up or down, in order or all at once; each failure is one line on stderr."""
    if os.geteuid() != 0:
        raise StackError("run as root: it installs packages and runs Elasticsearch as its own user")
    began = time.monotonic()

    def apply(server: Server | NodeGroup) -> str:
        try:
            if command == "up":
                server.up()
            else:
                server.down()
        except (StackError, OSError, subprocess.SubprocessError) as exc:
            print(f"localstack: error: {exc}", file=sys.stderr)
            return server.name
        return ""

    ordered = list(servers if command == "up" else reversed(servers))
    with file_lock(config.run_dir / "localstack.lock", "the state dir"):
        if concurrently and len(ordered) > 1:
            with ThreadPoolExecutor(len(ordered)) as pool:
                outcomes = list(pool.map(apply, ordered))
        else:
            outcomes = [apply(server) for server in ordered]
    failed = [name for name in outcomes if name]
    if failed:
        print(f"localstack: {command} failed for {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"localstack: {command} in {time.monotonic() - began:.1f} s (state in {config.state_dir})")
    return 0


def run_cluster(command: str, size: int, only: list[str] | None, config: Config) -> int:
    cluster = Cluster(config, size)
    if command == "status":
        return 0 if cluster.status(only) else STATUS_DOWN
    # The clusters share nothing: they start and stop side by side (Elasticsearch's JVMs take longest).
    code = change(command, cluster.groups(only), config, concurrently=True)
    if command == "up" and code == 0:
        cluster.write_env()
        print(f"localstack: the services' environment for the cluster is in {cluster.env_file}")
    elif command == "down" and not any(group.started() for group in cluster.groups()):
        cluster.env_file.unlink(missing_ok=True)
    return code


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = load_config()
        if args.cluster:
            return run_cluster(args.command, args.cluster, args.only, config)
        servers = [SERVER_CLASSES[name](config) for name in args.only or SERVERS]
        if args.command == "status":
            # A server named with --only counts; otherwise only those the services need.
            down = [server for server in servers if not server.status() and (args.only or server.required)]
            return STATUS_DOWN if down else 0
        code = change(args.command, servers, config)
        if args.command == "down" and any(group.started() for group in Cluster(config).groups(args.only)):
            # A plain down stops cluster mode's nodes too (only those localstack has records of).
            code = max(code, run_cluster("down", CLUSTER_SIZES[0], args.only, config))
        return code
    except (StackError, OSError) as exc:
        print(f"localstack: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "localstack: interrupted; run `python -m deploy.localstack down` to stop what was started", file=sys.stderr
        )
        return 130
