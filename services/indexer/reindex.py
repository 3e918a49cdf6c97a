"""``python -m services.indexer reindex``: rebuild the search index from MongoDB with zero downtime.

1. Create ``<alias>-v(N+1)`` (at least ``SEARCH_INDEX_VERSION``) with the current mapping, refresh
   off and an asynchronous translog; complete ``found_by`` of the videos from their ``queries``
   (``found_by_backfill``; again before each catch-up, as an older indexer may still be writing).
2. Stream every video from MongoDB in ``_id`` order into it (several bulk requests in flight),
   with a progress bar showing rate and ETA.
3. Restore the refresh interval and durability, copy what changed in MongoDB during the scan, refresh.
4. Swap the alias to the new index in one atomic ``_aliases`` request: the API reads the old index
   up to that request and the new one from then on, never neither.
5. Copy again what changed since step 3 began: writes that raced the swap land in the new index
   (versions are external, so an older copy never replaces what a live indexer just wrote).
6. Delete the old index after ``REINDEX_OLD_INDEX_GRACE_SECONDS``, so the API's relevance walks
   holding a point-in-time on it end cleanly (or leave that to the caller: an indexer upgrading at
   start consumes meanwhile).

Live indexers keep writing through the alias the whole time. Also the way to rebuild Elasticsearch
after it lost its data: MongoDB is the system of record.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from elasticsearch import AsyncElasticsearch
from pymongo.asynchronous.database import AsyncDatabase
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_random_exponential
from tqdm import tqdm

from services.common.catalogue import (
    SEARCH_INDEX_VERSION,
    VIDEOS_COLLECTION,
    alias_indexes,
    create_search_index,
    ensure_mongo_indexes,
    finish_bulk_loading,
    index_version,
    versioned_index_name,
)
from services.common.errors import StoreUnavailableError
from services.common.timefmt import utc_now
from services.indexer.es_bulk import bulk_index
from services.indexer.found_by_backfill import complete_found_by
from services.indexer.mongo_documents import MONGO_SEARCH_PROJECTION
from services.indexer.settings import Settings

logger = logging.getLogger(__name__)

# A reindex is run by an operator: retry an overloaded or restarting store for a while, then fail.
_GIVE_UP_AFTER_SECONDS = 300
# Rejected documents listed in the report (all are counted).
_REJECTED_SHOWN = 20


@dataclass
class ReindexReport:
    alias: str
    new_index: str
    old_indexes: list[str]
    copied: int = 0
    caught_up: int = 0
    rejected: dict[str, str] = field(default_factory=dict)
    rejected_count: int = 0
    seconds: float = 0.0


@dataclass
class _Copy:
    copied: int = 0
    rejected: dict[str, str] = field(default_factory=dict)
    rejected_count: int = 0


async def next_index_name(es: AsyncElasticsearch, alias: str) -> str:
    """``<alias>-v(N+1)`` where N is the highest version that exists (behind the alias or not).

    Never below ``SEARCH_INDEX_VERSION``: the version names the mapping, and an upgrade checks it.
    """
    found = await es.indices.get(index=f"{alias}-v*", expand_wildcards="all", allow_no_indices=True)
    versions = [v for v in (index_version(alias, name) for name in found.body) if v is not None]
    return versioned_index_name(alias, max(max(versions, default=0) + 1, SEARCH_INDEX_VERSION))


async def reindex(
    settings: Settings,
    db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    *,
    progress: bool = True,
    on_swapped: Callable[[str], None] | None = None,
    delete_old: bool = True,
) -> ReindexReport:
    """Rebuild the index behind ``ELASTICSEARCH_INDEX`` from MongoDB; see the module docstring.

    With ``delete_old`` False the old indexes (``report.old_indexes``) are left for the caller to
    delete with ``delete_after_grace``.
    """
    started = time.monotonic()
    alias = settings.elasticsearch_index
    new_index = await next_index_name(es, alias)
    report = ReindexReport(alias=alias, new_index=new_index, old_indexes=[])
    skew = timedelta(seconds=settings.reindex_clock_skew_seconds)
    # The backfill finds its videos through an index of the current catalogue.
    await ensure_mongo_indexes(db)
    await create_search_index(es, new_index, bulk_loading=True, replicas=settings.elasticsearch_replica_count)
    logger.info("reindex started", extra={"alias": alias, "index": new_index})
    try:
        await complete_found_by(db, settings.reindex_batch_size)
        scan_started = utc_now()
        total = await db[VIDEOS_COLLECTION].estimated_document_count()
        with tqdm(
            total=total,
            unit="doc",
            unit_scale=True,
            desc=f"reindex {new_index}",
            file=sys.stderr,
            mininterval=1.0,
            disable=not progress,
        ) as bar:
            scan = await _copy(settings, db, es, new_index, {}, on_progress=bar.update)
        _merge(report, scan)
        report.copied = scan.copied
        await finish_bulk_loading(es, new_index)
        before_swap = utc_now()
        await complete_found_by(db, settings.reindex_batch_size, changed_since=scan_started - skew)
        catch_up = await _copy(settings, db, es, new_index, _changed_since(scan_started - skew))
        _merge(report, catch_up)
        await es.indices.refresh(index=new_index)
        report.old_indexes = await swap_alias(es, alias, new_index)
    except BaseException:
        # Nothing reads the half-built index: remove it, the alias still points to the old one.
        logger.exception("reindex failed before the alias swap; removing the new index", extra={"index": new_index})
        await es.indices.delete(index=new_index, ignore_unavailable=True)
        raise
    logger.info("alias swapped", extra={"alias": alias, "index": new_index, "previous": ",".join(report.old_indexes)})
    if on_swapped is not None:
        on_swapped(new_index)
    await complete_found_by(db, settings.reindex_batch_size, changed_since=before_swap - skew)
    after_swap = await _copy(settings, db, es, new_index, _changed_since(before_swap - skew))
    _merge(report, after_swap)
    report.caught_up = catch_up.copied + after_swap.copied
    if delete_old:
        await delete_after_grace(es, report.old_indexes, settings.reindex_old_index_grace_seconds)
    report.seconds = time.monotonic() - started
    if report.rejected_count:
        logger.warning(
            "documents Elasticsearch rejected (they stay in MongoDB)",
            extra={"count": report.rejected_count, "examples": report.rejected},
        )
    return report


async def delete_after_grace(es: AsyncElasticsearch, indexes: list[str], grace: float) -> None:
    """Delete ``indexes`` ``grace`` seconds from now (point-in-time searches on them end first)."""
    if not indexes:
        return
    logger.info(
        "old index kept for open point-in-time searches",
        extra={"indexes": ",".join(indexes), "delete_in_seconds": grace},
    )
    await asyncio.sleep(grace)
    # Several indexers may schedule the same deletion after an upgrade: the first one wins.
    await es.options(ignore_status=404).indices.delete(index=",".join(indexes), ignore_unavailable=True)
    logger.info("old index deleted", extra={"indexes": ",".join(indexes)})


async def swap_alias(es: AsyncElasticsearch, alias: str, new_index: str) -> list[str]:
    """Point ``alias`` at ``new_index`` alone, atomically. Returns the indexes it pointed to before."""
    old = [index for index in await alias_indexes(es, alias) if index != new_index]
    actions: list[Mapping[str, Any]] = [
        {"remove": {"index": index, "alias": alias, "must_exist": False}} for index in old
    ]
    actions.append({"add": {"index": new_index, "alias": alias, "is_write_index": True}})
    await es.indices.update_aliases(actions=actions)
    return old


def _changed_since(moment: datetime) -> dict[str, Any]:
    return {"updated_at": {"$gte": moment}}


def _merge(report: ReindexReport, copy: _Copy) -> None:
    report.rejected_count += copy.rejected_count
    for video_id, reason in copy.rejected.items():
        if len(report.rejected) < _REJECTED_SHOWN:
            report.rejected[video_id] = reason


async def _copy(
    settings: Settings,
    db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    index: str,
    query: Mapping[str, Any],
    *,
    on_progress: Callable[[int], object] | None = None,
) -> _Copy:
    """Copy the matching MongoDB documents into ``index`` with several bulk requests in flight."""
    result = _Copy()
    chunks: asyncio.Queue[list[dict[str, Any]] | None] = asyncio.Queue(maxsize=settings.reindex_concurrency * 2)

    async def read() -> None:
        try:
            # The full scan walks _id order; a catch-up (a filter on updated_at) scans the collection.
            async for chunk in iterate_documents(db, query, settings.reindex_batch_size, in_id_order=not query):
                await chunks.put(chunk)
        finally:
            for _ in range(settings.reindex_concurrency):
                await chunks.put(None)

    async def write() -> None:
        while (chunk := await chunks.get()) is not None:
            retrying = AsyncRetrying(
                retry=retry_if_exception_type(StoreUnavailableError),
                wait=wait_random_exponential(multiplier=0.5, max=10),
                stop=stop_after_delay(_GIVE_UP_AFTER_SECONDS),
                reraise=True,
            )
            rejected: dict[str, str] = await retrying(bulk_index, es, index, chunk)
            result.copied += len(chunk) - len(rejected)
            result.rejected_count += len(rejected)
            for video_id, reason in rejected.items():
                if len(result.rejected) < _REJECTED_SHOWN:
                    result.rejected[video_id] = reason
            if on_progress is not None:
                on_progress(len(chunk))

    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(read())
            for _ in range(settings.reindex_concurrency):
                group.create_task(write())
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return result


async def iterate_documents(
    db: AsyncDatabase[dict[str, Any]], query: Mapping[str, Any], batch_size: int, *, in_id_order: bool = True
) -> AsyncIterator[list[dict[str, Any]]]:
    """Stream video documents (search fields only), ``batch_size`` at a time.

    In ``_id`` order (stable under updates), every document that existed when the scan began is
    returned exactly once, with its state at the time it is read. Without it, a filtered scan runs as
    a plain collection scan instead of walking the ``_id`` index and fetching every document.
    """
    cursor = db[VIDEOS_COLLECTION].find(query, MONGO_SEARCH_PROJECTION, batch_size=batch_size)
    if in_id_order:
        cursor = cursor.sort("_id", 1)
    chunk: list[dict[str, Any]] = []
    async for doc in cursor:
        chunk.append(doc)
        if len(chunk) >= batch_size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
