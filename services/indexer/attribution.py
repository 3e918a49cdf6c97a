"""``QueryAttribution``: which configured queries a video found through a followed channel belongs to.

Search tells which query found a video; a followed channel's upload comes with no query. So, before a
batch is written, the indexer percolates the text of every channel-found event in it against the
configured queries (``QueryPercolator``, one percolate request per batch), and the event's own write
adds each query it matches to its ``queries``, as matched by text (``mongo_documents``): no second
write, no second read. The text is the event's, the snapshot being stored; a snapshot older than the
stored one (snapshots out of order, rare) is percolated with its own older text, which the video did
have. A search find of that query later makes it matched by search. Only channel finds are
percolated: a search find already belongs to its query, and percolating every video would cost every
batch a request for nothing new.

The configured queries are the query sources in MongoDB (``services.common.sources``) once they are
seeded, paused ones too (pausing stops the searches, not what a video is about), and SEARCH_QUERIES
before. They are read at start and every ``_RELOAD_SECONDS``; a query the percolator index did not
hold is percolated backwards over the channel-found videos published in the last
``AUTO_FOLLOW_WINDOW_DAYS`` (``attribution_backfill``) by a background task, so attribution does not
depend on when a query was added; one that fails (a store out) is tried again at the next reload. A
changed query is a new text, hence a new query.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from elasticsearch import ApiError, AsyncElasticsearch, TransportError
from pymongo.asynchronous.database import AsyncDatabase

from services.common.catalogue import PERCOLATED_FIELDS
from services.common.events import VideoEvent
from services.common.sources import load_marker, load_sources
from services.common.timefmt import utc_now
from services.indexer import es_errors
from services.indexer.attribution_backfill import attribute_backwards
from services.indexer.percolator import QueryPercolator

logger = logging.getLogger(__name__)

# How often the configured queries are read again (they are data in MongoDB, changed by the admin API).
_RELOAD_SECONDS = 60.0


async def configured_queries(db: AsyncDatabase[dict[str, Any]], from_environment: Sequence[str]) -> list[str]:
    """The query sources once seeded (oldest first), else SEARCH_QUERIES."""
    # The marker first: the seed writes it with the queries in one transaction, so once it is seen the
    # queries are too (reading the queries first could see none and then the marker of a seed between).
    if await load_marker(db) is None:
        return list(dict.fromkeys(from_environment))
    return [query.text for query in (await load_sources(db)).queries]


class QueryAttribution:
    def __init__(
        self,
        db: AsyncDatabase[dict[str, Any]],
        es: AsyncElasticsearch,
        alias: str,
        *,
        search_queries: Sequence[str],
        window: timedelta,
        batch_size: int = 500,
        replicas: int = 0,
    ) -> None:
        self._db = db
        self._es = es
        self._alias = alias
        self._search_queries = list(search_queries)
        self._window = window
        self._batch_size = batch_size
        self.percolator = QueryPercolator(es, alias, replicas)
        self.queries: list[str] = []
        self._backfills: set[asyncio.Task[int]] = set()
        # Queries whose backward attribution failed: tried again at the next reload.
        self._unfinished: list[str] = []

    async def prepare(self) -> None:
        """Sync the percolator index with the configured queries (the catalogue's index must exist);
        start percolating backwards the queries it did not hold."""
        queries = await configured_queries(self._db, self._search_queries)
        new = await self.percolator.sync(queries)
        self.queries = queries
        if new:
            self._start_backfill(new)

    async def match(self, events: Sequence[VideoEvent]) -> dict[int, set[str]]:
        """By position, the configured queries each channel-found event's text matches (those with
        none are left out): one percolate request for the batch, before it is written, so the
        matches go into MongoDB with the event itself."""
        positions = [i for i, event in enumerate(events) if event.found_by.source == "channel"]
        if not positions or not self.queries:
            return {}
        texts = [{name: getattr(events[i], name) for name in PERCOLATED_FIELDS} for i in positions]
        try:
            matched = await self.percolator.matches(texts)
        except (TransportError, ApiError) as exc:
            raise es_errors.unavailable(exc) from exc
        return {position: queries for position, queries in zip(positions, matched, strict=True) if queries}

    async def reload_forever(self) -> None:
        """Every ``_RELOAD_SECONDS``, pick up queries added, changed or removed in the sources."""
        while True:
            await asyncio.sleep(_RELOAD_SECONDS)
            try:
                if await configured_queries(self._db, self._search_queries) != self.queries:
                    await self.prepare()
                if self._unfinished:
                    retry, self._unfinished = self._unfinished, []
                    self._start_backfill([query for query in retry if query in self.queries])
            except Exception as exc:  # a store outage: the consumer reports it; the next round retries
                logger.debug("could not reload the configured queries", extra={"error": str(exc)[:300]})

    async def wait_backfills(self) -> None:
        """Until the backward attributions under way are done (tests and the bench wait on this)."""
        while self._backfills:
            await asyncio.gather(*self._backfills, return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._backfills):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._backfills, return_exceptions=True)

    def _start_backfill(self, queries: list[str]) -> None:
        since = utc_now() - self._window
        if not queries:
            return
        task = asyncio.create_task(
            attribute_backwards(
                self._db, self._es, self._alias, self.percolator, queries, since=since, batch_size=self._batch_size
            ),
            name="attribution-backfill",
        )
        self._backfills.add(task)
        task.add_done_callback(lambda done: self._backfill_done(done, queries))

    def _backfill_done(self, task: asyncio.Task[int], queries: list[str]) -> None:
        self._backfills.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The queries are in the percolator index already, so a restart would not redo it: retry here.
            logger.warning(
                "backward attribution failed; retried at the next reload",
                extra={"queries": ",".join(queries), "error": str(task.exception())[:300]},
            )
            self._unfinished += queries
