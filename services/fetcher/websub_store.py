"""The WebSub subscriptions in MongoDB: one document a followed channel, its secret and its lease.

Every fetcher process reads them (a push or a verification may reach any of them); the leader
creates them, records its requests to the hub and their failures, and deletes them once
unsubscribed. A verification GET moves a document only when it matches a request the leader made
and that is pending (``verified``, ``unsubscribed``), so a hub cannot be answered for a topic nobody
asked for. The secret (``hub.secret``) is read only to check a push's signature; it is never logged
and never leaves this collection but in the request to the hub.

The document contract (collection, fields, state) is services/common/websub_state.py: the API's
status reads these documents too.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from services.common.websub_state import ACCEPTED, PUBLIC_PROJECTION, WEBSUB_COLLECTION, Mode, Subscription, topic_url


class WebSubStore:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._docs = db[WEBSUB_COLLECTION]

    async def ensure_indexes(self) -> None:
        await self._docs.create_index([("channel_id", ASCENDING)], unique=True)

    async def all(self) -> list[Subscription]:
        return [Subscription.from_doc(doc) async for doc in self._docs.find({}, PUBLIC_PROJECTION)]

    async def create(self, channel_id: str, now: datetime) -> None:
        """A subscription for the channel, with its own id (its callback path) and secret, unless it has one."""
        await self._docs.update_one(
            {"channel_id": channel_id},
            {
                "$setOnInsert": {
                    "_id": secrets.token_hex(16),
                    "topic": topic_url(channel_id),
                    "secret": secrets.token_urlsafe(32),
                    "created_at": now,
                    "failures": 0,
                    "pushes": {},
                }
            },
            upsert=True,
        )

    async def secret_of(self, subscription_id: str) -> tuple[str, str] | None:
        """The channel and secret of a subscription, for checking a push; None when there is none."""
        doc = await self._docs.find_one({"_id": subscription_id}, {"channel_id": 1, "secret": 1})
        if doc is None:
            return None
        return str(doc["channel_id"]), str(doc["secret"])

    async def request_secret(self, subscription_id: str) -> str | None:
        doc = await self._docs.find_one({"_id": subscription_id}, {"secret": 1})
        return str(doc["secret"]) if doc else None

    async def requested(self, subscription_id: str, mode: Mode, now: datetime) -> None:
        """The hub accepted a request (202): it awaits its verification."""
        await self._docs.update_one(
            {"_id": subscription_id}, {"$set": {"pending": {"mode": mode, "requested_at": now}, "updated_at": now}}
        )

    async def failed(self, subscription_id: str, error: str, retry_at: datetime, now: datetime) -> None:
        """A request refused, failed or never verified: tried again at ``retry_at``."""
        await self._docs.update_one(
            {"_id": subscription_id},
            {
                "$set": {"pending": None, "next_attempt_at": retry_at, "last_error": error[:300], "updated_at": now},
                "$inc": {"failures": 1},
            },
        )

    async def verified(self, subscription_id: str, topic: str, lease_seconds: float, now: datetime) -> bool:
        """A subscribe verification matching a pending request: the lease runs from now. False otherwise."""
        doc = await self._docs.find_one_and_update(
            {"_id": subscription_id, "topic": topic, "pending.mode": "subscribe"},
            {
                "$set": {
                    "pending": None,
                    "verified_at": now,
                    "lease_expires_at": now + timedelta(seconds=lease_seconds),
                    "failures": 0,
                    "next_attempt_at": None,
                    "last_error": None,
                    "updated_at": now,
                }
            },
            return_document=ReturnDocument.AFTER,
        )
        return doc is not None

    async def unsubscribed(self, subscription_id: str, topic: str) -> bool:
        """An unsubscribe verification matching a pending request: the subscription is gone. False otherwise."""
        doc = await self._docs.find_one_and_delete(
            {"_id": subscription_id, "topic": topic, "pending.mode": "unsubscribe"}
        )
        return doc is not None

    async def delete(self, subscription_id: str) -> None:
        await self._docs.delete_one({"_id": subscription_id})

    async def pushed(self, subscription_id: str, outcome: str, now: datetime) -> None:
        """Count a push of the subscription by outcome (``accepted`` or why it was ignored)."""
        update: dict[str, Any] = {"$inc": {f"pushes.{outcome}": 1}}
        if outcome == ACCEPTED:
            update["$set"] = {"last_push_at": now}
        await self._docs.update_one({"_id": subscription_id}, update)
