"""The MongoDB half of a batch: insert each event as a new video, merge those that exist already.

Most events are a video's first sighting, and a plain insert costs MongoDB a fraction of an update
pipeline; an insert that meets the unique ``video_id`` index (E11000: the video exists, possibly from
earlier in this very batch) is redone as the merging update of ``mongo_documents.merge_pipeline``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo import InsertOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, PyMongoError

from services.common.catalogue import VIDEOS_COLLECTION, ensure_mongo_indexes
from services.common.errors import StoreUnavailableError
from services.common.events import VideoEvent
from services.indexer.mongo_documents import (
    MONGO_SEARCH_PROJECTION,
    attribution_pipeline,
    merge_pipeline,
    new_document,
)
from services.indexer.mongo_errors import (
    DOCUMENT_REFUSALS,
    MONGODB,
    describe_refusal,
    is_document_refusal,
    sort_write_errors,
    unavailable,
)

Operation = InsertOne[dict[str, Any]] | UpdateOne

# Upserts of one video by two indexers can race on the unique index too; the loser retries as an
# update, which then finds the winner's document. More rounds than this mean something is wrong.
_UPSERT_ROUNDS = 3


@dataclass
class MongoWrite:
    """What MongoDB made of a batch."""

    # Videos this batch created, as written (rev 1): sent to Elasticsearch without reading them back.
    inserted: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Videos merged into an existing document: read back, since another writer may have changed them.
    updated: set[str] = field(default_factory=set)
    # Refused events by position, with the reason.
    rejected: dict[int, str] = field(default_factory=dict)


class MongoWriter:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._db = db
        self._videos = db[VIDEOS_COLLECTION]

    async def prepare(self) -> None:
        """Create the collection's indexes when missing (the unique ``video_id`` index among them).

        Not the text index, whose build on a large collection would hold up the first batch: the
        service builds it beside the consumer (``CatalogueUpgrade.build_text_index``)."""
        try:
            await ensure_mongo_indexes(self._db, text_index=False)
        except PyMongoError as exc:
            raise unavailable(exc) from exc

    async def write(
        self, events: Sequence[VideoEvent], now: datetime, text_matches: Mapping[int, Set[str]] | None = None
    ) -> MongoWrite:
        """Insert every event as a new video; merge those whose video exists into the stored one.

        ``text_matches``: by event position, the configured queries its text matches (attribution),
        written with the event itself, not by a second update."""
        result = MongoWrite()
        matches = text_matches or {}
        new_docs = [new_document(e, now, matches.get(i, frozenset())) for i, e in enumerate(events)]
        existing = await self._bulk([InsertOne(doc) for doc in new_docs], list(range(len(events))), result.rejected)
        for position, doc in enumerate(new_docs):
            if position not in existing and position not in result.rejected:
                result.inserted[doc["video_id"]] = doc
        if existing:
            await self._merge(events, existing, now, matches, result.rejected)
            result.updated = {events[p].video_id for p in existing if p not in result.rejected}
            for video_id in result.updated:
                result.inserted.pop(video_id, None)
        return result

    async def read_back(self, video_ids: Iterable[str]) -> list[dict[str, Any]]:
        """The stored documents of ``video_ids`` (search fields only), as Elasticsearch will get them."""
        wanted = sorted(video_ids)
        if not wanted:
            return []
        try:
            return [doc async for doc in self._videos.find({"video_id": {"$in": wanted}}, MONGO_SEARCH_PROJECTION)]
        except PyMongoError as exc:
            raise unavailable(exc) from exc

    async def _merge(
        self,
        events: Sequence[VideoEvent],
        positions: list[int],
        now: datetime,
        matches: Mapping[int, Set[str]],
        rejected: dict[int, str],
    ) -> None:
        """Upsert the merge of each event at ``positions`` into its stored video."""
        updates = {
            p: UpdateOne(
                {"video_id": events[p].video_id},
                merge_pipeline(events[p], now, matches.get(p, frozenset())),
                upsert=True,
            )
            for p in positions
        }
        pending = positions
        for _ in range(_UPSERT_ROUNDS):
            pending = await self._bulk([updates[p] for p in pending], pending, rejected)
            if not pending:
                return
        raise StoreUnavailableError(MONGODB, "upserts kept racing on the unique video_id index")

    async def _bulk(
        self, operations: Sequence[Operation], positions: Sequence[int], rejected: dict[int, str]
    ) -> list[int]:
        """One unordered bulk write; returns the positions that hit the unique index (E11000).

        ``positions[i]`` is the event position of ``operations[i]``; refused documents are added to
        ``rejected`` by event position.
        """
        try:
            await self._videos.bulk_write(operations, ordered=False)
            return []
        except BulkWriteError as exc:
            return sort_write_errors(exc, positions, rejected)
        except DOCUMENT_REFUSALS as exc:
            if not is_document_refusal(exc):
                raise unavailable(exc) from exc
            # One document failed the whole request (the client or the server found it too large or
            # not encodable): find the culprits one by one.
            return await self._bulk_one_by_one(operations, positions, rejected)
        except PyMongoError as exc:
            raise unavailable(exc) from exc

    async def _bulk_one_by_one(
        self, operations: Sequence[Operation], positions: Sequence[int], rejected: dict[int, str]
    ) -> list[int]:
        duplicates: list[int] = []
        for operation, position in zip(operations, positions, strict=True):
            try:
                await self._videos.bulk_write([operation], ordered=False)
            except BulkWriteError as exc:
                duplicates += sort_write_errors(exc, [position], rejected)
            except DOCUMENT_REFUSALS as exc:
                if not is_document_refusal(exc):
                    raise unavailable(exc) from exc
                rejected[position] = describe_refusal(exc)
            except PyMongoError as exc:
                raise unavailable(exc) from exc
        return duplicates


async def write_text_matches(
    db: AsyncDatabase[dict[str, Any]], docs: Sequence[Mapping[str, Any]], matched: Sequence[set[str]], now: datetime
) -> set[str]:
    """Write each document's matched queries that it does not hold yet; returns the changed video ids."""
    updates: list[UpdateOne] = []
    changed: set[str] = set()
    for doc, queries in zip(docs, matched, strict=True):
        new = queries - set(doc.get("queries") or [])
        if new:
            updates.append(UpdateOne({"video_id": doc["video_id"]}, attribution_pipeline(sorted(new), now)))
            changed.add(doc["video_id"])
    if updates:
        await db[VIDEOS_COLLECTION].bulk_write(updates, ordered=False)
    return changed
