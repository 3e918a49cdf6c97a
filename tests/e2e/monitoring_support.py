"""What the monitoring tests share: the services on private ports, a private Prometheus, its API.

The services run as `make run` runs them (deploy/run.sh, demo mode) against the private MongoDB and
Elasticsearch of tests/private_stack.py and the shared RabbitMQ under the test's own names. The
Prometheus is the local stack's own (`python -m deploy.localstack up --only prometheus`) on a free
port with its own state dir, scraping those ports every second and evaluating a copy of the rules
whose `for:` and windows are seconds instead of minutes (the committed rules stay production-sized).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from services.common.settings import PROJECT_ROOT
from services.common.topology import QueueNames
from tests.conftest import free_port
from tests.private_stack import PrivateStack
from tests.waiting import wait_until

RULES = PROJECT_ROOT / "deploy/prometheus/rules"
DASHBOARD = PROJECT_ROOT / "deploy/grafana/dashboards/tubewatch.json"
SERVICE_PORTS = ("API_PORT", "FETCHER_PORT", "INDEXER_PORT", "NOTIFIER_PORT", "EMULATOR_PORT")
FAST_FOR = "10s"
FAST_WINDOW = "[8s]"
# Names a PromQL expression may use that are functions, keywords or label names, not metrics.
METRIC_PREFIXES = ("tubewatch_", "emulator_")


@dataclass
class Services:
    ports: dict[str, int]
    log: Path

    def url(self, port: str) -> str:
        return f"http://127.0.0.1:{self.ports[port]}"


def fast_rules(folder: Path) -> Path:
    """A copy of the rules with every `for:` at 10 s and every range of the recording rules at 8 s."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in RULES.glob("*.yml"):
        text = re.sub(r"(?m)^(\s+for:) \S+$", rf"\1 {FAST_FOR}", path.read_text())
        if path.name == "recording.yml":
            text = re.sub(r"\[\d+[smh]\]", FAST_WINDOW, text)
        (folder / path.name).write_text(text)
    return folder


@asynccontextmanager
async def running_services(
    private_stack: PrivateStack, amqp_url: str, names: QueueNames, database: str, alias: str, log: Path
) -> AsyncIterator[Services]:
    """The emulator, fetcher, indexer and API (deploy/run.sh), stopped with Ctrl-C afterwards."""
    ports = {name: free_port() for name in SERVICE_PORTS}
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("YOUTUBE_", "EMULATOR_"))},
        **{name: str(port) for name, port in ports.items()},
        "AMQP_URL": amqp_url,
        "AMQP_EXCHANGE": names.exchange,
        "AMQP_QUEUE": names.queue,
        "MONGODB_URL": private_stack.mongodb_url,
        "MONGODB_DATABASE": database,
        "ELASTICSEARCH_URL": private_stack.elasticsearch_url,
        "ELASTICSEARCH_INDEX": alias,
        "SEARCH_QUERIES": "cricket",
        "POLL_INTERVAL_SECONDS": "1",
        "EMULATOR_VIDEOS_PER_MINUTE": "60",
        "EMULATOR_BACKFILL_SECONDS": "300",
    }
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            "bash",
            "deploy/run.sh",
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    services = Services(ports, log)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            for port in SERVICE_PORTS:
                url = f"{services.url(port)}/healthz"
                await wait_until(partial(answers, session, url), within=90, what=f"{url} (log: {log})")
        yield services
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), timeout=45)
        except TimeoutError:
            os.killpg(process.pid, signal.SIGKILL)
            tail = (await asyncio.to_thread(log.read_text))[-3000:]
            pytest.fail(f"services did not stop on Ctrl-C; log: {tail}")


async def answers(session: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with session.get(url) as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


class PrivatePrometheus:
    """The local stack's Prometheus on a free port and state dir of its own, scraping ``services``."""

    def __init__(self, services: Services, state_dir: Path) -> None:
        self.port = free_port()
        self.state_dir = state_dir
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS_")},
            **{name: str(port) for name, port in services.ports.items()},
            "STATE_DIR": str(state_dir),
            "PROMETHEUS_PORT": str(self.port),
            "PROMETHEUS_SCRAPE_INTERVAL": "1s",
            "PROMETHEUS_EVALUATION_INTERVAL": "1s",
            "PROMETHEUS_RULES_DIR": str(fast_rules(state_dir / "rules")),
        }

    def localstack(self, command: str) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "deploy.localstack", command, "--only", "prometheus"],
            cwd=PROJECT_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"localstack {command} prometheus failed:\n{result.stdout}\n{result.stderr}")

    async def api(self, session: aiohttp.ClientSession, path: str) -> Any:
        async with session.get(f"http://127.0.0.1:{self.port}/api/v1/{path}") as response:
            response.raise_for_status()
            return (await response.json())["data"]

    async def alert_state(self, session: aiohttp.ClientSession, name: str) -> str:
        """``pending``, ``firing``, or ``inactive`` when Prometheus lists no such alert."""
        alerts = (await self.api(session, "alerts"))["alerts"]
        states = {alert["state"] for alert in alerts if alert["labels"]["alertname"] == name}
        return "firing" if "firing" in states else states.pop() if states else "inactive"

    async def targets_up(self, session: aiohttp.ClientSession) -> set[str]:
        targets = (await self.api(session, "targets"))["activeTargets"]
        return {target["labels"]["job"] for target in targets if target["health"] == "up"}


@asynccontextmanager
async def private_prometheus(services: Services, state_dir: Path) -> AsyncIterator[PrivatePrometheus]:
    prometheus = PrivatePrometheus(services, state_dir)
    await asyncio.to_thread(prometheus.localstack, "up")
    try:
        yield prometheus
    finally:
        await asyncio.to_thread(prometheus.localstack, "down")


# --- metric names --------------------------------------------------------------------------------


def exposed_names(exposition: str) -> set[str]:
    """Sample names of a /metrics answer (``name{labels} value`` or ``name value`` lines)."""
    return {re.split(r"[{\s]", line, maxsplit=1)[0] for line in exposition.splitlines() if line and line[0] != "#"}


def queried_names(expression: str) -> set[str]:
    """The metric names a PromQL expression reads (label values and strings aside)."""
    without_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expression)
    tokens = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_strings))
    return {t for t in tokens if t.startswith(METRIC_PREFIXES) or t == "up" or ":" in t}


def rule_expressions() -> dict[str, str]:
    """Rule name (alert or record) -> its expression, from the committed rule files."""
    from ruamel.yaml import YAML  # noqa: PLC0415 - only the tests that compare names need it

    found: dict[str, str] = {}
    for path in sorted(RULES.glob("*.yml")):
        for group in YAML(typ="safe", pure=True).load(path)["groups"]:
            for rule in group["rules"]:
                found[rule.get("alert") or rule["record"]] = rule["expr"]
    return found


def dashboard_expressions() -> dict[str, str]:
    """``panel title / refId`` -> expression of every query of the Grafana dashboard."""
    dashboard = json.loads(DASHBOARD.read_text())
    return {
        f"{panel['title']} / {target['refId']}": target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    }
