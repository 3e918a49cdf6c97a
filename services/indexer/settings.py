"""The indexer's settings: batching, concurrency, retries and shutdown of the consumer; reindex's sizes and
timing; the configured queries (SEARCH_QUERIES until the sources are seeded) and the window attribution
looks back over when a query is added."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import (
    AmqpSettings,
    ElasticsearchSettings,
    IndexerPortSettings,
    LoggingSettings,
    MongoSettings,
    SearchQuerySettings,
)


class Settings(
    AmqpSettings, MongoSettings, ElasticsearchSettings, IndexerPortSettings, LoggingSettings, SearchQuerySettings
):
    index_batch_size: int = Field(default=500, ge=1, le=10_000)
    index_batch_max_wait_ms: int = Field(default=200, ge=1, le=60_000)
    # Unacked messages the broker lets one indexer hold: enough to fill the batches in flight.
    # While a store is out, this is also all the indexer holds; the rest waits in RabbitMQ.
    index_prefetch: int = Field(default=2500, ge=1, le=65_535)
    # Batches stored at once: the next batch is written while the previous one waits on a store.
    index_concurrency: int = Field(default=4, ge=1, le=16)
    # A document a store rejects (a 400, a mapping error) is re-queued this many times in all,
    # then dead-lettered. Outages never count.
    index_max_attempts: int = Field(default=5, ge=1, le=100)
    # Capped exponential backoff while a store is unreachable.
    index_retry_max_seconds: float = Field(default=10.0, gt=0)
    # On SIGTERM: how long to finish and ack the batches in hand before leaving them to redelivery.
    index_shutdown_timeout_seconds: float = Field(default=20.0, gt=0)
    # How often the queue depth (lag) and dead-letter count are read from RabbitMQ for /metrics.
    index_queue_depth_interval_seconds: float = Field(default=5.0, gt=0)
    # reindex: documents per bulk request, bulk requests in flight.
    reindex_batch_size: int = Field(default=2000, ge=1, le=50_000)
    reindex_concurrency: int = Field(default=3, ge=1, le=16)
    # reindex: the old index is deleted this long after the alias swap, so relevance walks that hold
    # a point-in-time on it end cleanly (keep it at least the API's API_PIT_KEEP_ALIVE_SECONDS).
    reindex_old_index_grace_seconds: float = Field(default=300.0, ge=0)
    # reindex: documents changed this long before the scan began are copied again after the swap,
    # covering clock differences between indexer hosts (copying a document twice is harmless).
    reindex_clock_skew_seconds: float = Field(default=60.0, ge=0)
    # Percolate channel-found videos against the configured queries (services/indexer/attribution.py);
    # false: they belong to no query until search finds them (make bench-indexer compares the two).
    index_attribution: bool = True
    # A query added later is attributed to the channel-found videos published this many days back:
    # the fetcher's auto-follow window (same variable, same default), the span a query's videos matter in.
    auto_follow_window_days: float = Field(default=7, gt=0)
