"""deploy/k8s: schema-valid for pinned Kubernetes versions (kubernetes-validate ships the published
JSON schemas, so this runs offline), and wired as the README describes: a Deployment per service with
liveness on /healthz and readiness on /readyz, resource requests, autoscalers for the API and the
indexer, and a Prometheus scrape configuration (prometheus.yaml) that finds every service's pods by
their annotations: `promtool check config` passes it (with the pod discovery swapped for a static
target: Debian's promtool is built without Kubernetes discovery), and its relabelling, applied here
to each Deployment's pod template, yields the service's port, path and job name."""

from __future__ import annotations

import copy
import importlib
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.service_settings import settings_variables

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy/k8s"
# The oldest Kubernetes we claim (still widely run) and the newest the validator ships.
PINNED_VERSION = "1.30.0"
SERVICES = {
    "api": "services.api",
    "fetcher": "services.fetcher",
    "indexer": "services.indexer",
    "notifier": "services.notifier",
}
AUTOSCALED = {"api", "indexer"}
# What a service cannot run without on a cluster: where the stores are, and its own secrets.
REQUIRED_ENV = {
    "api": {"MONGODB_URL", "ELASTICSEARCH_URL", "AMQP_URL", "CURSOR_SECRET", "API_HOST", "API_PORT"},
    "fetcher": {"MONGODB_URL", "AMQP_URL", "YOUTUBE_API_KEYS", "FETCHER_HOST", "FETCHER_PORT"},
    "indexer": {"MONGODB_URL", "ELASTICSEARCH_URL", "AMQP_URL", "INDEXER_HOST", "INDEXER_PORT"},
    "notifier": {"MONGODB_URL", "ELASTICSEARCH_URL", "AMQP_URL", "NOTIFIER_HOST", "NOTIFIER_PORT"},
}
SECRET_ENV = {"AMQP_URL", "MONGODB_URL", "ELASTICSEARCH_URL", "YOUTUBE_API_KEYS", "CURSOR_SECRET"}
# The ConfigMap that holds Prometheus's configuration, not settings of the services.
PROMETHEUS_CONFIG_MAP = "tubewatch-prometheus"

kubernetes_validate: Any = importlib.import_module("kubernetes_validate")


def load_documents() -> list[tuple[str, dict[str, Any]]]:
    yaml = YAML(typ="safe", pure=True)
    documents = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        documents += [(path.name, doc) for doc in yaml.load_all(path) if doc]
    return documents


@pytest.fixture(scope="module")
def documents() -> list[tuple[str, dict[str, Any]]]:
    return load_documents()


@pytest.fixture(scope="module")
def deployments(documents: list[tuple[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in documents if doc["kind"] == "Deployment"}


def config_map_keys(documents: list[tuple[str, dict[str, Any]]]) -> dict[str, set[str]]:
    """Keys of the ConfigMaps that hold settings (every one but Prometheus's configuration)."""
    return {
        doc["metadata"]["name"]: set(doc.get("data", {}))
        for _, doc in documents
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] != PROMETHEUS_CONFIG_MAP
    }


def container_env(container: dict[str, Any], config_maps: dict[str, set[str]]) -> dict[str, dict[str, Any]]:
    env = {item["name"]: item for item in container.get("env", [])}
    for source in container.get("envFrom", []):
        for key in config_maps.get(source.get("configMapRef", {}).get("name", ""), set()):
            env.setdefault(key, {"name": key, "configMap": True})
    return env


def shutdown_seconds(module: str) -> float:
    """The longest a service gives the work in hand at shutdown, as its code and settings say."""
    patterns = (
        re.compile(r"STOP_GRACE_SECONDS\s*=\s*(\d+(?:\.\d+)?)"),
        re.compile(r"wait_for\(\s*asyncio\.shield\([^)]*\),\s*timeout=(\d+(?:\.\d+)?)\s*\)"),
    )
    texts = [path.read_text() for path in (ROOT / module.replace(".", "/")).glob("*.py")]
    found = [float(t) for text in texts for pattern in patterns for t in pattern.findall(text)]
    settings_cls = importlib.import_module(f"{module}.settings").Settings
    found += [float(f.default) for name, f in settings_cls.model_fields.items() if "shutdown_timeout" in name]
    return max(found, default=0.0)


def check_deployment(name: str, deployment: dict[str, Any], config_maps: dict[str, set[str]]) -> list[str]:
    problems: list[str] = []
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    prefix = name.upper()
    env = container_env(container, config_maps)
    port = int(env.get(f"{prefix}_PORT", {}).get("value", 0))
    named_ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    if container.get("command") != ["python", "-m", SERVICES[name]]:
        problems.append(f"{name}: command must be python -m {SERVICES[name]}")
    if env.get(f"{prefix}_HOST", {}).get("value") != "0.0.0.0":
        problems.append(f"{name}: {prefix}_HOST must be 0.0.0.0, or the kubelet cannot probe it")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        http = container.get(probe, {}).get("httpGet", {})
        target = named_ports.get(http.get("port"), http.get("port"))
        if http.get("path") != path or target != port:
            problems.append(f"{name}: {probe} must GET {path} on {prefix}_PORT ({port})")
    requests = container.get("resources", {}).get("requests", {})
    if not {"cpu", "memory"} <= requests.keys():
        problems.append(f"{name}: resource requests for cpu and memory")
    if "memory" not in container.get("resources", {}).get("limits", {}):
        problems.append(f"{name}: a memory limit")
    missing = REQUIRED_ENV[name] - env.keys()
    if missing:
        problems.append(f"{name}: missing environment {sorted(missing)}")
    for key in SECRET_ENV & env.keys():
        if "secretKeyRef" not in env[key].get("valueFrom", {}):
            problems.append(f"{name}: {key} must come from a Secret")
    shared = {k for keys in config_maps.values() for k in keys}
    unknown = env.keys() - settings_variables(SERVICES[name]).keys() - shared
    if unknown:
        problems.append(f"{name}: sets variables its settings do not read: {sorted(unknown)}")
    if not pod.get("securityContext", {}).get("runAsNonRoot"):
        problems.append(f"{name}: runAsNonRoot")
    if pod.get("terminationGracePeriodSeconds", 30) < shutdown_seconds(SERVICES[name]) + 10:
        problems.append(f"{name}: terminationGracePeriodSeconds is not above its own shutdown time")
    return problems


def test_manifests_pass_the_kubernetes_schemas(documents: list[tuple[str, dict[str, Any]]]) -> None:
    assert PINNED_VERSION in kubernetes_validate.utils.all_versions(), "the pinned version's schemas ship offline"
    for version in (PINNED_VERSION, kubernetes_validate.latest_version()):
        for name, doc in documents:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{name} {doc['kind']}/{doc['metadata']['name']} (Kubernetes {version}): {exc.message}")


def test_validator_rejects_a_misspelled_field(deployments: dict[str, dict[str, Any]]) -> None:
    broken = copy.deepcopy(deployments["api"])
    container = broken["spec"]["template"]["spec"]["containers"][0]
    container["livenesProbe"] = container.pop("livenessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, PINNED_VERSION, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = YAML(typ="safe", pure=True).load(K8S / "kustomization.yaml")
    listed = set(kustomization["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present
    assert {image["name"] for image in kustomization["images"]} == {"tubewatch"}


def test_a_deployment_per_service_wired_to_its_probes(
    documents: list[tuple[str, dict[str, Any]]], deployments: dict[str, dict[str, Any]]
) -> None:
    assert set(deployments) == set(SERVICES)
    config_maps = config_map_keys(documents)
    for name, deployment in deployments.items():
        assert check_deployment(name, deployment, config_maps) == []
    images = {d["spec"]["template"]["spec"]["containers"][0]["image"] for d in deployments.values()}
    assert images == {"tubewatch"}, "one image for every service"
    all_settings = set().union(*(settings_variables(module).keys() for module in SERVICES.values()))
    for keys in config_maps.values():
        assert keys <= all_settings, f"ConfigMap keys no service reads: {sorted(keys - all_settings)}"
    assert not [doc for _, doc in documents if doc["kind"] == "Secret"], "no Secret with values is shipped"


def test_autoscalers_for_api_and_indexer_only(
    documents: list[tuple[str, dict[str, Any]]], deployments: dict[str, dict[str, Any]]
) -> None:
    autoscalers = {doc["metadata"]["name"]: doc for _, doc in documents if doc["kind"] == "HorizontalPodAutoscaler"}
    targets = {hpa["spec"]["scaleTargetRef"]["name"] for hpa in autoscalers.values()}
    assert targets == AUTOSCALED
    for hpa in autoscalers.values():
        ref = hpa["spec"]["scaleTargetRef"]
        assert (ref["apiVersion"], ref["kind"]) == ("apps/v1", "Deployment")
        target = deployments[ref["name"]]
        assert "replicas" not in target["spec"], f"{ref['name']}: the autoscaler owns replicas"
        assert hpa["spec"]["minReplicas"] >= 2 and hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
        for metric in hpa["spec"]["metrics"]:
            resource = metric["resource"]["name"]
            for container in target["spec"]["template"]["spec"]["containers"]:
                assert resource in container["resources"]["requests"], f"utilization of {resource} needs a request"


def test_fetcher_runs_alone(deployments: dict[str, dict[str, Any]]) -> None:
    """No leader lease yet: exactly one fetcher, never two during a rollout."""
    fetcher = deployments["fetcher"]["spec"]
    assert fetcher["replicas"] == 1
    assert fetcher["strategy"]["type"] == "Recreate"


def test_checks_catch_a_miswired_deployment(
    documents: list[tuple[str, dict[str, Any]]], deployments: dict[str, dict[str, Any]]
) -> None:
    broken = copy.deepcopy(deployments["indexer"])
    container = broken["spec"]["template"]["spec"]["containers"][0]
    container["livenessProbe"]["httpGet"]["path"] = "/readyz"
    container["readinessProbe"]["httpGet"]["port"] = 9999
    del container["resources"]["requests"]["cpu"]
    container["env"] = [e for e in container["env"] if e["name"] != "INDEXER_HOST"]
    container["env"].append({"name": "AMQP_URL", "value": "amqp://guest:guest@rabbitmq/"})
    container["env"].append({"name": "INDEX_BATCHSIZE", "value": "10"})
    problems = check_deployment("indexer", broken, config_map_keys(documents))
    for expected in (
        "livenessProbe",
        "readinessProbe",
        "cpu and memory",
        "INDEXER_HOST",
        "from a Secret",
        "INDEX_BATCHSIZE",
    ):
        assert any(expected in p for p in problems), (expected, problems)


# --- the Prometheus scrape configuration ------------------------------------------------------------


def prometheus_config(documents: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    (config_map,) = [doc for _, doc in documents if doc["metadata"]["name"] == PROMETHEUS_CONFIG_MAP]
    config: dict[str, Any] = YAML(typ="safe", pure=True).load(config_map["data"]["prometheus.yml"])
    return config


def pod_meta_labels(deployment: dict[str, Any], pod_ip: str = "10.1.2.3") -> dict[str, str]:
    """The labels Prometheus's pod discovery gives a target of a pod of ``deployment``.

    The address carries no port (discovery's target for a container without declared ports), so the
    port in the result can only come from the prometheus.io/port annotation.
    """
    template = deployment["spec"]["template"]
    labels = {"__address__": pod_ip, "__metrics_path__": "/metrics"}
    labels["__meta_kubernetes_pod_name"] = f"{deployment['metadata']['name']}-abc12"
    for kind in ("label", "annotation"):
        for key, value in template["metadata"].get(f"{kind}s", {}).items():
            labels[f"__meta_kubernetes_pod_{kind}_{re.sub(r'[^a-zA-Z0-9_]', '_', key)}"] = str(value)
    return labels


def relabel(labels: dict[str, str], rules: list[dict[str, Any]]) -> dict[str, str] | None:
    """Prometheus's keep and replace actions (anchored regexes, ``;`` separator); None: dropped."""
    labels = dict(labels)
    for rule in rules:
        value = ";".join(labels.get(name, "") for name in rule.get("source_labels", []))
        match = re.fullmatch(rule.get("regex", "(.*)"), value)
        action = rule.get("action", "replace")
        if action == "keep":
            if match is None:
                return None
        elif action == "replace":
            if match is not None:
                replacement = match.expand(re.sub(r"\$(\d+)", r"\\g<\1>", rule.get("replacement", "$1")))
                if replacement:
                    labels[rule["target_label"]] = replacement
        else:
            raise AssertionError(f"relabel action {action} is not simulated here")
    return labels


def test_prometheus_config_passes_promtool(documents: list[tuple[str, dict[str, Any]]], tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: install Debian's prometheus package (`make up` does)")
    config = prometheus_config(documents)
    for job in config["scrape_configs"]:
        assert job.pop("kubernetes_sd_configs"), job["job_name"]
        job["static_configs"] = [{"targets": ["10.1.2.3:8080"]}]
    path = tmp_path / "prometheus.yml"
    YAML(typ="safe", pure=True).dump(config, path)
    result = subprocess.run([promtool, "check", "config", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_scrapes_every_service_at_its_port_as_its_job(
    documents: list[tuple[str, dict[str, Any]]], deployments: dict[str, dict[str, Any]]
) -> None:
    (job,) = prometheus_config(documents)["scrape_configs"]
    namespace = YAML(typ="safe", pure=True).load(K8S / "kustomization.yaml")["namespace"]
    assert job["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": [namespace]}}]
    for name, deployment in deployments.items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        port = int(container_env(container, {})[f"{name.upper()}_PORT"]["value"])
        target = relabel(pod_meta_labels(deployment), job["relabel_configs"])
        assert target is not None, f"{name}: not scraped"
        assert (target["__address__"], target["__metrics_path__"], target["job"]) == (
            f"10.1.2.3:{port}",
            "/metrics",
            name,
        )
    unannotated = copy.deepcopy(deployments["api"])
    del unannotated["spec"]["template"]["metadata"]["annotations"]["prometheus.io/scrape"]
    assert relabel(pod_meta_labels(unannotated), job["relabel_configs"]) is None
    # The rules' job names are these Deployments.
    alerts = (ROOT / "deploy/prometheus/rules/alerts.yml").read_text()
    assert set(re.findall(r'up\{job="(\w+)"\}', alerts)) == set(deployments)
