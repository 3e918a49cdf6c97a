"""The notifier's Prometheus metrics, served on ``/metrics``: matching here, the deliveries' beside them."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# A stored event's stages (services/notifier/matching.py), in their order.
STAGES = ("wait_synced", "read", "percolate", "record", "publish", "mark_queued")


class NotifierMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "tubewatch_notifier_stored_events",
            "The indexer's stored events settled, by outcome: matched (percolated and acked), dead_lettered"
            " (not a stored event), retried (a failure held it and it was tried again)",
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
        self.stage_seconds = Histogram(
            "tubewatch_notifier_event_stage_seconds",
            "One stored event's stages, in order: wait_synced (the percolator index catching up with the"
            " saved searches), read (its videos from MongoDB), percolate, record (the matches in MongoDB),"
            " publish (the delivery requests, until RabbitMQ confirmed them), mark_queued",
            ["stage"],
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
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
            "Messages ready in a queue: the stored events' (the matching's lag), the deliveries' work queue"
            " (the webhooks' lag), and the dead letters of each",
            ["queue"],
            registry=registry,
        )
        for outcome in ("matched", "dead_lettered", "retried"):
            self.events.labels(outcome)
        for outcome in ("queued", "repeated"):
            self.matches.labels(outcome)
        for stage in STAGES:
            self.stage_seconds.labels(stage)


class DeliveryMetrics:
    """The webhook deliveries' metrics (services/notifier/deliveries.py)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.deliveries = Counter(
            "tubewatch_notifier_deliveries",
            "Delivery attempts, by outcome: delivered (2xx), retried (429, 5xx, timeout, connection error: it"
            " waits in a delay queue), dead_lettered, gone (410: the webhook is paused), skipped (the saved"
            " search is deleted, has no webhook or its webhook is paused), deferred (its host had too many in"
            " hand: back to RabbitMQ for the shortest wait, no attempt counted)",
            ["outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "tubewatch_notifier_delivery_latency_seconds",
            "From the video's indexing to the receiver's 2xx, retries included",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800, 3600, 6 * 3600, 24 * 3600),
            registry=registry,
        )
        self.retries_queued = Counter(
            "tubewatch_notifier_retries_queued",
            "Deliveries put in a delay queue for a later attempt, by the wait's length",
            ["delay"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "tubewatch_notifier_dead_letters",
            "Deliveries dead-lettered, by cause: rejected (a 4xx other than 410 and 429), redirect (3xx, not"
            " followed), refused (the URL's address is not allowed), expired (still failing after"
            " WEBHOOK_RETRY_HOURS), invalid (not a delivery request)",
            ["cause"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "tubewatch_notifier_webhook_request_seconds",
            "One webhook POST, from the address check to the answer read",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
        for outcome in ("delivered", "retried", "dead_lettered", "gone", "skipped", "deferred"):
            self.deliveries.labels(outcome)
        for cause in ("rejected", "redirect", "refused", "expired", "invalid"):
            self.dead_letters.labels(cause)
