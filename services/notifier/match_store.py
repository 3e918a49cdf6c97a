"""``MatchStore``: the (saved search, video) matches, so a video is delivered at most once per saved search.

Collection ``saved_search_matches``, one document per match, keyed by its delivery id (a hash of
the saved search's id and the video's id, ``deliveries.delivery_id_for``): the ``_id`` index is the
unique index that makes a match new exactly once, whichever notifier records it first, however
often the video is stored again. ``queued_at`` is set once the match's delivery request is
confirmed by RabbitMQ; a match recorded without it (the notifier died between the two) is queued
again when its stored event is redelivered, so a crash loses no delivery.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from services.notifier.deliveries import delivery_id_for

MATCHES_COLLECTION = "saved_search_matches"
_DUPLICATE_KEY = 11000


@dataclass(frozen=True)
class Match:
    saved_search_id: str
    video_id: str

    @property
    def delivery_id(self) -> str:
        return delivery_id_for(self.saved_search_id, self.video_id)


class MatchStore:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._matches = db[MATCHES_COLLECTION]

    async def prepare(self) -> None:
        # Listing or cleaning up one saved search's matches without a collection scan.
        await self._matches.create_indexes([IndexModel([("saved_search_id", ASCENDING)], name="saved_search_id")])

    async def record(self, matches: Sequence[Match], now: datetime) -> tuple[list[Match], int]:
        """Record ``matches``; returns those to deliver (new ones, and any earlier one whose delivery
        was never confirmed queued) and how many were delivered before."""
        unique = list({match.delivery_id: match for match in matches}.values())
        if not unique:
            return [], 0
        documents = [
            {
                "_id": match.delivery_id,
                "saved_search_id": match.saved_search_id,
                "video_id": match.video_id,
                "matched_at": now,
                "queued_at": None,
            }
            for match in unique
        ]
        existing: set[int] = set()
        try:
            await self._matches.insert_many(documents, ordered=False)
        except BulkWriteError as exc:
            for error in exc.details.get("writeErrors", []):
                if error.get("code") != _DUPLICATE_KEY:
                    raise
                existing.add(int(error["index"]))
        if not existing:
            return unique, 0
        earlier = [unique[position].delivery_id for position in existing]
        unqueued = {
            doc["_id"] async for doc in self._matches.find({"_id": {"$in": earlier}, "queued_at": None}, {"_id": 1})
        }
        to_deliver = [
            match for position, match in enumerate(unique) if position not in existing or match.delivery_id in unqueued
        ]
        return to_deliver, len(existing) - len(unqueued)

    async def mark_queued(self, matches: Sequence[Match], now: datetime) -> None:
        if matches:
            await self._matches.update_many(
                {"_id": {"$in": [match.delivery_id for match in matches]}}, {"$set": {"queued_at": now}}
            )
