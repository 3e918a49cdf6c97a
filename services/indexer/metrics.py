"""The indexer's Prometheus metrics, served on ``/metrics``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class IndexerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = Counter(
            "tubewatch_indexer_messages",
            "Messages settled, by outcome: stored, retried (a store rejected it; re-queued), dead_lettered",
            ["outcome"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "tubewatch_indexer_dead_letters",
            "Messages sent to the dead-letter queue, by cause: invalid (not an event), rejected (by a store)",
            ["cause"],
            registry=registry,
        )
        self.batch_size = Histogram(
            "tubewatch_indexer_batch_size",
            "Messages per flushed batch",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000),
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "tubewatch_indexer_batch_seconds",
            "Time to store one batch in both stores, outage retries included",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=registry,
        )
        self.store_seconds = Histogram(
            "tubewatch_indexer_store_seconds",
            "Time one store took for its part of a batch (MongoDB: upserts and read-back; Elasticsearch: bulk)",
            ["store"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.store_outages = Counter(
            "tubewatch_indexer_store_outages",
            "Batch attempts that met an unavailable store",
            ["store"],
            registry=registry,
        )
        self.stored_events = Counter(
            "tubewatch_indexer_stored_events",
            "'Videos stored' events published and confirmed, one per batch that stored any video",
            registry=registry,
        )
        self.removals = Counter(
            "tubewatch_indexer_removals",
            "Removal messages (deleted videos) both stores hold, whether or not the later-wins rule applied them",
            registry=registry,
        )
        self.ready = Gauge("tubewatch_indexer_ready", "1 while both stores accept writes", registry=registry)
        self.queue_depth = Gauge(
            "tubewatch_indexer_queue_depth",
            "Messages ready in a queue (the work queue's depth is the indexer's lag)",
            ["queue"],
            registry=registry,
        )
        for outcome in ("stored", "retried", "dead_lettered"):
            self.messages.labels(outcome)
        for cause in ("invalid", "rejected"):
            self.dead_letters.labels(cause)

    def observe_store(self, store: str, seconds: float) -> None:
        self.store_seconds.labels(store).observe(seconds)
