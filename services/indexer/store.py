"""Writes batches of video events into MongoDB (system of record), then Elasticsearch.

Idempotence: MongoDB's upsert keys on ``video_id``; a snapshot older than the stored one
(``fetched_at``) leaves the video's fields alone but still merges the query that found it.
Every write bumps ``rev``; Elasticsearch receives the merged MongoDB document with
``version=rev, version_type=external_gte``, so a slower concurrent indexer can never replace
a newer document with an older one.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from elasticsearch import ApiError, AsyncElasticsearch, TransportError
from elasticsearch.helpers import async_streaming_bulk
from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, PyMongoError

from services.common.catalogue import SEARCH_DOCUMENT_FIELDS, VIDEOS_COLLECTION
from services.common.events import VideoEvent
from services.common.timefmt import utc_now

logger = logging.getLogger(__name__)

# Fields a newer snapshot replaces. Query membership and first/updated times are merged separately.
_SNAPSHOT_FIELDS = (
    "title",
    "description",
    "published_at",
    "channel_id",
    "channel_title",
    "thumbnails",
    "live_broadcast_content",
    "duration_seconds",
    "view_count",
    "like_count",
    "tags",
    "fetched_at",
)
# Enrichment a snapshot may lack (e.g. videos.list failed): keep what is known instead of nulling it.
_KEEP_WHEN_MISSING = frozenset({"duration_seconds", "view_count", "like_count", "tags"})
# HTTP statuses of a bulk item that mean "the store is overloaded", not "this document is bad".
_TRANSIENT_ITEM_STATUSES = frozenset({429, 500, 502, 503, 504})


class StoreUnavailableError(Exception):
    """A store could not take the batch right now (outage, overload); retry the whole batch later."""


@dataclass
class BatchResult:
    """Per video id: the reason each rejected document was refused (absent means stored)."""

    rejected: dict[str, str] = field(default_factory=dict)


class VideoWriter:
    def __init__(self, db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, alias: str) -> None:
        self._videos = db[VIDEOS_COLLECTION]
        self._es = es
        self._alias = alias

    async def write_batch(self, events: Sequence[VideoEvent]) -> BatchResult:
        """Store the events in MongoDB, then mirror the merged documents into Elasticsearch.

        Raises StoreUnavailableError when either store is unreachable or overloaded; nothing is
        lost then, because the caller has not acknowledged the messages.
        """
        result = BatchResult()
        if not events:
            return result
        now = utc_now()
        await self._write_mongo(events, now)
        ids = sorted({e.video_id for e in events})
        docs = [doc async for doc in self._videos.find({"video_id": {"$in": ids}}, {"_id": 0})]
        for doc in docs:
            doc["indexed_at"] = now
        result.rejected.update(await self._write_search(docs))
        return result

    async def _write_mongo(self, events: Sequence[VideoEvent], now: datetime) -> None:
        operations = [UpdateOne({"video_id": e.video_id}, _merge_pipeline(e, now), upsert=True) for e in events]
        try:
            await self._videos.bulk_write(operations, ordered=False)
        except BulkWriteError as exc:
            # Concurrent upserts of one new video can race on the unique index (E11000); the loser
            # simply retries as an update. Any other write error is an outage for this batch.
            errors = exc.details.get("writeErrors", [])
            if errors and all(err.get("code") == 11000 for err in errors):
                retry = [operations[err["index"]] for err in errors]
                try:
                    await self._videos.bulk_write(retry, ordered=False)
                except PyMongoError as retry_exc:
                    raise StoreUnavailableError(f"mongodb: {retry_exc}") from retry_exc
            else:
                raise StoreUnavailableError(f"mongodb: {exc}") from exc
        except PyMongoError as exc:
            raise StoreUnavailableError(f"mongodb: {type(exc).__name__}: {exc}") from exc

    async def _write_search(self, docs: Sequence[dict[str, Any]]) -> dict[str, str]:
        rejected: dict[str, str] = {}
        transient: list[str] = []
        try:
            async for ok, item in async_streaming_bulk(
                self._es,
                _index_actions(self._alias, docs),
                chunk_size=500,
                raise_on_error=False,
                raise_on_exception=False,
                max_retries=0,
            ):
                if ok:
                    continue
                info = item.get("index", {})
                status = int(info.get("status", 0))
                video_id = str(info.get("_id"))
                if status == 409:
                    continue  # a newer revision is already there: nothing to do
                if status in _TRANSIENT_ITEM_STATUSES or status == 0:
                    transient.append(video_id)
                else:
                    rejected[video_id] = _describe_item_error(info)
        except (TransportError, ApiError) as exc:
            raise StoreUnavailableError(f"elasticsearch: {type(exc).__name__}: {exc}") from exc
        if transient:
            raise StoreUnavailableError(f"elasticsearch: {len(transient)} documents refused as overloaded")
        return rejected


async def _index_actions(alias: str, docs: Sequence[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    for doc in docs:
        yield {
            "_op_type": "index",
            "_index": alias,
            "_id": doc["video_id"],
            "version": int(doc["rev"]),
            "version_type": "external_gte",
            "_source": {name: doc.get(name) for name in SEARCH_DOCUMENT_FIELDS},
        }


def _describe_item_error(info: dict[str, Any]) -> str:
    error = info.get("error")
    if isinstance(error, dict):
        return f"elasticsearch {info.get('status')}: {error.get('type')}: {error.get('reason')}"
    return f"elasticsearch {info.get('status')}: {error}"


def _merge_pipeline(event: VideoEvent, now: datetime) -> list[dict[str, Any]]:
    """An update pipeline that merges one snapshot into the stored document atomically."""
    snapshot = event.model_dump(include=set(_SNAPSHOT_FIELDS), mode="python")
    snapshot["thumbnails"] = {name: thumb for name, thumb in snapshot["thumbnails"].items()}
    is_newer = {
        "$or": [
            {"$eq": [{"$type": "$fetched_at"}, "missing"]},
            {"$gte": [{"$literal": event.fetched_at}, "$fetched_at"]},
        ]
    }
    fields: dict[str, Any] = {}
    for name in _SNAPSHOT_FIELDS:
        # $literal: stored text must never be read as an expression (a title may start with "$").
        value: Any = {"$literal": snapshot[name]}
        if name in _KEEP_WHEN_MISSING and snapshot[name] is None:
            value = {"$ifNull": [f"${name}", None]}
        fields[name] = {"$cond": [is_newer, value, f"${name}"]}
    return [
        {
            "$set": {
                **fields,
                "video_id": {"$literal": event.video_id},
                "queries": {"$setUnion": [{"$ifNull": ["$queries", []]}, [{"$literal": event.query}]]},
                "first_seen_at": {"$ifNull": ["$first_seen_at", {"$literal": now}]},
                "updated_at": {"$literal": now},
                "rev": {"$add": [{"$ifNull": ["$rev", 0]}, 1]},
            }
        }
    ]
