"""The leader lease and fenced state writes against the real MongoDB."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.common.fetcher_state import LEASE_COLLECTION, LEASE_ID, QueryStateDoc
from services.fetcher.lease import LeaderLease, LeaseLostError
from services.fetcher.store import FetcherStore


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _expire(db: AsyncDatabase[dict[str, Any]]) -> None:
    """What the passing of the TTL does, without waiting for it."""
    await db[LEASE_COLLECTION].update_one({"_id": LEASE_ID}, {"$set": {"expires_at": datetime(2000, 1, 1, tzinfo=UTC)}})


async def test_one_holder_at_a_time_and_a_new_token_for_each_new_holder(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    collection = mongo_db[LEASE_COLLECTION]
    a, b = LeaderLease(collection, "a", 15), LeaderLease(collection, "b", 15)
    assert await a.try_acquire()
    assert a.token == 1 and a.held()
    assert not await b.try_acquire()
    assert b.token is None and not b.held()
    # renewing keeps the token
    assert await a.renew()
    assert await a.try_acquire()
    assert a.token == 1

    await _expire(mongo_db)
    assert await b.try_acquire()
    assert b.token == 2
    # the old holder finds out at its next renewal, and its token is refused from now on
    assert not await a.renew()
    assert not a.held()
    with pytest.raises(LeaseLostError):
        a.check()

    await b.release()
    assert not b.held()
    assert await a.try_acquire()
    assert a.token == 3


async def test_a_holder_frozen_past_its_ttl_stops_trusting_its_lease(mongo_db: AsyncDatabase[dict[str, Any]]) -> None:
    clock = FakeMonotonic()
    lease = LeaderLease(mongo_db[LEASE_COLLECTION], "a", 15, monotonic=clock)
    assert await lease.try_acquire()
    assert lease.check() == 1
    clock.now += 14.5  # within the TTL, but inside the safety margin
    assert not lease.held()
    with pytest.raises(LeaseLostError):
        lease.check()
    # nobody took over: renewing restores it, with the same token
    assert await lease.renew()
    assert lease.check() == 1


async def test_state_writes_of_a_deposed_leader_are_refused(mongo_db: AsyncDatabase[dict[str, Any]]) -> None:
    store = FetcherStore(mongo_db)
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    newer = QueryStateDoc(query="cricket", watermark=now, videos_published=10)
    await store.save_query(newer, token=2)
    stale = QueryStateDoc(query="cricket", watermark=datetime(2026, 11, 24, 11, 0, tzinfo=UTC), videos_published=3)
    with pytest.raises(LeaseLostError):
        await store.save_query(stale, token=1)
    loaded = await store.load_query("cricket")
    assert loaded is not None
    assert (loaded.watermark, loaded.videos_published, loaded.lease_token) == (now, 10, 2)
    await store.save_query(stale, token=3)
    loaded = await store.load_query("cricket")
    assert loaded is not None and loaded.videos_published == 3
