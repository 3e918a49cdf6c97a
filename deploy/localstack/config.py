"""What the stack is configured to be: the servers' endpoints and the state, log and cache folders.

Also holds ``StackError``, the one-line failure every part of the local stack raises, the
settings only the local stack reads (Prometheus's port, intervals and rules folder), and the fixed
ports and names of cluster mode (``up --cluster 3``), which runs beside the single-node stack.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.settings import (
    PROJECT_ROOT,
    FetcherPortSettings,
    IndexerPortSettings,
    NotifierPortSettings,
    StackSettings,
    load_settings,
)

LOOPBACK = "127.0.0.1"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CLONE_DATA_ROOT = Path("/var/lib/tubewatch")


# Cluster mode: node ``n`` (1-based) of each cluster listens on its base port + n - 1, all on 127.0.0.1.
# Outside the single-node defaults (5672, 27017, 9200) and the ranges its Elasticsearch takes its
# transport port from (9300-9499), and below the ephemeral ports (32768+) the tests' servers get.
CLUSTER_SIZES = (3,)
CLUSTER_ES_HTTP_PORT = 9211
CLUSTER_ES_TRANSPORT_PORT = 9611
CLUSTER_MONGO_PORT = 27031
CLUSTER_AMQP_PORT = 5681
# RabbitMQ's inter-node (Erlang distribution) port, as RabbitMQ derives it: AMQP port + 20000.
CLUSTER_DIST_PORT_OFFSET = 20000
CLUSTER_ES_NAME = "tubewatch-cluster"
CLUSTER_REPLICA_SET = "rs-cluster"
CLUSTER_NODE_PREFIX = "tw-cluster-"


# A Prometheus duration as the config file takes it: 15s, 1m, 500ms.
PROMETHEUS_DURATION = r"^[1-9][0-9]*(ms|s|m|h)$"


class PrometheusSettings(BaseSettings):
    """What only the local stack's Prometheus reads (PROMETHEUS_PORT, ..._INTERVAL, PROMETHEUS_RULES_DIR)."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    prometheus_port: int = Field(default=9090, ge=1, le=65535)
    prometheus_scrape_interval: str = Field(default="15s", pattern=PROMETHEUS_DURATION)
    prometheus_evaluation_interval: str = Field(default="15s", pattern=PROMETHEUS_DURATION)
    # Tests point this at a copy of the rules with shorter ``for:``; the default is the committed rules.
    prometheus_rules_dir: Path = PROJECT_ROOT / "deploy" / "prometheus" / "rules"


class StackError(Exception):
    """A failure reported to the user as one line (``localstack: error: ...``)."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def local(self) -> bool:
        return self.host in LOCAL_HOSTS


@dataclass(frozen=True)
class Config:
    state_dir: Path
    cache_dir: Path
    amqp: Endpoint
    amqp_user: str
    amqp_password: str
    mongo: Endpoint
    replica_set: str
    es: Endpoint
    es_scheme: str
    prometheus: Endpoint
    # Prometheus job -> the port its service listens on (from API_PORT, FETCHER_PORT, ...).
    scrape_ports: dict[str, int]
    scrape_interval: str
    evaluation_interval: str
    rules_dir: Path

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def clone_dir(self) -> Path:
        return clone_data_dir(self.state_dir)


def clone_data_dir(state_dir: Path) -> Path:
    """Per-clone folder that the unprivileged server users can reach (not under a 0700 home)."""
    digest = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:12]
    return CLONE_DATA_ROOT / digest


def cache_dir() -> Path:
    override = os.environ.get("TUBEWATCH_CACHE_DIR")
    return Path(override).expanduser().resolve() if override else Path.home() / ".cache" / "tubewatch"


def _endpoint(url: str, default_port: int, variable: str) -> Endpoint:
    netloc = urlsplit(url).netloc.rsplit("@", 1)[-1].split(",")[0]
    probe = urlsplit(f"//{netloc}")
    try:
        port = probe.port or default_port
    except ValueError as exc:
        raise StackError(f"{variable} has an invalid port: {url}") from exc
    host = probe.hostname or LOOPBACK
    return Endpoint(host, port)


def load_config() -> Config:
    settings = load_settings(StackSettings)
    amqp = urlsplit(settings.amqp_url)
    query = parse_qs(urlsplit(settings.mongodb_url).query)
    prometheus = load_settings(PrometheusSettings)
    return Config(
        state_dir=settings.state_dir.expanduser().resolve(),
        cache_dir=cache_dir(),
        amqp=_endpoint(settings.amqp_url, 5671 if amqp.scheme == "amqps" else 5672, "AMQP_URL"),
        amqp_user=unquote(amqp.username or "guest"),
        amqp_password=unquote(amqp.password or "guest"),
        mongo=_endpoint(settings.mongodb_url, 27017, "MONGODB_URL"),
        replica_set=query.get("replicaSet", ["rs0"])[0],
        es=_endpoint(settings.elasticsearch_url, 9200, "ELASTICSEARCH_URL"),
        es_scheme=urlsplit(settings.elasticsearch_url).scheme,
        prometheus=Endpoint(LOOPBACK, prometheus.prometheus_port),
        scrape_ports={
            "api": settings.api_port,
            "fetcher": load_settings(FetcherPortSettings).fetcher_port,
            "indexer": load_settings(IndexerPortSettings).indexer_port,
            "notifier": load_settings(NotifierPortSettings).notifier_port,
            "emulator": settings.emulator_port,
        },
        scrape_interval=prometheus.prometheus_scrape_interval,
        evaluation_interval=prometheus.prometheus_evaluation_interval,
        rules_dir=prometheus.prometheus_rules_dir.expanduser().resolve(),
    )
