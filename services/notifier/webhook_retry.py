"""The webhook retry policy: how long a failed delivery waits before its next attempt, and when it gives up.

The wait doubles from WEBHOOK_RETRY_BASE_SECONDS up to WEBHOOK_RETRY_MAX_SECONDS. RabbitMQ holds the
waiting deliveries, one delay queue per distinct wait (a queue's TTL applies to its head only, so a
single queue of mixed waits would hold a short wait behind a long one). A delivery whose next attempt
would fall later than WEBHOOK_RETRY_HOURS after its first failure is dead-lettered instead.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float
    max_seconds: float
    window_seconds: float

    def __post_init__(self) -> None:
        if not 0 < self.base_seconds <= self.max_seconds:
            raise ValueError("the backoff base must be positive and at most its cap")

    @property
    def delays_ms(self) -> tuple[int, ...]:
        """Every wait a retry can take, shortest first: base, 2 x base, … up to the cap."""
        delays: list[int] = []
        delay = self.base_seconds
        while True:
            delays.append(_ms(min(delay, self.max_seconds)))
            if delay >= self.max_seconds:
                return tuple(dict.fromkeys(delays))
            delay *= 2

    def delay_ms(self, failures: int) -> int:
        """The wait after the ``failures``-th failed attempt (1 for the first)."""
        delays = self.delays_ms
        return delays[min(max(failures, 1), len(delays)) - 1]

    def gives_up(self, first_failure_ms: int, now_ms: int, delay_ms: int) -> bool:
        """True when an attempt after ``delay_ms`` would fall outside the retry window."""
        return now_ms + delay_ms - first_failure_ms > self.window_seconds * 1000


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))
