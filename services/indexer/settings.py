from __future__ import annotations

from pydantic import Field

from services.common.settings import (
    AmqpSettings,
    ElasticsearchSettings,
    IndexerPortSettings,
    LoggingSettings,
    MongoSettings,
)


class Settings(AmqpSettings, MongoSettings, ElasticsearchSettings, IndexerPortSettings, LoggingSettings):
    index_batch_size: int = Field(default=500, ge=1, le=10_000)
    index_batch_max_wait_ms: int = Field(default=200, ge=1, le=60_000)
    # Enough unacked messages in flight to fill a couple of batches.
    index_prefetch: int = Field(default=1000, ge=1, le=65_535)
    index_max_attempts: int = Field(default=5, ge=1, le=100)
    # Capped exponential backoff while a store is unreachable.
    index_retry_max_seconds: float = Field(default=10.0, gt=0)
