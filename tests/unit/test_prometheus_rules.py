"""deploy/prometheus: the configuration and rules pass promtool, and every alert is unit-tested.

`promtool` (Debian's prometheus package, which `make up` installs) checks the Compose configuration,
the local stack's generated one and the rule files, and runs the alerts' unit tests
(deploy/prometheus/tests/). The tests here also hold each alert to what the README promises: a
firing and a quiet case, a severity, a summary and a runbook entry, and a production-sized `for:`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from deploy.localstack.config import load_config
from deploy.localstack.prometheus_config import SERVICE_JOBS, render

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy/prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
TEST_FILES = sorted((PROMETHEUS / "tests").glob("*.yml"))
README = (ROOT / "README.md").read_text()
SEVERITIES = {"critical", "warning"}
DURATION = re.compile(r"^(\d+)(s|m|h)$")


def load_yaml(path: Path) -> Any:
    return YAML(typ="safe", pure=True).load(path)


def promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is missing: install Debian's prometheus package (`make up` does)")
    return subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def alerts() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in RULE_FILES:
        for group in load_yaml(path)["groups"]:
            found |= {rule["alert"]: rule for rule in group["rules"] if "alert" in rule}
    return found


def seconds(duration: str) -> int:
    match = DURATION.match(duration)
    assert match, f"not a simple duration: {duration}"
    return int(match[1]) * {"s": 1, "m": 60, "h": 3600}[match[2]]


def test_the_compose_configuration_and_its_rules_pass_promtool_check_config() -> None:
    result = promtool("check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(RULE_FILES)} rule files found" in result.stdout


def test_the_rule_files_pass_promtool_check_rules() -> None:
    result = promtool("check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_passes_its_promtool_unit_tests() -> None:
    assert TEST_FILES
    result = promtool("test", "rules", *map(str, TEST_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules_fails_when_an_alert_misbehaves(tmp_path: Path) -> None:
    """The unit tests mean something: the same tests against a rule that never fires fail."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    for path in RULE_FILES:
        text = path.read_text()
        if path.name == "alerts.yml":
            dead_letters = "expr: max by (queue) (tubewatch_indexer_queue_depth{queue=~"
            text = text.replace(dead_letters, dead_letters.replace("expr: ", "expr: 0 * "))
        (tmp_path / "rules" / path.name).write_text(text)
    for path in TEST_FILES:
        (tmp_path / "tests" / path.name).write_text(path.read_text())
    result = promtool("test", "rules", *(str(tmp_path / "tests" / p.name) for p in TEST_FILES))
    assert result.returncode != 0
    assert "TubewatchDeadLetters" in result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    cases: dict[str, set[bool]] = {}
    for path in TEST_FILES:
        document = load_yaml(path)
        assert {Path(f).name for f in document["rule_files"]} == {p.name for p in RULE_FILES}
        for test in document["tests"]:
            for case in test.get("alert_rule_test", []):
                cases.setdefault(case["alertname"], set()).add(bool(case.get("exp_alerts")))
    assert set(cases) == set(alerts()), "an alert without unit tests, or a test of no alert"
    assert {name: kinds for name, kinds in cases.items() if kinds != {True, False}} == {}


def test_every_alert_has_a_severity_a_summary_and_a_runbook_entry_in_the_readme() -> None:
    runbook = README.split("### Alerts and what to do", 1)
    assert len(runbook) == 2, "README has no 'Alerts and what to do' section"
    rows = {
        line.split("|")[1].strip().strip("`")
        for line in runbook[1].split("\n## ", 1)[0].splitlines()
        if line.startswith("| `")
    }
    for name, rule in alerts().items():
        assert name.startswith("Tubewatch"), name
        assert rule["labels"]["severity"] in SEVERITIES, name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
        assert rule["annotations"]["runbook"] == f"README.md#alerts-and-what-to-do: {name}", name
        assert name in rows, f"{name} has no row in the README's runbook"
    assert rows == set(alerts()), f"README rows of no alert: {sorted(rows - set(alerts()))}"


def test_committed_alerts_wait_long_enough_for_production() -> None:
    """Short `for:` values are for tests' own copies of the rules, never the committed ones."""
    for name, rule in alerts().items():
        assert seconds(rule["for"]) >= 60, f"{name}: for {rule['for']} would page on a blip"
    assert seconds(alerts()["TubewatchFreshnessP99High"]["for"]) >= 15 * 60


def test_the_local_stack_generates_the_compose_jobs_on_loopback(tmp_path: Path) -> None:
    compose_jobs = {job["job_name"] for job in load_yaml(PROMETHEUS / "prometheus.yml")["scrape_configs"]}
    assert compose_jobs == {"prometheus", *SERVICE_JOBS}
    config = replace(
        load_config(),
        scrape_ports={"api": 18080, "fetcher": 18081, "indexer": 18082, "notifier": 18083, "emulator": 18090},
        scrape_interval="5s",
    )
    local = tmp_path / "prometheus.yml"
    local.write_text(render(config))
    document = load_yaml(local)
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in document["scrape_configs"]}
    assert targets == {
        "prometheus": [str(config.prometheus)],
        "api": ["127.0.0.1:18080"],
        "fetcher": ["127.0.0.1:18081"],
        "indexer": ["127.0.0.1:18082"],
        "notifier": ["127.0.0.1:18083"],
        "emulator": ["127.0.0.1:18090"],
    }
    assert document["global"]["scrape_interval"] == "5s"
    assert document["rule_files"] == [str(PROMETHEUS / "rules" / "*.yml")]
    result = promtool("check", "config", str(local))
    assert result.returncode == 0, result.stdout + result.stderr
