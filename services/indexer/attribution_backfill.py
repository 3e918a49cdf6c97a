"""Backward attribution: a configured query new to the percolator index, percolated over the
channel-found videos published since a moment (``QueryAttribution`` starts it for the last
``AUTO_FOLLOW_WINDOW_DAYS``).

The videos are read from MongoDB in ``_id`` order, ``batch_size`` at a time, through the
``found_by_source`` index, and each batch costs one percolate request restricted to the new queries;
those that match are written to MongoDB (``mongo_writer.write_text_matches``) and copied to the catalogue
alias. Idempotent: a query a video already holds is left as it is, so running it twice (two indexers
starting together) changes nothing more.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

from elasticsearch import AsyncElasticsearch
from pymongo.asynchronous.database import AsyncDatabase

from services.common.catalogue import VIDEOS_COLLECTION
from services.common.timefmt import truncate_to_ms, utc_now
from services.indexer.es_bulk import bulk_index
from services.indexer.mongo_documents import MONGO_SEARCH_PROJECTION
from services.indexer.mongo_writer import write_text_matches
from services.indexer.percolator import QueryPercolator

logger = logging.getLogger(__name__)


async def attribute_backwards(
    db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    alias: str,
    percolator: QueryPercolator,
    queries: list[str],
    *,
    since: datetime,
    batch_size: int,
) -> int:
    """Attribute ``queries`` to the channel-found videos published since ``since``; returns how many changed."""
    videos = db[VIDEOS_COLLECTION]
    started = time.monotonic()
    wanted: dict[str, Any] = {"found_by.source": "channel", "published_at": {"$gte": since}}
    last_id: Any = None
    changed_count = scanned = 0
    while True:
        page = wanted if last_id is None else {**wanted, "_id": {"$gt": last_id}}
        projection = {**MONGO_SEARCH_PROJECTION, "_id": 1}
        docs = [doc async for doc in videos.find(page, projection, limit=batch_size, sort=[("_id", 1)])]
        if not docs:
            break
        last_id = docs[-1]["_id"]
        scanned += len(docs)
        matched = await percolator.matches(docs, only=queries)
        changed = await write_text_matches(db, docs, matched, truncate_to_ms(utc_now()))
        if changed:
            stored = [doc async for doc in videos.find({"video_id": {"$in": sorted(changed)}}, MONGO_SEARCH_PROJECTION)]
            rejected = await bulk_index(es, alias, stored, require_alias=True)
            if rejected:
                logger.warning(
                    "documents Elasticsearch rejected (they stay in MongoDB)",
                    extra={"count": len(rejected), "examples": dict(list(rejected.items())[:5])},
                )
            changed_count += len(changed)
    logger.info(
        "queries attributed backwards",
        extra={
            "queries": ",".join(queries),
            "scanned": scanned,
            "videos": changed_count,
            "seconds": round(time.monotonic() - started, 1),
        },
    )
    return changed_count
