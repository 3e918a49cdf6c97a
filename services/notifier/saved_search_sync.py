"""``SavedSearchSync``: keeps the percolator index in step with the ``saved_searches`` collection.

``run`` opens a change stream on the collection, then loads every saved search and syncs the
percolator index with them (``SavedSearchPercolator.sync`` writes only what changed); on every
change it loads and syncs again. The stream is opened before each load, so no change falls
between the two. When it breaks (MongoDB away, its resume token gone), it is opened again after a
backoff and everything is loaded again; the fingerprint check inside ``sync`` also runs every
``RECHECK_SECONDS``, so a catalogue reindexed with another analyser gets its new percolator index.

``synced_through`` is the moment up to which every saved search written is in the index: the
start of the last load, or of the last wait on the stream that found no change. A stored event is
percolated only once ``synced_through`` has passed its ``stored_at`` (``wait_synced``), so a saved
search created just before a video was stored matches it, whichever arrives at the notifier first.

The last load's saved searches also serve the webhook deliveries (``SyncedSavedSearches``) while
``synced_through`` is at most ``LOOKUP_STALE_SECONDS`` old, so a pause or a deletion takes effect
for every delivery handled from that long after it was written; a saved search this notifier
changed itself (a 410 paused it) is read from MongoDB until a later load holds the change. A
lookup waits up to ``LOOKUP_WAIT_SECONDS`` for a lagging sync, then reads MongoDB, as it does
while the stream is not watching.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from services.common.saved_searches import (
    SAVED_SEARCHES_COLLECTION,
    SavedSearch,
    get_saved_search,
    load_saved_searches,
)
from services.common.timefmt import format_rfc3339, utc_now
from services.notifier.metrics import NotifierMetrics
from services.notifier.saved_search_index import SavedSearchPercolator

logger = logging.getLogger(__name__)

REOPEN_MIN_SECONDS = 0.5
REOPEN_MAX_SECONDS = 30.0
RECHECK_SECONDS = 60.0
# How long one wait on the change stream lasts when nothing changes: how stale synced_through gets.
STREAM_WAIT_MS = 100
# How old the deliveries' copy of the saved searches may be, and how long a lookup waits for a
# lagging sync before it reads MongoDB instead.
LOOKUP_STALE_SECONDS = 1.0
LOOKUP_WAIT_SECONDS = 1.0


class SavedSearchSync:
    def __init__(
        self, db: AsyncDatabase[dict[str, Any]], percolator: SavedSearchPercolator, metrics: NotifierMetrics
    ) -> None:
        self._db = db
        self._percolator = percolator
        self._metrics = metrics
        self.synced_through: datetime | None = None
        self.watching = False
        # The last load's saved searches by id.
        self.loaded: dict[str, SavedSearch] = {}
        self._synced = asyncio.Condition()

    async def run(self) -> None:
        """Keep the index in step until cancelled."""
        backoff = REOPEN_MIN_SECONDS
        while True:
            try:
                await self._watch()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.watching:  # the stream had been working: start the backoff afresh
                    backoff = REOPEN_MIN_SECONDS
                logger.warning(
                    "saved searches not in sync; reopening the change stream and reloading",
                    extra={"error": f"{type(exc).__name__}: {str(exc)[:300]}", "retry_in_seconds": backoff},
                )
            finally:
                self.watching = False
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, REOPEN_MAX_SECONDS)

    async def wait_synced(self, moment: datetime) -> None:
        """Return once every saved search written up to ``moment`` is in the percolator index."""
        async with self._synced:
            await self._synced.wait_for(lambda: self.synced_through is not None and self.synced_through >= moment)

    def state(self) -> tuple[bool, str]:
        """Readiness: watching, and how many saved searches the index holds."""
        if not self.watching or self.synced_through is None:
            return False, "saved searches not in sync"
        return True, f"{self._percolator.held} saved searches, in sync as of {format_rfc3339(self.synced_through)}"

    async def _watch(self) -> None:
        stream = await self._db[SAVED_SEARCHES_COLLECTION].watch(max_await_time_ms=STREAM_WAIT_MS)
        async with stream:
            await self._load()
            self.watching = True
            checked = time.monotonic()
            while True:
                since = utc_now()
                change = await stream.try_next()
                if change is not None or time.monotonic() - checked >= RECHECK_SECONDS:
                    await self._load()
                    checked = time.monotonic()
                else:
                    await self._mark_synced(since)

    async def _load(self) -> None:
        since = utc_now()
        searches = await load_saved_searches(self._db)
        written, deleted = await self._percolator.sync(searches)
        self.loaded = {search.id: search for search in searches}
        self._metrics.saved_searches.set(self._percolator.held)
        if written or deleted:
            logger.info(
                "saved searches loaded",
                extra={"saved_searches": len(searches), "written": written, "deleted": deleted},
            )
        await self._mark_synced(since)

    async def _mark_synced(self, since: datetime) -> None:
        async with self._synced:
            if self.synced_through is None or since > self.synced_through:
                self.synced_through = since
                self._synced.notify_all()


class SyncedSavedSearches:
    """The deliveries' saved searches (``deliveries.SavedSearchSource``) from ``SavedSearchSync``'s last load."""

    def __init__(
        self, sync: SavedSearchSync, db: AsyncDatabase[dict[str, Any]], within: float = LOOKUP_WAIT_SECONDS
    ) -> None:
        self._sync = sync
        self._db = db
        self._within = within
        # Saved searches changed here, by when: MongoDB holds a change the copy may not have yet.
        self._changed: dict[str, datetime] = {}

    async def get(self, saved_search_id: str) -> SavedSearch | None:
        """The saved search as of ``LOOKUP_STALE_SECONDS`` ago or later (``None``: deleted)."""
        wanted = utc_now() - timedelta(seconds=LOOKUP_STALE_SECONDS)
        changed = self._changed.get(saved_search_id)
        if changed is not None:
            if self._sync.synced_through is None or self._sync.synced_through < changed:
                return await get_saved_search(self._db, saved_search_id)
            del self._changed[saved_search_id]
        if self._sync.watching:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._within):
                    await self._sync.wait_synced(wanted)
                return self._sync.loaded.get(saved_search_id)
        return await get_saved_search(self._db, saved_search_id)

    def changed(self, saved_search_id: str) -> None:
        """This notifier wrote the saved search: read it from MongoDB until a later load."""
        self._changed[saved_search_id] = utc_now()
