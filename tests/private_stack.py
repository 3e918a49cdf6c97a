"""A private MongoDB and Elasticsearch (and RabbitMQ) for tests that stop and start a server.

Outage tests must never stop the shared servers other tests use, so they get their own pair,
brought up by the project's own stack script on free ports with their own state folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Literal

from deploy.localstack.config import clone_data_dir
from services.common.settings import PROJECT_ROOT, StackSettings

Server = Literal["mongodb", "elasticsearch", "rabbitmq"]


class PrivateStack:
    def __init__(self, mongodb_port: int, elasticsearch_port: int, amqp_port: int | None = None) -> None:
        # Under /var/tmp rather than a 0700 temp dir of the test run: survives between stop and start.
        self.state_dir = Path(tempfile.mkdtemp(prefix="tubewatch-private-", dir="/var/tmp"))
        self.mongodb_url = f"mongodb://127.0.0.1:{mongodb_port}/?replicaSet=rs0"
        self.elasticsearch_url = f"http://127.0.0.1:{elasticsearch_port}"
        # Without a port of its own, RabbitMQ stays the shared broker (never stopped from here).
        self.own_broker = amqp_port is not None
        self.amqp_url = f"amqp://guest:guest@127.0.0.1:{amqp_port}/" if amqp_port else StackSettings().amqp_url
        self._started: set[Server] = set()

    def _run(self, action: str, servers: str) -> None:
        env = {
            **os.environ,
            "STATE_DIR": str(self.state_dir),
            "MONGODB_URL": self.mongodb_url,
            "ELASTICSEARCH_URL": self.elasticsearch_url,
            "AMQP_URL": self.amqp_url,
        }
        result = subprocess.run(
            [sys.executable, "-m", "deploy.localstack", action, "--only", servers],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"localstack {action} {servers} failed:\n{result.stdout}\n{result.stderr}")

    def start(self, server: Server) -> None:
        """Start ``server`` (or keep it) and return once it answers and accepts writes."""
        self._run("up", server)
        self._started.add(server)

    def stop(self, server: Server) -> None:
        """Stop ``server``; returns once its process is gone. Its data stays for the next start."""
        self._run("down", server)

    def close(self) -> None:
        if self._started:
            self._run("down", ",".join(sorted(self._started)))
        # Elasticsearch keeps its data outside the state folder (its user cannot reach ours).
        shutil.rmtree(clone_data_dir(self.state_dir), ignore_errors=True)
        shutil.rmtree(self.state_dir, ignore_errors=True)
