"""Prometheus metrics of the emulator's API calls."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter


class EmulatorMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.calls = Counter(
            "emulator_api_calls",
            "YouTube API calls answered, by endpoint (search, videos, channels, playlistItems) and outcome",
            ["endpoint", "outcome"],
            registry=registry,
        )
        self.slowed = Counter(
            "emulator_slowed_calls",
            "API calls delayed by the slow-response fault",
            ["endpoint"],
            registry=registry,
        )

        self.websub = Counter(
            "emulator_websub_events",
            "The emulated WebSub hub's requests, verifications and pushes, by kind and outcome",
            ["kind", "outcome"],
            registry=registry,
        )

    def record(self, endpoint: str, outcome: str) -> None:
        self.calls.labels(endpoint=endpoint, outcome=outcome).inc()


METRICS: web.AppKey[EmulatorMetrics] = web.AppKey("youtube_emulator_metrics", EmulatorMetrics)
