"""Which store answers: Elasticsearch while it works, MongoDB while it does not.

A failed Elasticsearch call marks it down; until a background probe finds the alias again, requests
go straight to MongoDB instead of waiting on a dead server. No restart is needed either way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

from services.api.es_store import ElasticsearchStore
from services.api.metrics import ApiMetrics
from services.api.mongo_store import MongoStore
from services.common.errors import StoreUnavailableError

logger = logging.getLogger(__name__)

StoreName = Literal["elasticsearch", "mongodb"]
T = TypeVar("T")
PROBE_INTERVAL_SECONDS = 1.0


class Stores:
    """The two stores, which of them serves now, and the timing of every call to them."""

    def __init__(self, es: ElasticsearchStore, mongo: MongoStore, metrics: ApiMetrics) -> None:
        self.es = es
        self.mongo = mongo
        self._metrics = metrics
        self._es_down_reason: str | None = None

    @property
    def es_available(self) -> bool:
        return self._es_down_reason is None

    def mark_es_down(self, reason: str) -> None:
        if self._es_down_reason is None:
            logger.warning("elasticsearch unavailable: serving from mongodb", extra={"reason": reason})
        self._es_down_reason = reason

    def mark_es_up(self) -> None:
        if self._es_down_reason is not None:
            logger.info("elasticsearch is back: serving from it again")
        self._es_down_reason = None

    async def timed(self, store: StoreName, operation: str, call: Awaitable[T]) -> T:
        started = time.perf_counter()
        try:
            return await call
        finally:
            self._metrics.observe_store(store, operation, time.perf_counter() - started)

    async def with_fallback(
        self,
        operation: str,
        on_es: Callable[[ElasticsearchStore], Awaitable[T]],
        on_mongo: Callable[[MongoStore], Awaitable[T]],
    ) -> tuple[T, StoreName]:
        """Ask Elasticsearch when it is up, MongoDB otherwise or when Elasticsearch fails now."""
        if self.es_available:
            try:
                return await self.timed("elasticsearch", operation, on_es(self.es)), "elasticsearch"
            except StoreUnavailableError as exc:
                self.mark_es_down(str(exc))
        return await self.timed("mongodb", operation, on_mongo(self.mongo)), "mongodb"

    async def probe_forever(self) -> None:
        """While Elasticsearch is marked down, look for it (and its alias) every second."""
        while True:
            await asyncio.sleep(PROBE_INTERVAL_SECONDS)
            if not self.es_available and await self.es.alias_ready():
                self.mark_es_up()

    async def readiness(self) -> tuple[bool, str]:
        """Elasticsearch being away degrades the API but does not make it unready."""
        if self.es_available:
            return True, "ok"
        return True, f"degraded: listings served from mongodb ({self._es_down_reason})"

    def served_by(self) -> StoreName:
        return "elasticsearch" if self.es_available else "mongodb"
