"""docker-compose.yml's Prometheus and Grafana, checked without a Docker engine.

Beside the checks every service gets (tests/unit/test_deploy_compose.py: schema, healthchecks,
loopback-only ports, shutdown grace, required secrets): Prometheus runs the repository's
configuration and scrapes each app service at the port it listens on, and Grafana is provisioned
with that Prometheus and the dashboard from the repository.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.unit.test_deploy_compose import (
    APP_SERVICES,
    ROOT,
    compose,
    depends_on,
    load_yaml,
    service_environment,
)

__all__ = ["compose"]  # the fixture, shared with test_deploy_compose


def bind_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> repository path of a service's read-only bind mounts."""
    mounts = [m.split(":") for m in service.get("volumes", []) if m.startswith("./")]
    return {target: source.removeprefix("./") for source, target, *options in mounts if options == ["ro"]}


def test_prometheus_runs_the_repository_configuration_and_rules(compose: dict[str, Any]) -> None:
    prometheus = compose["services"]["prometheus"]
    assert bind_mounts(prometheus) == {"/etc/prometheus": "deploy/prometheus"}
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    config = load_yaml(ROOT / "deploy/prometheus/prometheus.yml")
    assert config["rule_files"] == ["rules/*.yml"], "rule files relative to the mounted folder"
    # Every app service is scraped at the port it listens on, by its compose name.
    targets = {}
    for job in config["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            targets[sd["names"][0]] = sd["port"]
    for name in APP_SERVICES:
        env = service_environment(compose["services"][name])
        port = next(int(v) for k, v in env.items() if k.endswith("_PORT"))
        assert targets.get(name) == port, name


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    mounts = bind_mounts(grafana)
    assert mounts["/etc/grafana/provisioning"] == "deploy/grafana/provisioning"
    provider = load_yaml(ROOT / "deploy/grafana/provisioning/dashboards/tubewatch.yml")["providers"][0]
    assert mounts[provider["options"]["path"]] == "deploy/grafana/dashboards"
    env = service_environment(grafana)
    home = Path(env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert (
        mounts[str(home.parent)] == "deploy/grafana/dashboards"
        and (ROOT / mounts[str(home.parent)] / home.name).exists()
    )
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert set(depends_on(grafana)) == {"prometheus"}
