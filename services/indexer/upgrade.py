"""``CatalogueUpgrade``: before an indexer consumes, the stores are brought to the current catalogue.

An indexer of a new version may start against a catalogue an older one built: videos in MongoDB
without ``found_by``, and the alias on an index whose strict mapping rejects it. Writing then would
get every document rejected. So, before the first batch (``VideoWriter.prepare``):

1. When the alias is on an index older than ``SEARCH_INDEX_VERSION``, one indexer runs the
   zero-downtime ``reindex`` (which gives MongoDB's videos ``found_by`` first), swapping the alias to
   the current version; the API reads the old index until that atomic swap and the new one after.
   The one is whoever holds the upgrade lease in MongoDB (renewed while it works, taken over once it
   lapses, so a crashed upgrader only delays the others by ``_LEASE_SECONDS``); the others wait for
   the alias to move. Indexers of the previous version keep writing through the alias meanwhile.
   The current index then gets the mapping's ``FIELDS_ADDED_IN_PLACE`` it lacks (no reindex).
2. Stragglers of a rolling upgrade, where indexers of the previous version keep writing after the
   swap, are repaired: videos they stored without ``found_by`` get it and are copied to the alias,
   and videos whose copy they replaced with one without ``found_by`` (their search fields predate
   it) are copied again from MongoDB (external versions keep any newer copy). The running indexer
   looks for both again every minute (``sweep_forever``), one index lookup in each store when there
   are none, so the catalogue is whole within a minute of the last old indexer stopping.

The old index is deleted ``REINDEX_OLD_INDEX_GRACE_SECONDS`` later by a task that runs while the
indexer consumes, so the API's point-in-time walks on it end cleanly. Every step is idempotent: an
indexer that finds the catalogue current spends two lookups.

MongoDB's text index (degraded-mode q) is brought to ``MONGO_TEXT_INDEX`` by ``build_text_index``, a
task that runs beside the consumer rather than before it: on a collection of millions, dropping an
older text index is instant but building the new one reads every video, and the indexer need not
wait for it (MongoDB's build lets writes through).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from elasticsearch import AsyncElasticsearch
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError

from services.common.catalogue import (
    MONGO_TEXT_INDEX,
    SEARCH_INDEX_VERSION,
    VIDEOS_COLLECTION,
    add_fields_in_place,
    alias_indexes,
    ensure_search_index,
    ensure_text_index,
    index_version,
    set_replicas,
)
from services.common.timefmt import utc_now
from services.indexer.es_bulk import bulk_index
from services.indexer.found_by_backfill import add_lacking_found_by
from services.indexer.mongo_documents import MONGO_SEARCH_PROJECTION
from services.indexer.reindex import delete_after_grace, reindex
from services.indexer.settings import Settings

logger = logging.getLogger(__name__)

UPGRADE_LEASE_COLLECTION = "catalogue_upgrade_lease"
# A live upgrader renews every third of this; a crashed one blocks the others this long at most.
_LEASE_SECONDS = 30.0
# How often a waiting indexer looks whether the alias moved (or the lease lapsed).
_WAIT_POLL_SECONDS = 1.0
# How often a running indexer looks for videos an older one stored without found_by.
_SWEEP_SECONDS = 60.0
# Between tries of the text index while MongoDB is out.
_TEXT_INDEX_RETRY_SECONDS = 5.0


def is_current(alias: str, index: str) -> bool:
    """True when ``index`` has the current mapping (``<alias>-vN``, N ≥ ``SEARCH_INDEX_VERSION``)."""
    version = index_version(alias, index)
    return version is not None and version >= SEARCH_INDEX_VERSION


class UpgradeLease:
    """One holder at a time per alias: a MongoDB document with an expiry, renewed while held."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]], alias: str, seconds: float = _LEASE_SECONDS) -> None:
        self._leases = db[UPGRADE_LEASE_COLLECTION]
        self._id = f"search-index {alias}"
        self._holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._ttl = timedelta(seconds=seconds)
        self.seconds = seconds

    async def acquire(self) -> bool:
        """Take the lease when free or lapsed; False while another holder has it."""
        now = utc_now()
        try:
            # The filter matches only a free or lapsed lease; a held one makes the upsert collide on _id.
            await self._leases.find_one_and_update(
                {"_id": self._id, "$or": [{"expires_at": {"$lt": now}}, {"holder": self._holder}]},
                {"$set": {"holder": self._holder, "expires_at": now + self._ttl}},
                upsert=True,
            )
        except DuplicateKeyError:
            return False
        return True

    async def renew(self) -> bool:
        result = await self._leases.update_one(
            {"_id": self._id, "holder": self._holder}, {"$set": {"expires_at": utc_now() + self._ttl}}
        )
        return result.matched_count == 1

    async def release(self) -> None:
        await self._leases.delete_one({"_id": self._id, "holder": self._holder})

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """Renew the (acquired) lease in the background until the block ends, then release it."""
        renewing = asyncio.create_task(self._keep_renewing())
        try:
            yield
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            await self.release()

    async def _keep_renewing(self) -> None:
        while True:
            await asyncio.sleep(self.seconds / 3)
            try:
                renewed = await self.renew()
            except Exception as exc:  # a missed renewal is retried; the lease outlives two of them
                logger.warning("could not renew the upgrade lease", extra={"error": str(exc)[:300]})
                continue
            if not renewed:
                # Lapsed and taken over: the other upgrader builds a newer version; both end with the
                # alias on a current index, so this one finishes its work rather than leave a half.
                logger.warning("the upgrade lease was taken over by another indexer")
                return


class CatalogueUpgrade:
    def __init__(self, settings: Settings, db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch) -> None:
        self._settings = settings
        self._db = db
        self._es = es
        self._alias = settings.elasticsearch_index
        self._lease = UpgradeLease(db, self._alias)
        self._deletions: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Bring both stores to the current catalogue (see the module docstring); idempotent."""
        waiting_logged = False
        while not is_current(self._alias, index := await self._write_index()):
            if await self._lease.acquire():
                async with self._lease.held():
                    await self._reindex_unless_done()
                continue
            if not waiting_logged:
                logger.info("waiting for another indexer to upgrade the search index", extra={"index": index})
                waiting_logged = True
            await asyncio.sleep(_WAIT_POLL_SECONDS)
        await add_fields_in_place(self._es, index)
        await set_replicas(self._es, index, self._settings.elasticsearch_replica_count)
        await self._delete_leftovers(index)
        await self._repair_stragglers()

    async def sweep_forever(self) -> None:
        """Every ``_SWEEP_SECONDS``, give ``found_by`` to videos an older indexer stored without it.

        During a rolling upgrade, indexers of the previous version keep storing videos after the
        reindex; this finds them (one index lookup when there are none) and copies them to the alias.
        """
        while True:
            await asyncio.sleep(_SWEEP_SECONDS)
            try:
                if is_current(self._alias, await self._write_index()):
                    await self._repair_stragglers()
            except Exception as exc:  # a store outage: the consumer reports it; the next round retries
                logger.debug("found_by sweep failed", extra={"error": str(exc)[:300]})

    async def build_text_index(self) -> None:
        """Drop MongoDB's older text index and build ``MONGO_TEXT_INDEX`` (a task beside the consumer).

        Tried again every few seconds while MongoDB is out; returns once the index is there.
        """
        while True:
            started = time.monotonic()
            try:
                built = await ensure_text_index(self._db)
            except PyMongoError as exc:
                logger.warning("could not build MongoDB's text index; trying again", extra={"error": str(exc)[:300]})
                await asyncio.sleep(_TEXT_INDEX_RETRY_SECONDS)
                continue
            if built:
                logger.info(
                    "MongoDB's text index built",
                    extra={"index": MONGO_TEXT_INDEX.document["name"], "seconds": round(time.monotonic() - started, 1)},
                )
            return

    async def close(self) -> None:
        """Stop waiting to delete old indexes (they stay; the next upgrade deletes them)."""
        for task in list(self._deletions):
            task.cancel()
        await asyncio.gather(*self._deletions, return_exceptions=True)

    async def _write_index(self) -> str:
        current = await alias_indexes(self._es, self._alias)
        if current:
            return current[0]
        return await ensure_search_index(self._es, self._alias, self._settings.elasticsearch_replica_count)

    async def _reindex_unless_done(self) -> None:
        index = await self._write_index()
        if is_current(self._alias, index):
            return  # another indexer finished it between our look and the lease
        logger.info("upgrading the search index", extra={"alias": self._alias, "index": index})
        report = await reindex(self._settings, self._db, self._es, progress=False, delete_old=False)
        logger.info(
            "search index upgraded",
            extra={
                "alias": self._alias,
                "index": report.new_index,
                "copied": report.copied,
                "caught_up": report.caught_up,
                "rejected": report.rejected_count,
                "seconds": round(report.seconds, 1),
            },
        )

    async def _delete_leftovers(self, write_index: str) -> None:
        """Schedule the deletion of older versions the alias left (an upgrader stopped or crashed first)."""
        current = index_version(self._alias, write_index) or 0
        found = await self._es.indices.get(index=f"{self._alias}-v*", expand_wildcards="all", allow_no_indices=True)
        behind_alias = set(await alias_indexes(self._es, self._alias))
        leftovers = [
            name
            for name in found.body
            if name not in behind_alias and (index_version(self._alias, name) or current) < current
        ]
        self._delete_later(sorted(leftovers))

    def _delete_later(self, indexes: list[str]) -> None:
        if not indexes:
            return
        grace = self._settings.reindex_old_index_grace_seconds
        task = asyncio.create_task(delete_after_grace(self._es, indexes, grace), name="delete-old-index")
        self._deletions.add(task)
        task.add_done_callback(self._deletion_done)

    def _deletion_done(self, task: asyncio.Task[None]) -> None:
        self._deletions.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("could not delete the old index", extra={"error": str(task.exception())[:300]})

    async def _repair_stragglers(self) -> None:
        await add_lacking_found_by(self._db, self._settings.reindex_batch_size, on_batch=self._copy_to_alias)
        await self._recopy_indexed_without_found_by()

    async def _recopy_indexed_without_found_by(self) -> None:
        """Copy again from MongoDB the videos the alias holds without ``found_by`` (MongoDB has it)."""
        size = self._settings.reindex_batch_size
        after: list[Any] | None = None
        recopied = 0
        while True:
            page = await self._es.search(
                index=self._alias,
                query={"bool": {"must_not": [{"exists": {"field": "found_by"}}]}},
                sort=[{"video_id": "asc"}],
                size=size,
                source=False,
                search_after=after,
            )
            hits = page["hits"]["hits"]
            if not hits:
                break
            after = hits[-1]["sort"]
            wanted = {"video_id": {"$in": [hit["_id"] for hit in hits]}, "found_by": {"$exists": True}}
            recopied += await self._copy_to_alias_where(wanted)
            if len(hits) < size:
                break
        if recopied:
            logger.info("videos indexed without found_by copied again", extra={"videos": recopied})

    async def _copy_to_alias(self, ids: list[Any]) -> None:
        await self._copy_to_alias_where({"_id": {"$in": ids}})

    async def _copy_to_alias_where(self, wanted: dict[str, Any]) -> int:
        docs = [doc async for doc in self._db[VIDEOS_COLLECTION].find(wanted, MONGO_SEARCH_PROJECTION)]
        if not docs:
            return 0
        rejected = await bulk_index(self._es, self._alias, docs, require_alias=True)
        if rejected:
            logger.warning(
                "documents Elasticsearch rejected (they stay in MongoDB)",
                extra={"count": len(rejected), "examples": dict(list(rejected.items())[:5])},
            )
        return len(docs) - len(rejected)
