"""The fetcher's state in MongoDB: per-query and per-channel progress, per-key quota state, the budgets, seen ids.

Only the leader writes, and every write is fenced: it carries the leader's lease token and
matches only a document whose stored token is not newer, so a deposed leader that wakes up late
cannot overwrite what its successor wrote.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.common.events import VideoEvent
from services.common.fetcher_state import (
    BUDGET_COLLECTION,
    CHANNEL_STATE_COLLECTION,
    KEY_STATE_COLLECTION,
    LEASE_COLLECTION,
    QUERY_STATE_COLLECTION,
    BudgetDoc,
    ChannelStateDoc,
    KeyStateDoc,
    QueryStateDoc,
    UnitsBudgetDoc,
)
from services.fetcher.lease import LeaseLostError

# Ids each query already published, kept while a later walk could meet them again.
SEEN_COLLECTION = "fetcher_seen"


class FetcherStore:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._queries = db[QUERY_STATE_COLLECTION]
        self._keys = db[KEY_STATE_COLLECTION]
        self._budget = db[BUDGET_COLLECTION]
        self._seen = db[SEEN_COLLECTION]
        self._channels = db[CHANNEL_STATE_COLLECTION]
        self.lease_collection = db[LEASE_COLLECTION]
        # The search and channel schedulers save the keys' states concurrently, each a snapshot
        # taken just before the call: written one after another in call order (the lock is FIFO),
        # an older snapshot never lands after a newer one (a disabled key saved as live).
        self._keys_lock = asyncio.Lock()

    async def ensure_indexes(self) -> None:
        await self._seen.create_indexes(
            [IndexModel([("query", ASCENDING), ("published_at", ASCENDING)], name="query_published_at")]
        )

    # Reads -----------------------------------------------------------------------------------

    async def load_query(self, query: str) -> QueryStateDoc | None:
        doc = await self._queries.find_one({"_id": query})
        return QueryStateDoc.model_validate(doc) if doc else None

    async def load_channel(self, channel_id: str) -> ChannelStateDoc | None:
        doc = await self._channels.find_one({"_id": channel_id})
        return ChannelStateDoc.model_validate(doc) if doc else None

    async def load_keys(self) -> list[KeyStateDoc]:
        return [KeyStateDoc.model_validate(doc) async for doc in self._keys.find()]

    async def load_seen(self, query: str, since: datetime) -> dict[str, datetime]:
        cursor = self._seen.find({"query": query, "published_at": {"$gte": since}}, {"video_id": 1, "published_at": 1})
        return {doc["video_id"]: doc["published_at"] async for doc in cursor}

    # Fenced writes ---------------------------------------------------------------------------

    async def save_query(self, doc: QueryStateDoc, token: int) -> None:
        await self._fenced(self._queries, doc.query, doc.model_dump(by_alias=True, exclude={"query"}), token)

    async def save_channel(self, doc: ChannelStateDoc, token: int) -> None:
        await self._fenced(self._channels, doc.channel_id, doc.model_dump(by_alias=True, exclude={"channel_id"}), token)

    async def save_units_budget(self, doc: UnitsBudgetDoc, token: int) -> None:
        await self._fenced(self._budget, doc.id, doc.model_dump(by_alias=True, exclude={"id"}), token)

    async def save_keys(self, docs: list[KeyStateDoc], token: int) -> None:
        if not docs:
            return
        writes = [
            UpdateOne(
                _fence_filter(doc.fingerprint, token),
                {"$set": {**doc.model_dump(by_alias=True, exclude={"fingerprint"}), "lease_token": token}},
                upsert=True,
            )
            for doc in docs
        ]
        try:
            async with self._keys_lock:
                await self._keys.bulk_write(writes, ordered=False)
        except BulkWriteError as exc:
            if any(error.get("code") == 11000 for error in exc.details.get("writeErrors", [])):
                raise LeaseLostError("key state write refused: a newer leader owns it") from None
            raise

    async def save_budget(self, doc: BudgetDoc, token: int) -> None:
        await self._fenced(self._budget, doc.id, doc.model_dump(by_alias=True, exclude={"id"}), token)

    async def _fenced(
        self, collection: AsyncCollection[dict[str, Any]], doc_id: str, fields: dict[str, Any], token: int
    ) -> None:
        try:
            await collection.update_one(
                _fence_filter(doc_id, token), {"$set": {**fields, "lease_token": token}}, upsert=True
            )
        except DuplicateKeyError:
            # The document exists with a newer token: a newer leader wrote it.
            raise LeaseLostError(f"state write refused: a newer leader owns {doc_id!r}") from None

    # Seen ids (idempotent; duplicates across restarts are harmless) ------------------------------

    async def add_seen(self, query: str, events: Iterable[VideoEvent]) -> None:
        writes = [
            UpdateOne(
                {"_id": f"{query}\x00{event.video_id}"},
                {"$setOnInsert": {"query": query, "video_id": event.video_id, "published_at": event.published_at}},
                upsert=True,
            )
            for event in events
        ]
        if not writes:
            return
        try:
            await self._seen.bulk_write(writes, ordered=False)
        except BulkWriteError as exc:
            # Two upserts of one new id may race into a duplicate key; the id is stored either way.
            if any(error.get("code") != 11000 for error in exc.details.get("writeErrors", [])):
                raise

    async def prune_seen(self, query: str, before: datetime) -> None:
        await self._seen.delete_many({"query": query, "published_at": {"$lt": before}})


def _fence_filter(doc_id: str, token: int) -> dict[str, Any]:
    """Matches the document unless a newer leader (a higher token) wrote it; the upsert then collides."""
    return {"_id": doc_id, "$or": [{"lease_token": {"$exists": False}}, {"lease_token": {"$lte": token}}]}
