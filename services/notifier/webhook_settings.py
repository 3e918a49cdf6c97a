"""The webhook delivery settings, a mixin of the notifier's ``Settings``: queues, timeout, concurrency, retries."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.notifier.webhook_retry import RetryPolicy


class DeliverySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    # The deliveries' exchange and the start of their queues' names (<prefix>.work, .retry.<ms>ms, .dead).
    delivery_queue_prefix: str = Field(default="tubewatch.deliveries", min_length=1)
    # One POST: connecting, sending and reading the answer's status and (at most 64 KiB of) body.
    webhook_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    # POSTs in flight to one host (name and port) per notifier process.
    webhook_concurrency_per_host: int = Field(default=4, ge=1, le=256)
    # Retried for this long after a delivery's first failure, then dead-lettered.
    webhook_retry_hours: float = Field(default=24.0, gt=0)
    # The wait before the first retry, doubling at each failure up to the cap.
    webhook_retry_base_seconds: float = Field(default=10.0, gt=0)
    webhook_retry_max_seconds: float = Field(default=3600.0, gt=0)

    @model_validator(mode="after")
    def _base_within_cap(self) -> DeliverySettings:
        if self.webhook_retry_base_seconds > self.webhook_retry_max_seconds:
            raise ValueError("WEBHOOK_RETRY_BASE_SECONDS must not exceed WEBHOOK_RETRY_MAX_SECONDS")
        return self

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            base_seconds=self.webhook_retry_base_seconds,
            max_seconds=self.webhook_retry_max_seconds,
            window_seconds=self.webhook_retry_hours * 3600,
        )
