from __future__ import annotations

from pydantic import Field

from services.common.settings import (
    AmqpSettings,
    FetcherPortSettings,
    LoggingSettings,
    MongoSettings,
    YouTubeSettings,
)


class Settings(YouTubeSettings, AmqpSettings, MongoSettings, FetcherPortSettings, LoggingSettings):
    # First start without a watermark: look this far back.
    initial_lookback_seconds: float = Field(default=3600, ge=0)
    # Bounds a burst: at most this many search pages per query per cycle.
    max_pages_per_cycle: int = Field(default=20, ge=1, le=100)
    youtube_request_timeout_seconds: float = Field(default=15, gt=0)
