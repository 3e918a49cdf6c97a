"""How a webhook's answer is taken and how long a failing delivery is retried."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.notifier.deliveries import DeliveryRequest, delivery_id_for
from services.notifier.webhook_retry import RetryPolicy
from services.notifier.webhook_sender import Outcome, classify, host_key
from services.notifier.webhook_settings import DeliverySettings

DEFAULTS = DeliverySettings().retry_policy


@pytest.mark.parametrize(
    ("status", "reason", "expected", "cause"),
    [
        (200, "OK", Outcome.DELIVERED, ""),
        (204, "No Content", Outcome.DELIVERED, ""),
        (410, "Gone", Outcome.GONE, ""),
        (429, "Too Many Requests", Outcome.RETRY, ""),
        (500, "Internal Server Error", Outcome.RETRY, ""),
        (503, "Service Unavailable", Outcome.RETRY, ""),
        (301, "Moved Permanently", Outcome.REJECTED, "redirect"),
        (302, "Found", Outcome.REJECTED, "redirect"),
        (400, "Bad Request", Outcome.REJECTED, "rejected"),
        (404, "Not Found", Outcome.REJECTED, "rejected"),
    ],
)
def test_each_answer_is_delivered_retried_paused_or_dead_lettered(
    status: int, reason: str, expected: Outcome, cause: str
) -> None:
    result = classify(status, reason)
    assert (result.outcome, result.cause) == (expected, cause)
    assert result.detail.startswith(f"{status} {reason}")


def test_the_default_backoff_doubles_from_ten_seconds_to_an_hour() -> None:
    assert DEFAULTS.delays_ms == (
        10_000,
        20_000,
        40_000,
        80_000,
        160_000,
        320_000,
        640_000,
        1_280_000,
        2_560_000,
        3_600_000,
    )
    assert [DEFAULTS.delay_ms(n) for n in (1, 2, 10, 11, 50)] == [10_000, 20_000, 3_600_000, 3_600_000, 3_600_000]


def test_a_delivery_is_retried_within_webhook_retry_hours_of_its_first_failure_and_no_longer() -> None:
    failures, now_ms = 0, 0
    while not DEFAULTS.gives_up(0, now_ms, DEFAULTS.delay_ms(failures + 1)):
        failures += 1
        now_ms += DEFAULTS.delay_ms(failures)
    # The README's example: 32 attempts with the defaults, the last about 23.4 h after the first failure.
    assert failures + 1 == 32
    assert 23.3 < now_ms / 3_600_000 <= 24


def test_a_backoff_base_above_its_cap_is_refused() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(base_seconds=10, max_seconds=5, window_seconds=60)
    with pytest.raises(ValueError):
        DeliverySettings(webhook_retry_base_seconds=100, webhook_retry_max_seconds=50)


def test_the_delivery_id_is_stable_for_a_saved_search_and_video_and_differs_between_them() -> None:
    one = delivery_id_for("ss_aaaaaaaaaaaaaaaaaaaaaa", "vid1")
    assert one == delivery_id_for("ss_aaaaaaaaaaaaaaaaaaaaaa", "vid1")
    assert len(one) == 32 and int(one, 16) >= 0
    assert one != delivery_id_for("ss_aaaaaaaaaaaaaaaaaaaaaa", "vid2")
    # The separator keeps ("ab", "c") and ("a", "bc") apart.
    assert delivery_id_for("ab", "c") != delivery_id_for("a", "bc")
    request = DeliveryRequest.for_match("ss_x", "vid1", {}, indexed_at=datetime.now(UTC))
    assert request.delivery_id == delivery_id_for("ss_x", "vid1")


def test_the_per_host_limit_counts_by_host_name_and_port() -> None:
    assert host_key("https://Hooks.Example.com/a?token=x") == "hooks.example.com:443"
    assert host_key("http://127.0.0.1:8099/hook") == "127.0.0.1:8099"
    assert host_key("https://hooks.example.com:8443/") != host_key("https://hooks.example.com/")
