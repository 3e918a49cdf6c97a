"""When the leader asks the hub again: renewal a fifth of the lease before expiry, retries after their backoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry

from services.common.websub_state import Subscription, topic_url
from services.fetcher.metrics import FetcherMetrics
from services.fetcher.websub_subscriptions import WebSubSubscriptions

NOW = datetime(2026, 11, 24, 18, tzinfo=UTC)
CHANNEL = "UCfollowedChannelAAAAAAA"
LEASE = timedelta(seconds=432_000)


def manager() -> WebSubSubscriptions:
    none: Any = None
    return WebSubSubscriptions(
        store=none,
        session=none,
        followed=lambda: [CHANNEL],
        clock=none,
        metrics=FetcherMetrics(CollectorRegistry()),
        hub_url="https://hub.example/subscribe",
        callback_base="https://tubewatch.example",
        lease_seconds=432_000,
        on_push_change=lambda: None,
    )


def subscription(**fields: Any) -> Subscription:
    return Subscription(id="a1", channel_id=CHANNEL, topic=topic_url(CHANNEL), **fields)


def test_a_new_subscription_is_due_at_once_and_pending() -> None:
    sub = subscription()
    assert manager()._subscribe_due(sub, NOW)
    assert sub.state(NOW) == "pending"


def test_a_lease_is_renewed_once_a_fifth_of_it_is_left_and_stays_subscribed_meanwhile() -> None:
    verified = NOW - LEASE * 0.79
    sub = subscription(verified_at=verified, lease_expires_at=verified + LEASE)
    assert not manager()._subscribe_due(sub, NOW)
    assert manager()._subscribe_due(sub, NOW + LEASE * 0.02)
    renewing = subscription(verified_at=verified, lease_expires_at=verified + LEASE, pending_mode="subscribe")
    assert renewing.state(NOW) == "subscribed"
    assert renewing.state(verified + LEASE) == "pending"  # expired while the renewal waits for its verification


def test_a_refused_request_waits_for_its_backoff_and_shows_failing() -> None:
    sub = subscription(failures=2, next_attempt_at=NOW + timedelta(minutes=2), last_error="503 Transient error")
    assert sub.state(NOW) == "failing"
    assert not manager()._subscribe_due(sub, NOW)
    assert manager()._subscribe_due(sub, NOW + timedelta(minutes=2))


def test_a_channel_no_longer_followed_loses_its_websub_gauges() -> None:
    registry = CollectorRegistry()
    subs = manager()
    subs._metrics = FetcherMetrics(registry)
    other = "UCsecondFollowedChannelB"
    leased: dict[str, Any] = {"verified_at": NOW, "lease_expires_at": NOW + LEASE, "last_push_at": NOW}
    subs.subscriptions = {
        CHANNEL: subscription(**leased),
        other: Subscription(id="b2", channel_id=other, topic=topic_url(other), **leased),
    }
    subs._publish_metrics(NOW)
    subs.subscriptions = {CHANNEL: subs.subscriptions[CHANNEL]}
    subs._publish_metrics(NOW)

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    expiry = (NOW + LEASE).timestamp()
    assert value("tubewatch_fetcher_websub_subscription_state", channel=CHANNEL, state="subscribed") == 1
    assert value("tubewatch_fetcher_websub_lease_expiry_timestamp_seconds", channel=CHANNEL) == expiry
    assert value("tubewatch_fetcher_websub_subscription_state", channel=other, state="subscribed") is None
    assert value("tubewatch_fetcher_websub_lease_expiry_timestamp_seconds", channel=other) is None
    assert value("tubewatch_fetcher_websub_last_push_timestamp_seconds", channel=other) is None
