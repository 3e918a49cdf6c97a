"""Prometheus metrics of the API, in one registry per app (or shared files with several workers).

With API_WORKERS > 1 prometheus-client runs in multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set by
the launcher before any worker starts): each worker writes its samples to files there and /metrics
sums them, whichever worker answers the scrape.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


class ApiMetrics:
    def __init__(self) -> None:
        # Samples are recorded into ``recording``; /metrics reads ``exposition`` (the same registry,
        # or in multiprocess mode one that collects every worker's files).
        self.recording = CollectorRegistry()
        path = multiprocess_dir()
        if path is None:
            self.exposition = self.recording
        else:
            self.exposition = CollectorRegistry()
            MultiProcessCollector(self.exposition, path=path)
        self.requests = Counter(
            "tubewatch_api_requests_total",
            "HTTP requests answered, by route and status.",
            ["method", "route", "status"],
            registry=self.recording,
        )
        self.latency = Histogram(
            "tubewatch_api_request_duration_seconds",
            "Time to answer a request, by route.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.recording,
        )
        self.store_latency = Histogram(
            "tubewatch_api_store_call_duration_seconds",
            "Time of calls to Elasticsearch and MongoDB, by store and operation.",
            ["store", "operation"],
            buckets=_LATENCY_BUCKETS,
            registry=self.recording,
        )
        self.served = Counter(
            "tubewatch_api_served_total",
            "List responses by the store that served them (mongodb = degraded mode).",
            ["store"],
            registry=self.recording,
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def observe_store(self, store: str, operation: str, seconds: float) -> None:
        self.store_latency.labels(store, operation).observe(seconds)
