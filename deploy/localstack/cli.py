"""The command line: ``up``, ``down`` or ``status`` over the selected servers, in stack order.

``up`` goes RabbitMQ, MongoDB, Elasticsearch, Prometheus and ``down`` the reverse, under a lock on
the state dir; one server failing does not stop the others. Exit codes: 0 done, 1 a server failed,
2 bad arguments, 3 ``status`` found a server down (a data server, or any server named with
``--only``: Prometheus down alone does not fail a plain ``status``), 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from deploy import localstack
from deploy.localstack.config import Config, StackError, load_config
from deploy.localstack.elasticsearch import Elasticsearch
from deploy.localstack.mongodb import MongoDB
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
    return parser.parse_args(argv)


def change(command: str, servers: list[Server], config: Config) -> int:
    """Bring ``servers`` up or down; each failure is one line on stderr."""
    if os.geteuid() != 0:
        raise StackError("run as root: it installs packages and runs Elasticsearch as its own user")
    began = time.monotonic()
    failed = []
    with file_lock(config.run_dir / "localstack.lock", "the state dir"):
        for server in servers if command == "up" else reversed(servers):
            try:
                if command == "up":
                    server.up()
                else:
                    server.down()
            except (StackError, OSError, subprocess.SubprocessError) as exc:
                print(f"localstack: error: {exc}", file=sys.stderr)
                failed.append(server.name)
    if failed:
        print(f"localstack: {command} failed for {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"localstack: {command} in {time.monotonic() - began:.1f} s (state in {config.state_dir})")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = load_config()
        servers = [SERVER_CLASSES[name](config) for name in args.only or SERVERS]
        if args.command == "status":
            # A server named with --only counts; otherwise only those the services need.
            down = [server for server in servers if not server.status() and (args.only or server.required)]
            return STATUS_DOWN if down else 0
        return change(args.command, servers, config)
    except (StackError, OSError) as exc:
        print(f"localstack: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "localstack: interrupted; run `python -m deploy.localstack down` to stop what was started", file=sys.stderr
        )
        return 130
