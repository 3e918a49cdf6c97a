"""Gives ``found_by`` to the MongoDB videos stored before it existed: one search entry per query.

Such a video was found by search alone, so its ``queries`` say everything ``found_by`` would. Two
walks, in batches (each one ``update_many`` whose pipeline unions the queries' entries,
``FOUND_BY_OF_QUERIES``, into ``found_by``: a million videos are a few hundred round trips):

- ``add_lacking_found_by`` finds the videos without ``found_by`` through the ``found_by_source``
  index (their key there is null): with nothing to do it costs one index lookup, so an indexer can
  run it at every start and every minute (an indexer of the previous version may still be adding
  such videos during a rolling upgrade).
- ``complete_found_by`` walks the whole collection (or what changed since a moment) in ``_id`` order
  and also completes a ``found_by`` that misses one of the video's queries (a query an older indexer
  added after the video got ``found_by``). ``reindex`` runs it, since it reads everything anyway.

Each write bumps ``rev``, so Elasticsearch's external versions order its copy against live writes,
but leaves ``updated_at`` (the API's ``indexed_at``): how a video was found is not news, and a
reindex's catch-up, which copies what changed since its scan began, would otherwise copy every
backfilled video a second time. A reindex runs the backfill before its scan (which then reads the
completed documents) and before each catch-up (whose videos changed recently anyway); elsewhere
``on_batch`` copies each batch. Idempotent and safe next to live writers: the update re-checks its
filter per document, and the indexer's merge adds the same entries.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from services.common.catalogue import VIDEOS_COLLECTION
from services.indexer.mongo_documents import FOUND_BY_OF_QUERIES

logger = logging.getLogger(__name__)

# "found_by.source": null lets MongoDB answer from the found_by_source index; the $exists check
# (applied to the few documents the index yields) leaves a document with found_by alone.
LACKING_FOUND_BY: dict[str, Any] = {"found_by.source": None, "found_by": {"$exists": False}}
# Lacking found_by, or missing the search entry of one of its queries (not indexable: a full walk).
INCOMPLETE_FOUND_BY: dict[str, Any] = {
    "$expr": {"$not": [{"$setIsSubset": [FOUND_BY_OF_QUERIES, {"$ifNull": ["$found_by", []]}]}]}
}

# Called with the _ids of each batch once MongoDB holds their found_by (e.g. to copy them to the index).
BatchDone = Callable[[list[Any]], Awaitable[object]]


async def add_lacking_found_by(
    db: AsyncDatabase[dict[str, Any]], batch_size: int, *, on_batch: BatchDone | None = None
) -> int:
    """Give every video without ``found_by`` its search entries; returns how many were changed."""
    videos = db[VIDEOS_COLLECTION]
    started = time.monotonic()
    changed = 0
    # Each batch's documents leave the filter, so the next lookup starts on the remaining ones.
    while ids := [doc["_id"] async for doc in videos.find(LACKING_FOUND_BY, {"_id": 1}, limit=batch_size)]:
        changed += await _complete(db, ids, LACKING_FOUND_BY)
        if on_batch is not None:
            await on_batch(ids)
    _report("videos without found_by given it", changed, started)
    return changed


async def complete_found_by(
    db: AsyncDatabase[dict[str, Any]], batch_size: int, *, changed_since: datetime | None = None
) -> int:
    """Complete ``found_by`` of every video (changed since ``changed_since``); returns how many changed."""
    videos = db[VIDEOS_COLLECTION]
    started = time.monotonic()
    changed = 0
    wanted: dict[str, Any] = dict(INCOMPLETE_FOUND_BY)
    if changed_since is not None:
        wanted["updated_at"] = {"$gte": changed_since}
    last_id: Any = None
    while True:
        page = wanted if last_id is None else {**wanted, "_id": {"$gt": last_id}}
        ids = [doc["_id"] async for doc in videos.find(page, {"_id": 1}, limit=batch_size, sort=[("_id", 1)])]
        if not ids:
            break
        last_id = ids[-1]
        changed += await _complete(db, ids, INCOMPLETE_FOUND_BY)
    _report("found_by completed from queries", changed, started)
    return changed


async def _complete(db: AsyncDatabase[dict[str, Any]], ids: list[Any], still: Mapping[str, Any]) -> int:
    result = await db[VIDEOS_COLLECTION].update_many(
        {"_id": {"$in": ids}, **still},
        [
            {
                "$set": {
                    "found_by": {"$setUnion": [{"$ifNull": ["$found_by", []]}, FOUND_BY_OF_QUERIES]},
                    "rev": {"$add": [{"$ifNull": ["$rev", 0]}, 1]},
                }
            }
        ],
    )
    return result.modified_count


def _report(what: str, changed: int, started: float) -> None:
    if changed:
        logger.info(what, extra={"videos": changed, "seconds": round(time.monotonic() - started, 1)})
