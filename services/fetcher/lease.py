"""The leader lease: one document in MongoDB elects the one fetcher that polls.

Expiry is judged by MongoDB's own clock (``$$NOW``), so fetchers on machines whose clocks
disagree still agree on who leads. The holder trusts its lease only until a local monotonic
deadline a margin short of the expiry it wrote: a leader frozen past its TTL (SIGSTOP, a long
GC pause) wakes with that deadline behind it and stands down before its next call or publish.
The fencing token grows with every change of holder; every state write carries it, and MongoDB
refuses a write whose token is older than the one already stored.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection

from services.common.fetcher_state import LEASE_ID

logger = logging.getLogger(__name__)


class LeaseLostError(Exception):
    """This fetcher is not (or no longer) the leader: it must not call YouTube or publish."""


def make_holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaderLease:
    def __init__(
        self,
        collection: AsyncCollection[dict[str, Any]],
        holder: str,
        ttl_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._collection = collection
        self.holder = holder
        self._ttl = ttl_seconds
        # Trust the lease a little less long than MongoDB grants it (clock rates, request latency).
        self._margin = min(1.0, ttl_seconds * 0.2)
        self._monotonic = monotonic
        self._deadline = float("-inf")
        self.token: int | None = None

    @property
    def ttl_seconds(self) -> float:
        return self._ttl

    def held(self) -> bool:
        return self.token is not None and self._monotonic() < self._deadline

    def check(self) -> int:
        """The fencing token, or LeaseLostError if the lease may have passed to someone else."""
        if self.token is None or self._monotonic() >= self._deadline:
            raise LeaseLostError("this fetcher does not hold the leader lease")
        return self.token

    async def try_acquire(self) -> bool:
        """Take the lease if it is free or expired (or renew it if already ours).

        One atomic upsert: every field changes only when the lease is free (``$cond``), because
        MongoDB allows no ``$expr`` in an upsert's filter.
        """
        started = self._monotonic()
        free = {
            "$or": [
                {"$eq": [{"$type": "$holder"}, "missing"]},
                {"$eq": ["$holder", self.holder]},
                {"$lt": ["$expires_at", "$$NOW"]},
            ]
        }
        next_token = {"$cond": [{"$eq": ["$holder", self.holder]}, "$token", {"$add": [{"$ifNull": ["$token", 0]}, 1]}]}
        doc = await self._collection.find_one_and_update(
            {"_id": LEASE_ID},
            [
                {"$set": {"_free": free}},
                {
                    "$set": {
                        "token": {"$cond": ["$_free", next_token, "$token"]},
                        "holder": {"$cond": ["$_free", self.holder, "$holder"]},
                        "expires_at": {"$cond": ["$_free", {"$add": ["$$NOW", int(self._ttl * 1000)]}, "$expires_at"]},
                        "renewed_at": {"$cond": ["$_free", "$$NOW", "$renewed_at"]},
                    }
                },
                {"$unset": "_free"},
            ],
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        return self._took(doc, started)

    async def renew(self) -> bool:
        """Extend our lease; False (and standing down) when it is no longer ours."""
        if self.token is None:
            return False
        started = self._monotonic()
        doc = await self._collection.find_one_and_update(
            {"_id": LEASE_ID, "holder": self.holder, "token": self.token},
            [{"$set": {"expires_at": {"$add": ["$$NOW", int(self._ttl * 1000)]}, "renewed_at": "$$NOW"}}],
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            logger.warning("lost the leader lease", extra={"holder": self.holder, "token": self.token})
            self.token = None
            self._deadline = float("-inf")
            return False
        return self._took(doc, started)

    async def release(self) -> None:
        """Let a standby take over at once (graceful stop): expire the lease, keep its token."""
        if self.token is None:
            return
        token, self.token = self.token, None
        self._deadline = float("-inf")
        await self._collection.update_one(
            {"_id": LEASE_ID, "holder": self.holder, "token": token},
            [{"$set": {"expires_at": "$$NOW", "renewed_at": "$$NOW"}}],
        )
        logger.info("released the leader lease", extra={"holder": self.holder, "token": token})

    def stand_down(self) -> None:
        self.token = None
        self._deadline = float("-inf")

    def _took(self, doc: dict[str, Any] | None, started: float) -> bool:
        if doc is None or doc.get("holder") != self.holder:
            return False
        token = int(doc["token"])
        if token != self.token:
            logger.info("leading: took the leader lease", extra={"holder": self.holder, "token": token})
        self.token = token
        self._deadline = started + self._ttl - self._margin
        return True
