"""docker-compose.yml and .env.example, checked without a Docker engine.

The compose-spec schema (check-jsonschema's vendored copy) checks the shape; the tests below check
what a schema cannot see: references, healthchecks and dependency conditions, profiles, what is
published where, shutdown grace, secrets, and that every variable reaches the service that reads it.
Each check is a function returning its problems, and a test feeds it a broken file to show it fails.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from ruamel.yaml import YAML

from tests.service_settings import SERVICE_PACKAGES, settings_variables

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"

# Compose service -> the Python package it runs (all from deploy/Dockerfile).
APP_SERVICES = SERVICE_PACKAGES
# Services that run once and exit; every other service is a server.
ONE_SHOT = {"kibana-setup"}
# The only services published on the host: the API, Kibana, RabbitMQ's management UI, Prometheus, Grafana.
PUBLISHED = {"api": {8080}, "kibana": {5601}, "rabbitmq": {15672}, "prometheus": {9090}, "grafana": {3000}}
# Published services whose bind address may be changed from .env: each has a login or is public
# by design. Every other published port is bound to loopback, fixed.
CONFIGURABLE_BIND = {"api", "rabbitmq", "grafana"}
LOOPBACK = {"127.0.0.1", "::1"}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|PRIVATE", re.IGNORECASE)
# Environment keys of the app services that are not settings: the healthcheck's target, and the
# emulator budget the fetcher's demo mode passes on (deploy/run.sh does the same).
EXTRA_APP_ENV = {"HEALTHCHECK_URL"}
EXTRA_SERVICE_ENV = {"fetcher": {"EMULATOR_SEARCH_CALLS_PER_DAY"}}
# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}, ${VAR?message}, ${VAR:+alt}; not $${...}.
INTERPOLATION = re.compile(r"(?<!\$)\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}")
ENV_LINE = re.compile(r"^(?P<comment>#\s*)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")


def load_yaml(path: Path) -> Any:
    return YAML(typ="safe", pure=True).load(path)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = load_yaml(COMPOSE_FILE)
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def env_example() -> dict[str, tuple[bool, str]]:
    """NAME -> (active, value) for every `NAME=value` or `# NAME=value` line of .env.example."""
    return parse_env_example(ENV_EXAMPLE.read_text())


def parse_env_example(text: str) -> dict[str, tuple[bool, str]]:
    entries: dict[str, tuple[bool, str]] = {}
    for line in text.splitlines():
        match = ENV_LINE.match(line.strip())
        if match:
            entries[match["name"]] = (match["comment"] is None, match["value"])
    return entries


def interpolated_names(text: str) -> set[str]:
    return {m["name"] for m in INTERPOLATION.finditer(text)}


def interpolate(value: str, env: dict[str, str]) -> str:
    """Resolve compose interpolation the way compose does (without nesting, which we do not use)."""

    def resolve(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"] or ""
        current = env.get(name)
        if op in (":-", ":?", ":+"):
            is_set = bool(current)
        else:
            is_set = current is not None
        if op in (":-", "-"):
            return current if is_set and current is not None else arg
        if op in (":?", "?"):
            if not is_set or current is None:
                raise ValueError(f"required variable {name} is missing: {arg}")
            return current
        if op in (":+", "+"):
            return arg if is_set else ""
        return current or ""

    return INTERPOLATION.sub(resolve, value)


def service_environment(service: dict[str, Any]) -> dict[str, Any]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    assert isinstance(env, dict)
    return env


def depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):  # short syntax: no condition at all
        return {name: {} for name in deps}
    assert isinstance(deps, dict)
    return deps


def parse_duration(value: str) -> float:
    """Compose durations: 45s, 1m30s, 1h, 500ms."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", str(value))
    if not parts or "".join(n + u for n, u in parts) != str(value):
        raise ValueError(f"not a compose duration: {value!r}")
    return sum(float(number) * units[unit] for number, unit in parts)


def shutdown_seconds(module: str) -> float:
    """The longest a service gives the work in hand at shutdown, as its code and settings say."""
    patterns = (
        re.compile(r"STOP_GRACE_SECONDS\s*=\s*(\d+(?:\.\d+)?)"),
        re.compile(r"wait_for\(\s*asyncio\.shield\([^)]*\),\s*timeout=(\d+(?:\.\d+)?)\s*\)"),
    )
    texts = [path.read_text() for path in (ROOT / module.replace(".", "/")).glob("*.py")]
    found = [float(t) for text in texts for pattern in patterns for t in pattern.findall(text)]
    defaults = settings_variables(module)
    found += [float(value) for name, value in defaults.items() if "SHUTDOWN_TIMEOUT" in name]
    return max(found, default=0.0)


# --- checks: each returns a list of problems ---------------------------------------------------------


def check_references(compose: dict[str, Any], root: Path = ROOT) -> list[str]:
    problems: list[str] = []
    services = compose.get("services", {})
    volumes = compose.get("volumes") or {}
    used_volumes: set[str] = set()
    for name, service in services.items():
        for dep in depends_on(service):
            if dep not in services:
                problems.append(f"{name}: depends_on {dep!r}, which is not a service")
        for mount in service.get("volumes", []):
            source = mount.split(":", 1)[0] if isinstance(mount, str) else mount.get("source", "")
            if source.startswith((".", "/")):
                if not (root / source).resolve().exists():
                    problems.append(f"{name}: bind mount {source!r} does not exist")
            elif source:
                used_volumes.add(source)
                if source not in volumes:
                    problems.append(f"{name}: volume {source!r} is not defined under volumes:")
    problems += [f"volume {unused!r} is defined but never mounted" for unused in set(volumes) - used_volumes]
    return problems


def check_healthchecks(compose: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for name, service in compose.get("services", {}).items():
        if name in ONE_SHOT:
            if service.get("restart", "no") != "no":
                problems.append(f"{name}: a one-shot must not restart")
            continue
        check = service.get("healthcheck") or {}
        if check.get("disable") or not check.get("test") or check["test"][0] == "NONE":
            problems.append(f"{name}: a server without a healthcheck")
    return problems


def check_dependencies(compose: dict[str, Any]) -> list[str]:
    """service_healthy everywhere; optional only towards a profiled service; every store it talks to."""
    problems: list[str] = []
    services = compose.get("services", {})
    for name, service in services.items():
        deps = depends_on(service)
        for dep, spec in deps.items():
            wanted = "service_completed_successfully" if dep in ONE_SHOT else "service_healthy"
            if spec.get("condition") != wanted:
                problems.append(f"{name}: depends_on {dep} needs condition: {wanted}")
            target_profiles = set(services.get(dep, {}).get("profiles", []))
            optional_target = target_profiles and not target_profiles <= set(service.get("profiles", []))
            if optional_target and spec.get("required", True):
                problems.append(f"{name}: depends_on {dep} (profiles {sorted(target_profiles)}) needs required: false")
        # Every other service named as a host in this service's environment is a dependency.
        for value in service_environment(service).values():
            for host in re.findall(r"//(?:[^@/\s]*@)?([A-Za-z0-9_.-]+)(?::\d+)?", str(value or "")):
                if host in services and host != name and host not in deps:
                    problems.append(f"{name}: talks to {host} but does not depend_on it")
    return problems


def check_ports(compose: dict[str, Any], published: dict[str, set[int]] = PUBLISHED) -> list[str]:
    problems: list[str] = []
    for name, service in compose.get("services", {}).items():
        ports = service.get("ports", [])
        if ports and name not in published:
            problems.append(f"{name}: publishes ports, but only {sorted(published)} may")
        if service.get("network_mode") == "host":
            problems.append(f"{name}: network_mode host publishes every port on every interface")
        for port in ports:
            if not isinstance(port, dict):
                problems.append(f"{name}: {port!r}: use the long syntax with an explicit host_ip")
                continue
            if port.get("target") not in published.get(name, set()):
                problems.append(f"{name}: publishes container port {port.get('target')}")
            host_ip = str(port.get("host_ip", ""))
            resolved = interpolate(host_ip, {})
            if resolved not in LOOPBACK:
                problems.append(f"{name}: port {port.get('target')} binds {resolved or 'all interfaces'} by default")
            if host_ip != resolved and name not in CONFIGURABLE_BIND:
                problems.append(f"{name}: its bind address must stay fixed to loopback (no login)")
    return problems


def check_stop_grace(compose: dict[str, Any], drain_seconds: dict[str, float]) -> list[str]:
    problems: list[str] = []
    for name, service in compose.get("services", {}).items():
        if name in ONE_SHOT:
            continue
        grace = service.get("stop_grace_period")
        if grace is None:
            problems.append(f"{name}: no stop_grace_period (the default 10 s kills it mid-shutdown)")
        elif parse_duration(grace) < drain_seconds.get(name, 0.0) + 10:
            problems.append(f"{name}: stop_grace_period {grace} is not above its {drain_seconds[name]:g} s shutdown")
    return problems


def check_secrets(compose_text: str) -> list[str]:
    return [
        f"${{{m['name']}}} must be required as ${{{m['name']}:?message}}, never defaulted"
        for m in INTERPOLATION.finditer(compose_text)
        if SECRET_NAME.search(m["name"]) and m["op"] != ":?"
    ]


# --- the real files ----------------------------------------------------------------------------------


def test_compose_file_passes_the_compose_spec_schema(tmp_path: Path) -> None:
    checker = Path(sys.executable).with_name("check-jsonschema")
    command = [str(checker), "--builtin-schema", "vendor.compose-spec"]
    result = subprocess.run([*command, str(COMPOSE_FILE)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    # The same call rejects a file the spec does not allow, so a pass above means something.
    broken = tmp_path / "compose.yml"
    broken.write_text("services:\n  api:\n    image: x\n    helthcheck: {}\n")
    assert subprocess.run([*command, str(broken)], capture_output=True, check=False).returncode != 0


def test_references_resolve(compose: dict[str, Any]) -> None:
    assert check_references(compose) == []


def test_every_server_has_a_healthcheck(compose: dict[str, Any]) -> None:
    assert check_healthchecks(compose) == []


def test_dependencies_wait_for_healthy(compose: dict[str, Any]) -> None:
    assert check_dependencies(compose) == []
    assert set(depends_on(compose["services"]["kibana-setup"])) == {"kibana"}
    assert set(depends_on(compose["services"]["kibana"])) == {"elasticsearch"}


def test_only_api_kibana_rabbitmq_management_prometheus_and_grafana_are_published_on_loopback(
    compose: dict[str, Any],
) -> None:
    assert check_ports(compose) == []
    assert {name for name, s in compose["services"].items() if s.get("ports")} == set(PUBLISHED)


def test_stop_grace_period_is_above_the_services_shutdown(compose: dict[str, Any]) -> None:
    drains = {name: shutdown_seconds(module) for name, module in APP_SERVICES.items()}
    assert drains["fetcher"] > 0 and drains["indexer"] > 0, "the services' shutdown times were not found"
    assert check_stop_grace(compose, drains) == []


def test_secrets_are_required_and_never_defaulted(
    compose: dict[str, Any], env_example: dict[str, tuple[bool, str]]
) -> None:
    text = COMPOSE_FILE.read_text()
    assert check_secrets(text) == []
    assert "RABBITMQ_PASSWORD" in interpolated_names(text)
    for name, (_, value) in env_example.items():
        if SECRET_NAME.search(name):
            assert value == "", f".env.example ships a value for {name}"


def test_demo_profile_runs_the_emulator_only_when_asked(compose: dict[str, Any]) -> None:
    services = compose["services"]
    profiled = {name: s["profiles"] for name, s in services.items() if s.get("profiles")}
    assert profiled == {"youtube-emulator": ["demo"]}
    port = service_environment(services["youtube-emulator"])["EMULATOR_PORT"]
    script = " ".join(services["fetcher"]["command"])
    assert f"http://youtube-emulator:{port}/youtube/v3" in script
    assert '-z "$${YOUTUBE_API_KEYS:-}"' in script, "demo mode must key on YOUTUBE_API_KEYS being unset"


def test_app_services_run_one_image_chosen_by_command(compose: dict[str, Any]) -> None:
    services = compose["services"]
    builds = {name: (str(services[name].get("build")), services[name].get("image")) for name in APP_SERVICES}
    assert len(set(builds.values())) == 1, builds
    assert services["api"]["build"]["dockerfile"] == "deploy/Dockerfile"
    for name, module in APP_SERVICES.items():
        command = services[name]["command"]
        last_line = command[-1].strip().splitlines()[-1] if command[0] == "/bin/sh" else " ".join(command)
        assert last_line.removeprefix("exec ") == f"python -m {module}", name
        assert (ROOT / module.replace(".", "/") / "__main__.py").exists(), module


def test_each_service_listens_on_all_interfaces_and_checks_its_own_port(compose: dict[str, Any]) -> None:
    for name, module in APP_SERVICES.items():
        env = service_environment(compose["services"][name])
        prefix = {"services.youtube_emulator": "EMULATOR"}.get(module, module.rsplit(".", 1)[1].upper())
        assert env[f"{prefix}_HOST"] == "0.0.0.0", name
        url = urlsplit(env["HEALTHCHECK_URL"])
        assert (url.hostname, url.port, url.path) == ("127.0.0.1", int(env[f"{prefix}_PORT"]), "/healthz"), name
        for port in compose["services"][name].get("ports", []):
            assert port["target"] == int(env[f"{prefix}_PORT"]), name


def test_every_setting_reaches_its_service(compose: dict[str, Any]) -> None:
    """Each app service gets every variable its Settings reads, and nothing its Settings would ignore."""
    for name, module in APP_SERVICES.items():
        env = set(service_environment(compose["services"][name]))
        wanted = set(settings_variables(module))
        assert wanted - env == set(), f"{name} does not receive {sorted(wanted - env)}"
        unknown = env - wanted - EXTRA_APP_ENV - EXTRA_SERVICE_ENV.get(name, set())
        assert unknown == set(), f"{name} sets variables its settings do not read: {sorted(unknown)}"


def test_indexer_can_scale(compose: dict[str, Any]) -> None:
    indexer = compose["services"]["indexer"]
    for key in ("container_name", "hostname", "ports"):
        assert key not in indexer, f"indexer: {key} stops `docker compose up --scale indexer=3`"


def test_servers_are_pinned_and_keep_data_in_named_volumes(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("rabbitmq", "mongodb", "elasticsearch", "kibana"):
        assert re.search(r":\d+\.\d+\.\d+(-[a-z]+)?$", services[name]["image"]), f"{name}: pin an exact version"
    assert re.fullmatch(r"rabbitmq:3\.[\d.]+-management", services["rabbitmq"]["image"])
    assert services["mongodb"]["image"].startswith("mongo:7.")
    assert services["elasticsearch"]["image"].endswith(":8.12.2")
    assert services["kibana"]["image"].endswith(":8.12.2")
    assert services["kibana-setup"]["image"] == services["kibana"]["image"]
    # The Prometheus of the local stack is Debian's 2.42: the same version runs the same rules here.
    assert services["prometheus"]["image"] == "prom/prometheus:v2.42.0"
    assert re.fullmatch(r"grafana/grafana:\d+\.\d+\.\d+", services["grafana"]["image"])
    data_dirs = {
        "rabbitmq": "/var/lib/rabbitmq",
        "mongodb": "/data/db",
        "elasticsearch": "/usr/share/elasticsearch/data",
        "prometheus": "/prometheus",
        "grafana": "/var/lib/grafana",
    }
    for name, path in data_dirs.items():
        mounts = [m.split(":") for m in services[name]["volumes"]]
        assert any(target == path and source in compose["volumes"] for source, target, *_ in mounts), name


def test_elasticsearch_is_single_node_with_a_fixed_heap(compose: dict[str, Any]) -> None:
    env = service_environment(compose["services"]["elasticsearch"])
    assert env["discovery.type"] == "single-node"
    opts = interpolate(env["ES_JAVA_OPTS"], {}).split()
    heap = {opt[:4]: opt[4:] for opt in opts if opt.startswith(("-Xms", "-Xmx"))}
    assert heap.keys() == {"-Xms", "-Xmx"} and heap["-Xms"] == heap["-Xmx"], opts


def test_mongodb_is_a_replica_set_initiated_idempotently(compose: dict[str, Any]) -> None:
    mongodb = compose["services"]["mongodb"]
    command = mongodb["command"]
    assert command[command.index("--replSet") + 1] == "rs0"
    script = ROOT / "deploy/compose/mongo-replica-set.js"
    assert str(script.relative_to(ROOT)) in " ".join(mongodb["volumes"])
    text = script.read_text()
    assert "NotYetInitialized" in text and "rs.initiate" in text and "isWritablePrimary" in text
    for name in APP_SERVICES:
        url = service_environment(compose["services"][name]).get("MONGODB_URL")
        assert url is None or "replicaSet=rs0" in url, name


# --- .env.example ------------------------------------------------------------------------------------


def test_env_example_lists_every_variable(compose: dict[str, Any], env_example: dict[str, tuple[bool, str]]) -> None:
    used_by_compose = interpolated_names(COMPOSE_FILE.read_text())
    settings = {var for module in APP_SERVICES.values() for var in settings_variables(module)}
    missing = (used_by_compose | settings) - set(env_example)
    assert missing == set(), f".env.example does not mention {sorted(missing)}"


def test_env_example_sets_only_what_compose_reads(
    compose: dict[str, Any], env_example: dict[str, tuple[bool, str]]
) -> None:
    passed_through = {
        key for service in compose["services"].values() for key, v in service_environment(service).items() if v is None
    }
    read = interpolated_names(COMPOSE_FILE.read_text()) | passed_through | {"COMPOSE_PROFILES"}
    active = {name for name, (is_active, _) in env_example.items() if is_active}
    assert active - read == set(), f"set in .env.example but read by nothing: {sorted(active - read)}"
    assert env_example["COMPOSE_PROFILES"] == (True, "demo")


def test_env_example_documents_the_real_defaults(env_example: dict[str, tuple[bool, str]]) -> None:
    defaults: dict[str, Any] = {}
    for module in APP_SERVICES.values():
        defaults.update(settings_variables(module))
    fixed_by_compose = {"LOG_FORMAT", "AMQP_URL", "MONGODB_URL", "ELASTICSEARCH_URL"}
    for name, (active, value) in env_example.items():
        default = defaults.get(name)
        if active or name in fixed_by_compose or name.endswith(("_HOST", "_PORT")) or value == "":
            continue
        if isinstance(default, bool | int | float | str):
            assert type(default)(value) == default, f".env.example says {name}={value}, the default is {default}"
        elif isinstance(default, list):
            assert value.split(",") == default, f".env.example says {name}={value}, the default is {default}"
