"""The fetcher's Prometheus metrics. Labels never carry a key, not even its fingerprint."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class FetcherMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.calls = Counter(
            "tubewatch_fetcher_api_calls",
            "YouTube API calls made, by method (search, videos) and outcome",
            ["method", "outcome"],
            registry=registry,
        )
        self.quota_spent = Counter(
            "tubewatch_fetcher_quota_spent",
            "Quota spent: search calls (search bucket) and units (videos.list, 1 per call)",
            ["resource"],
            registry=registry,
        )
        self.published = Counter(
            "tubewatch_fetcher_videos_published",
            "Videos published (confirmed by the broker)",
            ["query"],
            registry=registry,
        )
        self.skipped_items = Counter(
            "tubewatch_fetcher_items_skipped", "Search items skipped as unusable", ["query"], registry=registry
        )
        self.enrichment = Counter(
            "tubewatch_fetcher_enrichment",
            "videos.list enrichment of new videos, by outcome",
            ["outcome"],
            registry=registry,
        )
        self.walks = Counter(
            "tubewatch_fetcher_walks",
            "Search walks, by kind (head, gap, sweep) and result",
            ["kind", "result"],
            registry=registry,
        )
        self.window_splits = Counter(
            "tubewatch_fetcher_window_splits",
            "Windows split with publishedBefore because they held more than search's ~500-result cap",
            registry=registry,
        )
        self.sources_reloads = Counter(
            "tubewatch_fetcher_sources_reloads",
            "Loads of the followed queries and channels from MongoDB, by why: leading (a new leader),"
            " opened (the change stream opened), change (a change came), reopen (after the stream broke)",
            ["reason"],
            registry=registry,
        )
        self.cycle_seconds = Histogram("tubewatch_fetcher_cycle_seconds", "One poll cycle", registry=registry)
        self.publish_lag = Histogram(
            "tubewatch_fetcher_publish_lag_seconds",
            "From a video's publishedAt to the broker's confirm of its message",
            buckets=(5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 21600),
            registry=registry,
        )
        self.effective_interval = Gauge(
            "tubewatch_fetcher_effective_interval_seconds",
            "Seconds between poll cycles under the budget",
            registry=registry,
        )
        self.calls_left = Gauge(
            "tubewatch_fetcher_search_calls_left",
            "Search calls the usable projects may still make today",
            registry=registry,
        )
        self.seconds_to_reset = Gauge(
            "tubewatch_fetcher_seconds_to_quota_reset", "Seconds to the next midnight Pacific time", registry=registry
        )
        self.keys = Gauge(
            "tubewatch_fetcher_keys", "API keys by state (live, parked, disabled)", ["state"], registry=registry
        )
        self.all_keys_parked = Gauge(
            "tubewatch_fetcher_all_keys_parked",
            "1 while no key may call (waiting for the quota reset)",
            registry=registry,
        )
        self.budget_too_small = Gauge(
            "tubewatch_fetcher_budget_too_small",
            "1 while the calls left cannot poll every query every MAX_QUERY_INTERVAL_SECONDS",
            registry=registry,
        )
        self.upload_rate = Gauge(
            "tubewatch_fetcher_query_upload_rate_per_hour",
            "New videos an hour a query finds, as its recent polls measured it (smoothed)",
            ["query"],
            registry=registry,
        )
        self.planned_interval = Gauge(
            "tubewatch_fetcher_query_planned_interval_seconds",
            "Seconds between two polls of a query, as planned",
            ["query"],
            registry=registry,
        )
        self.planned_calls_per_day = Gauge(
            "tubewatch_fetcher_query_planned_calls_per_day",
            "Search calls a day a query spends at its planned interval",
            ["query"],
            registry=registry,
        )
        self.expected_mean_delay = Gauge(
            "tubewatch_fetcher_query_expected_mean_delay_seconds",
            "Mean wait of a query's new video for its next poll at the planned interval (half the interval)",
            ["query"],
            registry=registry,
        )
        self.freshness = Gauge(
            "tubewatch_fetcher_query_freshness_seconds",
            "Over the last 24 hours: quantile of publishedAt to the broker's confirm of a query's new videos",
            ["query", "quantile"],
            registry=registry,
        )
        self.units_left = Gauge(
            "tubewatch_fetcher_units_left",
            "Units the usable projects may still spend today: on channel reads (read: the reserve kept "
            "for videos.list aside) or on anything (any)",
            ["use"],
            registry=registry,
        )
        self.units_parked_projects = Gauge(
            "tubewatch_fetcher_units_parked_projects",
            "Projects whose units pool is spent (403 quotaExceeded): their unit calls wait for the reset",
            registry=registry,
        )
        self.units_budget_too_small = Gauge(
            "tubewatch_fetcher_units_budget_too_small",
            "1 while the units left cannot read every channel every MAX_CHANNEL_INTERVAL_SECONDS",
            registry=registry,
        )
        self.channel_interval = Gauge(
            "tubewatch_fetcher_channel_planned_interval_seconds",
            "Seconds between two reads of a followed channel's uploads playlist, as planned",
            ["channel"],
            registry=registry,
        )
        self.channel_upload_rate = Gauge(
            "tubewatch_fetcher_channel_upload_rate_per_hour",
            "New videos an hour a followed channel's reads find (smoothed)",
            ["channel"],
            registry=registry,
        )
        self.channel_last_read = Gauge(
            "tubewatch_fetcher_channel_last_read_timestamp_seconds",
            "When a followed channel's uploads playlist was last read (Unix time)",
            ["channel"],
            registry=registry,
        )
        self.channel_published = Counter(
            "tubewatch_fetcher_channel_videos_published",
            "Videos a followed channel's reads published (confirmed by the broker)",
            ["channel"],
            registry=registry,
        )
        self.websub_requests = Counter(
            "tubewatch_fetcher_websub_requests",
            "Subscribe and unsubscribe requests to the WebSub hub, by mode and outcome (accepted, refused)",
            ["mode", "outcome"],
            registry=registry,
        )
        self.websub_verifications = Counter(
            "tubewatch_fetcher_websub_verifications",
            "Verification GETs of the push endpoint: answered (subscribe, unsubscribe) or refused (404)",
            ["outcome"],
            registry=registry,
        )
        self.websub_state = Gauge(
            "tubewatch_fetcher_websub_subscription_state",
            "1 for a followed channel's WebSub subscription state (subscribed, pending, failing), 0 for the others",
            ["channel", "state"],
            registry=registry,
        )
        self.websub_lease_expiry = Gauge(
            "tubewatch_fetcher_websub_lease_expiry_timestamp_seconds",
            "When a followed channel's WebSub lease runs out unless renewed (Unix time)",
            ["channel"],
            registry=registry,
        )
        self.websub_last_push = Gauge(
            "tubewatch_fetcher_websub_last_push_timestamp_seconds",
            "When a push for a followed channel was last accepted (Unix time)",
            ["channel"],
            registry=registry,
        )
        self.websub_pushes = Counter(
            "tubewatch_fetcher_websub_pushes",
            "Pushes this process received, by channel (unknown: no such subscription) and outcome: accepted,"
            " or why it was ignored (unknown_subscription, oversized, content_type, bad_signature, malformed_xml,"
            " forbidden_xml, wrong_channel, empty)",
            ["channel", "outcome"],
            registry=registry,
        )
        self.websub_confirms = Counter(
            "tubewatch_fetcher_websub_confirms",
            "Pushed video ids the leader handled, by channel and outcome: published, not_confirmed (videos.list"
            " says not public or not the channel's), capped (WEBSUB_MAX_CONFIRMS_PER_CHANNEL_HOUR), no_units,"
            " videos_list_failed, not_followed; and tombstones: removed (a removal published), tombstone_unknown"
            " (not a video of the channel), tombstone_implausible (no plausible deletion time)",
            ["channel", "outcome"],
            registry=registry,
        )
        self.leader = Gauge(
            "tubewatch_fetcher_leader", "1 while this fetcher holds the leader lease", registry=registry
        )
