"""Writes batches of video events into MongoDB (system of record), then Elasticsearch.

Idempotence: MongoDB's upsert keys on ``video_id``; a snapshot older than the stored one
(``fetched_at``) leaves the video's fields alone but still merges the query that found it.
Every write bumps ``rev``; Elasticsearch receives the merged MongoDB document with
``version=rev, version_type=external_gte``, so a slower concurrent indexer can never replace
a newer document with an older one.

Failures are sorted into two kinds. A store that cannot take the batch right now (unreachable,
timing out, overloaded, not primary, read-only) raises ``StoreUnavailableError``: the caller keeps
the messages and retries the whole batch later, which is safe because every write is idempotent.
A document a store refuses on its merits (a mapping error, a validation failure, a 400) comes back
as that event's rejection reason; only those count as a failed attempt of the message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import pydantic_core
from bson.errors import InvalidDocument
from elasticsearch import ApiError, AsyncElasticsearch, TransportError
from pymongo import InsertOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DocumentTooLarge, OperationFailure, PyMongoError

from services.common.catalogue import (
    SEARCH_DOCUMENT_FIELDS,
    VIDEOS_COLLECTION,
    ensure_mongo_indexes,
    ensure_search_index,
)
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

# What is read back from MongoDB to build the Elasticsearch document. ``indexed_at`` in the index is
# the MongoDB ``updated_at`` of the write, so a reindex reproduces it exactly (the API's walks rely on it).
MONGO_SEARCH_PROJECTION: dict[str, Any] = {
    "_id": 0,
    "updated_at": 1,
    **{name: 1 for name in SEARCH_DOCUMENT_FIELDS if name != "indexed_at"},
}

# MongoDB error codes that mean "the server cannot write now", never "this document is bad":
# the retryable-writes and not-primary codes of the drivers' specs, plus conflicts and lock/time limits.
MONGO_OUTAGE_CODES = frozenset(
    {
        6,  # HostUnreachable
        7,  # HostNotFound
        24,  # LockTimeout
        46,  # LockBusy
        50,  # MaxTimeMSExpired
        64,  # WriteConcernFailed
        89,  # NetworkTimeout
        91,  # ShutdownInProgress
        112,  # WriteConflict
        133,  # FailedToSatisfyReadPreference
        134,  # ReadConcernMajorityNotAvailableYet
        189,  # PrimarySteppedDown
        262,  # ExceededTimeLimit
        9001,  # SocketException
        10058,  # LegacyNotPrimary
        10107,  # NotWritablePrimary
        11600,  # InterruptedAtShutdown
        11602,  # InterruptedDueToReplStateChange
        13435,  # NotPrimaryNoSecondaryOk
        13436,  # NotPrimaryOrSecondary
        14031,  # OutOfDiskSpace
    }
)
_DUPLICATE_KEY = 11000
# Whole-request failures caused by one document's size: BSONObjectTooLarge, and an update whose result
# would exceed the limit. Any other failure of a whole request is treated as an outage (it could be a
# revoked permission or a server problem: never a reason to dead-letter a batch).
_TOO_LARGE_CODES = frozenset({10334, 17419})

# Elasticsearch item errors that describe the cluster's state, not the document.
ES_OUTAGE_ERROR_TYPES = frozenset(
    {
        "cluster_block_exception",  # e.g. read-only after the disk flood stage
        "index_not_found_exception",  # the alias is gone (require_alias): recreate it, then retry
        "index_closed_exception",
        "unavailable_shards_exception",
        "es_rejected_execution_exception",
        "circuit_breaking_exception",
        "no_shard_available_action_exception",
    }
)


class StoreUnavailableError(Exception):
    """A store could not take the batch right now (outage, overload); retry the whole batch later."""

    def __init__(self, store: str, detail: str) -> None:
        super().__init__(f"{store}: {detail}")
        self.store = store


# Called with ("mongodb" | "elasticsearch", seconds) after each store's part of a batch.
StoreTimer = Callable[[str, float], None]


class VideoWriter:
    def __init__(
        self, db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, alias: str, timer: StoreTimer | None = None
    ) -> None:
        self._db = db
        self._videos = db[VIDEOS_COLLECTION]
        self._es = es
        self._alias = alias
        self._timer = timer
        self._prepared = False

    async def prepare(self) -> None:
        """Create MongoDB's indexes and the search index behind the alias when missing.

        Runs before the first batch, and again after Elasticsearch reported the alias missing
        (e.g. it lost its data): writes then go to a fresh index, and ``reindex`` refills it.
        """
        try:
            await ensure_mongo_indexes(self._db)
        except PyMongoError as exc:
            raise StoreUnavailableError("mongodb", f"{type(exc).__name__}: {exc}") from exc
        try:
            await ensure_search_index(self._es, self._alias)
        except (TransportError, ApiError) as exc:
            raise StoreUnavailableError("elasticsearch", f"{type(exc).__name__}: {exc}") from exc
        self._prepared = True

    async def write_batch(self, events: Sequence[VideoEvent]) -> list[str | None]:
        """Store the events in MongoDB, then mirror the merged documents into Elasticsearch.

        Returns, per event, None when both stores hold it or the reason a store rejected it.
        Raises StoreUnavailableError when either store is unreachable or overloaded; nothing is
        lost then, because the caller has not acknowledged the messages.
        """
        if not events:
            return []
        if not self._prepared:
            await self.prepare()
        now = to_millis(utc_now())
        started = time.perf_counter()
        written = await self._write_mongo(events, now)
        docs = list(written.inserted.values())
        if written.updated:
            try:
                docs += [
                    doc
                    async for doc in self._videos.find(
                        {"video_id": {"$in": sorted(written.updated)}}, MONGO_SEARCH_PROJECTION
                    )
                ]
            except PyMongoError as exc:
                raise StoreUnavailableError("mongodb", f"{type(exc).__name__}: {exc}") from exc
        search_started = time.perf_counter()
        if self._timer is not None:
            self._timer("mongodb", search_started - started)
        try:
            search_rejected = await bulk_index(self._es, self._alias, docs, require_alias=True)
        except StoreUnavailableError as exc:
            if "index_not_found_exception" in str(exc):
                self._prepared = False
            raise
        if self._timer is not None:
            self._timer("elasticsearch", time.perf_counter() - search_started)
        return [written.rejected.get(i) or search_rejected.get(e.video_id) for i, e in enumerate(events)]

    async def _write_mongo(self, events: Sequence[VideoEvent], now: datetime) -> _MongoWrite:
        """Insert every event as a new video; merge those whose video exists into the stored one.

        Most events are a video's first sighting, and a plain insert costs MongoDB a fraction of an
        update pipeline; an insert that meets the unique index (E11000: the video exists, possibly
        from earlier in this very batch) is redone as the merging update.
        """
        result = _MongoWrite()
        new_docs = [new_document(e, now) for e in events]
        existing = await self._bulk([InsertOne(doc) for doc in new_docs], list(range(len(events))), result.rejected)
        for position, doc in enumerate(new_docs):
            if position not in existing and position not in result.rejected:
                result.inserted[doc["video_id"]] = doc
        if existing:
            pending = existing
            updates = [UpdateOne({"video_id": e.video_id}, _merge_pipeline(e, now), upsert=True) for e in events]
            # Upserts of one video by two indexers can race on the unique index too; the loser retries
            # as an update, which then finds the winner's document.
            for _ in range(3):
                pending = await self._bulk([updates[p] for p in pending], pending, result.rejected)
                if not pending:
                    break
            else:
                raise StoreUnavailableError("mongodb", "upserts kept racing on the unique video_id index")
            result.updated = {events[p].video_id for p in existing if p not in result.rejected}
            for video_id in result.updated:
                result.inserted.pop(video_id, None)
        return result

    async def _bulk(
        self,
        operations: Sequence[InsertOne[dict[str, Any]] | UpdateOne],
        positions: Sequence[int],
        rejected: dict[int, str],
    ) -> list[int]:
        """One unordered bulk write; returns the positions that hit the unique index (E11000).

        ``positions[i]`` is the event position of ``operations[i]``; refused documents are added to
        ``rejected`` by event position.
        """
        try:
            await self._videos.bulk_write(operations, ordered=False)
            return []
        except BulkWriteError as exc:
            return _sort_write_errors(exc, positions, rejected)
        except (DocumentTooLarge, InvalidDocument, OperationFailure) as exc:
            if isinstance(exc, OperationFailure) and exc.code not in _TOO_LARGE_CODES:
                raise StoreUnavailableError("mongodb", f"{type(exc).__name__}: {exc}") from exc
            # One document failed the whole request (the client or the server found it too large or
            # not encodable): find the culprits one by one.
            duplicates: list[int] = []
            for operation, position in zip(operations, positions, strict=True):
                try:
                    await self._videos.bulk_write([operation], ordered=False)
                except BulkWriteError as one_exc:
                    duplicates += _sort_write_errors(one_exc, [position], rejected)
                except (DocumentTooLarge, InvalidDocument, OperationFailure) as one_exc:
                    if isinstance(one_exc, OperationFailure) and one_exc.code not in _TOO_LARGE_CODES:
                        raise StoreUnavailableError("mongodb", f"{type(one_exc).__name__}: {one_exc}") from one_exc
                    rejected[position] = _describe_refusal(one_exc)
                except PyMongoError as one_exc:
                    raise StoreUnavailableError("mongodb", f"{type(one_exc).__name__}: {one_exc}") from one_exc
            return duplicates
        except PyMongoError as exc:
            raise StoreUnavailableError("mongodb", f"{type(exc).__name__}: {exc}") from exc


def _describe_refusal(exc: Exception) -> str:
    if isinstance(exc, OperationFailure):
        details = exc.details or {}
        return f"mongodb {exc.code} {details.get('codeName', '')}: {details.get('errmsg', exc)}"[:500]
    return f"mongodb: {type(exc).__name__}: {exc}"[:500]


def _sort_write_errors(exc: BulkWriteError, positions: Sequence[int], rejected: dict[int, str]) -> list[int]:
    """Outage codes raise; E11000 positions are returned for a retry as update; the rest are rejected."""
    _raise_if_mongo_outage(exc.details.get("writeConcernErrors", []))
    errors = exc.details.get("writeErrors", [])
    _raise_if_mongo_outage(errors)
    duplicates: list[int] = []
    for error in errors:
        position = positions[error["index"]]
        if error.get("code") == _DUPLICATE_KEY:
            duplicates.append(position)
        else:
            rejected[position] = f"mongodb {error.get('code')}: {error.get('errmsg', '')}"[:500]
    return sorted(duplicates)


@dataclass
class _MongoWrite:
    # Videos this batch created, as written (rev 1): sent to Elasticsearch without reading them back.
    inserted: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Videos merged into an existing document: read back, since another writer may have changed them.
    updated: set[str] = field(default_factory=set)
    # Refused events by position, with the reason.
    rejected: dict[int, str] = field(default_factory=dict)


def new_document(event: VideoEvent, now: datetime) -> dict[str, Any]:
    """The MongoDB document of a video's first snapshot: what the merge pipeline makes of nothing."""
    doc: dict[str, Any] = {name: getattr(event, name) for name in _SNAPSHOT_FIELDS}
    doc["thumbnails"] = {name: thumb.model_dump() for name, thumb in event.thumbnails.items()}
    doc |= {"video_id": event.video_id, "queries": [event.query], "first_seen_at": now, "updated_at": now, "rev": 1}
    # MongoDB keeps milliseconds: the copy sent to Elasticsearch must equal what a read (or a reindex)
    # of the stored document gives.
    for name in ("published_at", "fetched_at"):
        doc[name] = to_millis(doc[name])
    return doc


def to_millis(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _raise_if_mongo_outage(errors: Sequence[Mapping[str, Any]]) -> None:
    for error in errors:
        code = error.get("code")
        if code in MONGO_OUTAGE_CODES or (code is not None and "writeConcern" in str(error.get("errInfo", ""))):
            raise StoreUnavailableError("mongodb", f"{code}: {error.get('errmsg', '')}")


def search_source(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The Elasticsearch document for a MongoDB video document (read with MONGO_SEARCH_PROJECTION)."""
    source = {name: doc.get(name) for name in SEARCH_DOCUMENT_FIELDS}
    source["indexed_at"] = doc.get("updated_at")
    return source


# aiohttp warns (ResourceWarning) about request bodies over 1 MiB; a bulk request is split to stay under.
MAX_BULK_BYTES = 2**20


def bulk_bodies(target: str, docs: Iterable[Mapping[str, Any]], max_bytes: int = MAX_BULK_BYTES) -> Iterator[bytes]:
    """NDJSON bulk bodies indexing ``docs`` into ``target`` with ``rev`` as external version.

    Serialised by pydantic-core (Rust): several times faster than the client's json module, which
    matters at thousands of documents a second. Each body stays under ``max_bytes`` unless a single
    document is larger.
    """
    lines: list[bytes] = []
    size = 0
    for doc in docs:
        action = {
            "index": {
                "_index": target,
                "_id": doc["video_id"],
                "version": int(doc["rev"]),
                "version_type": "external_gte",
            }
        }
        pair = pydantic_core.to_json(action) + b"\n" + pydantic_core.to_json(search_source(doc)) + b"\n"
        if lines and size + len(pair) > max_bytes:
            yield b"".join(lines)
            lines, size = [], 0
        lines.append(pair)
        size += len(pair)
    if lines:
        yield b"".join(lines)


async def bulk_index(
    es: AsyncElasticsearch, target: str, docs: Sequence[Mapping[str, Any]], *, require_alias: bool = False
) -> dict[str, str]:
    """Index ``docs`` (in as few bulk requests as the size limit allows); returns rejections by video id.

    A 409 (a newer revision is already there) counts as stored. Raises StoreUnavailableError when
    a request fails as a whole or any item failed because of the cluster's state.
    ``require_alias`` stops Elasticsearch from auto-creating a concrete index named like the alias
    (with a guessed mapping) when the alias is missing.
    """
    rejected: dict[str, str] = {}
    for body in bulk_bodies(target, docs):
        rejected |= await _send_bulk(es, body, require_alias=require_alias)
    return rejected


async def _send_bulk(es: AsyncElasticsearch, body: bytes, *, require_alias: bool) -> dict[str, str]:
    try:
        response = await es.bulk(
            operations=cast(Any, body), require_alias=require_alias or None, filter_path=_BULK_FILTER
        )
    except (TransportError, ApiError) as exc:
        raise StoreUnavailableError("elasticsearch", f"{type(exc).__name__}: {str(exc)[:300]}") from exc
    rejected: dict[str, str] = {}
    if not response.get("errors"):
        return rejected
    outage: list[str] = []
    for item in response["items"]:
        info = item.get("index", {})
        status = int(info.get("status", 0))
        if status < 300 or status == 409:
            continue
        error = info.get("error") or {}
        error_type = error.get("type") if isinstance(error, dict) else str(error)
        reason = _describe_item_error(status, error)
        if status == 429 or status >= 500 or error_type in ES_OUTAGE_ERROR_TYPES:
            outage.append(reason)
        else:
            rejected[str(info.get("_id"))] = reason
    if outage:
        raise StoreUnavailableError("elasticsearch", f"{len(outage)} documents refused, e.g. {outage[0]}")
    return rejected


# Only what classification needs: a 500-item response is parsed in full otherwise.
_BULK_FILTER = "errors,items.*.status,items.*._id,items.*.error.type,items.*.error.reason,items.*.error.caused_by"


def _describe_item_error(status: int, error: Any) -> str:
    if isinstance(error, dict):
        text = f"elasticsearch {status}: {error.get('type')}: {error.get('reason')}"
        cause = error.get("caused_by")
        if isinstance(cause, dict):
            text += f" (caused by {cause.get('type')}: {cause.get('reason')})"
        return text[:1000]
    return f"elasticsearch {status}: {error}"[:1000]


def _merge_pipeline(event: VideoEvent, now: datetime) -> list[dict[str, Any]]:
    """An update pipeline that merges one snapshot into the stored document atomically."""
    snapshot = {name: getattr(event, name) for name in _SNAPSHOT_FIELDS}
    snapshot["thumbnails"] = {name: thumb.model_dump() for name, thumb in event.thumbnails.items()}
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
