"""The local stack's Prometheus, on its own free port and state dir, against the real binary.

The shared stack's Prometheus (default port 9090) is never touched; the data servers' settings
point at the shared servers, which this test only reads the status of.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy.localstack.processes import listener_pids, pid_alive, wait_until
from tests.conftest import free_port
from tests.integration.test_localstack import Stack, status_line
from tests.unit.test_prometheus_rules import alerts

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    state_dir = tmp_path / "state"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS_")},
        "STATE_DIR": str(state_dir),
        "PROMETHEUS_PORT": str(free_port()),
        "API_PORT": str(free_port()),
        "FETCHER_PORT": str(free_port()),
    }
    stack = Stack(state_dir, env)
    yield stack
    stack.run("down", "--only", "prometheus", check=False)


def api(stack: Stack, path: str) -> Any:
    url = f"http://127.0.0.1:{stack.env['PROMETHEUS_PORT']}{path}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())["data"]


def scrape_urls(stack: Stack) -> dict[str, str]:
    return {t["labels"]["job"]: t["scrapeUrl"] for t in api(stack, "/api/v1/targets")["activeTargets"]}


def test_prometheus_up_scrapes_the_configured_ports_loads_the_rules_and_down_stops_it(stack: Stack) -> None:
    port = int(stack.env["PROMETHEUS_PORT"])
    first = stack.run("up", "--only", "prometheus")
    assert "prometheus: started" in first.stdout
    record = stack.record("prometheus")
    pid = record["pid"]
    assert listener_pids(port) == [pid]
    for line in (
        Path("/proc/net/tcp").read_text().splitlines()[1:] + Path("/proc/net/tcp6").read_text().splitlines()[1:]
    ):
        local, state = line.split()[1], line.split()[3]
        if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
            assert local.rsplit(":", 1)[0] in ("0100007F", "0000000000000000FFFF00000100007F"), line
    assert Path(record["extra"]["data"]).is_relative_to(stack.state_dir)

    expected = {
        "prometheus": f"http://127.0.0.1:{port}/metrics",
        "api": f"http://127.0.0.1:{stack.env['API_PORT']}/metrics",
        "fetcher": f"http://127.0.0.1:{stack.env['FETCHER_PORT']}/metrics",
        "indexer": "http://127.0.0.1:8082/metrics",
        "notifier": "http://127.0.0.1:8083/metrics",
        "emulator": "http://127.0.0.1:8090/metrics",
    }
    # Targets appear once service discovery has run, a moment after readiness.
    assert wait_until(lambda: scrape_urls(stack) == expected, timeout=30), scrape_urls(stack)
    loaded = {rule["name"] for group in api(stack, "/api/v1/rules")["groups"] for rule in group["rules"]}
    assert set(alerts()) <= loaded

    # Its own scrape works: Prometheus is the one target that is up.
    def scraped_itself() -> bool:
        targets = api(stack, "/api/v1/targets")["activeTargets"]
        return any(t["labels"]["job"] == "prometheus" and t["health"] == "up" for t in targets)

    assert wait_until(scraped_itself, timeout=60)

    again = stack.run("up", "--only", "prometheus")
    assert "already running" in again.stdout and "reloaded" not in again.stdout
    assert stack.record("prometheus")["pid"] == pid

    # A new port in the settings: the running Prometheus gets the new configuration.
    stack.env["API_PORT"] = str(free_port())
    moved = stack.run("up", "--only", "prometheus")
    assert f"reloaded (SIGHUP to pid {pid})" in moved.stdout
    assert wait_until(lambda: scrape_urls(stack)["api"] == f"http://127.0.0.1:{stack.env['API_PORT']}/metrics", 30)

    line = status_line(stack, "prometheus")
    assert line.split()[1:3] == ["up", "localstack"]
    assert f"127.0.0.1:{port}" in line

    down = stack.run("down", "--only", "prometheus")
    assert f"prometheus: stopped (pid {pid})" in down.stdout
    assert not pid_alive(pid)
    assert listener_pids(port) == []
    assert not stack.has_record("prometheus")


def test_status_counts_prometheus_only_when_named(stack: Stack) -> None:
    """Prometheus down: a plain status still exits 0 (the data servers are up); --only prometheus exits 3."""
    plain = stack.run("status", check=False)
    assert any(line.split()[:2] == ["prometheus", "down"] for line in plain.stdout.splitlines()), plain.stdout
    assert plain.returncode == 0, plain.stdout
    named = stack.run("status", "--only", "prometheus", check=False)
    assert named.returncode == 3, named.stdout
