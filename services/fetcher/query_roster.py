"""The search queries as the search scheduler's work items, kept in step with the sources.

What is searched is the source set's queries that are not paused (services/common/sources.py),
each with its weight. As the search scheduler's hooks the roster registers one ``SearchQuery``
per such query before a new leader loads them. While the leader runs, ``follow`` is given every
set the sources watch loads (``sources_watch.py``) and applies the difference at once: a new
query is loaded (a query without saved state starts with its initial lookback) and registered,
due at once; a paused or removed one is unregistered, so it is never called again (a poll in
flight finishes); a new weight is the query's from its next plan on.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from services.common.sources import SourceSet
from services.fetcher.scheduler import Scheduler
from services.fetcher.search_query import SearchPolicy, SearchQuery, SearchQueryParts

logger = logging.getLogger(__name__)


class QueryRoster:
    def __init__(self, *, policy: SearchPolicy, parts: SearchQueryParts) -> None:
        self._policy = policy
        self._parts = parts
        # The queries to search (text -> weight), in the order they were added.
        self._wanted: dict[str, float] = {}
        self._queries: dict[str, SearchQuery] = {}
        self._scheduler: Scheduler | None = None
        # The watch and a new leader's prepare must not add the same query twice.
        self._lock = asyncio.Lock()

    @property
    def queries(self) -> list[SearchQuery]:
        return list(self._queries.values())

    async def follow(self, sources: SourceSet, now: datetime) -> None:
        """The sources changed: search what they say from now on (at once while the scheduler runs)."""
        self._wanted = {query.text: query.weight for query in sources.searched_queries}
        if self._scheduler is not None:
            await self._sync(self._scheduler, now, load=True)

    async def prepare(self, scheduler: Scheduler, now: datetime) -> None:
        """A new leader: one work item per query to search (the scheduler loads them)."""
        async with self._lock:
            for item in scheduler.items:
                scheduler.unregister(item.name)
            self._queries = {}
        self._scheduler = scheduler
        await self._sync(scheduler, now, load=False)

    async def after_cycle(self, scheduler: Scheduler) -> None:
        """Nothing: the sources watch applies every change as it comes."""

    async def _sync(self, scheduler: Scheduler, now: datetime, *, load: bool) -> None:
        async with self._lock:
            added, removed, reweighted = [], [], []
            for text in [t for t in self._queries if t not in self._wanted]:
                scheduler.unregister(text)
                del self._queries[text]
                removed.append(text)
            for text, weight in self._wanted.items():
                known = self._queries.get(text)
                if known is not None:
                    if known.weight != weight:
                        known.weight = weight
                        reweighted.append(text)
                    continue
                query = SearchQuery(text, self._policy, self._parts, weight=weight)
                if load:
                    await query.load(now)
                self._queries[text] = query
                scheduler.register(query)
                added.append(text)
            if load and (added or removed or reweighted):
                logger.info(
                    "searched queries changed",
                    extra={"added": added, "removed": removed, "reweighted": reweighted, "queries": len(self._queries)},
                )
