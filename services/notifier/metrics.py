"""The notifier's Prometheus metrics, served on ``/metrics``: matching here, the deliveries' beside them."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class NotifierMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "tubewatch_notifier_stored_events",
            "The indexer's stored events settled, by outcome: matched (percolated and acked), dead_lettered"
            " (not a stored event), requeued (a failure sent it back to the queue)",
            ["outcome"],
            registry=registry,
        )
        self.videos_percolated = Counter(
            "tubewatch_notifier_videos_percolated",
            "Stored videos percolated against the saved searches",
            registry=registry,
        )
        self.matches = Counter(
            "tubewatch_notifier_matches",
            "(saved search, video) matches, by outcome: queued (a new match, its delivery queued), repeated"
            " (matched before: not delivered again)",
            ["outcome"],
            registry=registry,
        )
        self.percolate_seconds = Histogram(
            "tubewatch_notifier_percolate_seconds",
            "One stored event's percolate request",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.event_seconds = Histogram(
            "tubewatch_notifier_event_seconds",
            "One stored event from its delivery to its ack: read, percolate, record, queue the deliveries",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
        self.saved_searches = Gauge(
            "tubewatch_notifier_saved_searches",
            "Saved searches held by the percolator index",
            registry=registry,
        )
        self.queue_depth = Gauge(
            "tubewatch_notifier_queue_depth",
            "Messages ready in a queue (the stored events' queue: the notifier's lag; dead letters)",
            ["queue"],
            registry=registry,
        )
        for outcome in ("matched", "dead_lettered", "requeued"):
            self.events.labels(outcome)
        for outcome in ("queued", "repeated"):
            self.matches.labels(outcome)
