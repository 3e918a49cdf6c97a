"""The MongoDB half of a removal (``VideoRemoved``, from a tombstone): mark the stored video removed.

The rule, whatever order a video's snapshots and removals arrive in: the video is removed when its
latest removal is at least as recent as its latest snapshot (``removed_at`` ≥ ``fetched_at``), and
found again when a snapshot fetched after ``removed_at`` arrives (the merge pipeline of
``mongo_documents`` then drops ``removed_at``). So a removal older than the stored snapshot changes
nothing (the video was seen after it), a late old snapshot does not undo a removal, and of several
removals the latest is kept. A removal of a video the catalogue does not hold changes nothing: there
is nothing to hide.

A removal that applies bumps ``rev`` and ``updated_at`` like every write, so the Elasticsearch copy
follows with the new external version. Every removal's stored document is read back and copied, even
one that changed nothing (delivered twice, or MongoDB took it before Elasticsearch failed), so a
retried batch completes what the first attempt left half done.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, PyMongoError

from services.common.catalogue import REMOVED_AT_FIELD, VIDEOS_COLLECTION
from services.common.events import VideoRemoved
from services.common.timefmt import truncate_to_ms
from services.indexer.mongo_documents import MONGO_SEARCH_PROJECTION
from services.indexer.mongo_errors import sort_write_errors, unavailable


def removal_update(removal: VideoRemoved, now: datetime) -> UpdateOne:
    """Mark the video removed at ``removal.removed_at`` unless a later snapshot or removal is stored."""
    # Milliseconds, as MongoDB stores them, so that the comparisons here hold for what is stored.
    when = truncate_to_ms(removal.removed_at)
    return UpdateOne(
        {"video_id": removal.video_id, "fetched_at": {"$lte": when}, REMOVED_AT_FIELD: {"$not": {"$gte": when}}},
        {"$set": {REMOVED_AT_FIELD: when, "updated_at": now}, "$inc": {"rev": 1}},
    )


async def mark_removed(
    db: AsyncDatabase[dict[str, Any]], removals: Sequence[VideoRemoved], now: datetime
) -> tuple[list[dict[str, Any]], dict[int, str]]:
    """Apply ``removals``; returns the stored documents of their videos (search fields, for
    Elasticsearch) and the refused removals by position, with the reason."""
    videos = db[VIDEOS_COLLECTION]
    rejected: dict[int, str] = {}
    try:
        await videos.bulk_write([removal_update(removal, now) for removal in removals], ordered=False)
    except BulkWriteError as exc:
        sort_write_errors(exc, range(len(removals)), rejected)
    except PyMongoError as exc:
        raise unavailable(exc) from exc
    wanted = sorted({removal.video_id for position, removal in enumerate(removals) if position not in rejected})
    if not wanted:
        return [], rejected
    try:
        docs = [doc async for doc in videos.find({"video_id": {"$in": wanted}}, MONGO_SEARCH_PROJECTION)]
    except PyMongoError as exc:
        raise unavailable(exc) from exc
    return docs, rejected
