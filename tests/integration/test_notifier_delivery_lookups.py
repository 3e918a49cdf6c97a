"""What a delivery looks up before its POST, against a real MongoDB: whether its video was removed
(one query for the lookups asked together, each answered as of after it asked), and its saved search
from the notifier's synced copy (MongoDB while the copy is stale or this notifier changed it)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from services.common.catalogue import REMOVED_AT_FIELD, VIDEOS_COLLECTION
from services.common.saved_searches import SAVED_SEARCHES_COLLECTION, SavedSearch, pause_webhook
from services.notifier.deliveries import RemovedVideos
from services.notifier.saved_search_sync import SavedSearchSync, SyncedSavedSearches
from tests.integration.delivery_support import saved_search_with_webhook


async def test_removed_videos_asked_together_are_each_answered(mongo_db: AsyncDatabase[dict[str, Any]]) -> None:
    now = datetime.now(UTC)
    await mongo_db[VIDEOS_COLLECTION].insert_many(
        [{"video_id": f"vid{n:08d}", REMOVED_AT_FIELD: now if n % 3 == 0 else None} for n in range(30)]
    )
    removed = RemovedVideos(mongo_db)
    ids = [f"vid{n:08d}" for n in range(30)] + ["vid00000003", "never-stored"]
    answers = await asyncio.gather(*(removed.removed(video_id) for video_id in ids))
    assert answers == [n % 3 == 0 for n in range(30)] + [True, False]

    # Removed since: the next lookup sees it.
    await mongo_db[VIDEOS_COLLECTION].update_one({"video_id": "vid00000001"}, {"$set": {REMOVED_AT_FIELD: now}})
    assert await removed.removed("vid00000001") is True


class _Sync(SavedSearchSync):
    """A sync whose state the test sets: watching, synced through a moment, holding given saved searches."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]], loaded: list[SavedSearch], synced_through: datetime) -> None:
        self._synced = asyncio.Condition()
        self.watching = True
        self.synced_through = synced_through
        self.loaded = {search.id: search for search in loaded}
        self._db = db


async def test_saved_searches_come_from_the_synced_copy_while_it_is_fresh(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    saved, _ = await saved_search_with_webhook(mongo_db, "http://127.0.0.1:9/hook")
    sync = _Sync(mongo_db, [saved], datetime.now(UTC))
    lookups = SyncedSavedSearches(sync, mongo_db, within=0.2)
    # Deleted in MongoDB since the copy was loaded: the fresh copy answers (the deletion shows
    # once a load holds it, within LOOKUP_STALE_SECONDS).
    await mongo_db[SAVED_SEARCHES_COLLECTION].delete_one({"_id": saved.id})
    found = await lookups.get(saved.id)
    assert found is not None and found.id == saved.id
    assert await lookups.get("not-a-saved-search") is None

    # A stale copy (the change stream lags): MongoDB answers after the wait.
    sync.synced_through = datetime.now(UTC) - timedelta(seconds=30)
    assert await lookups.get(saved.id) is None
    # Not watching: MongoDB at once.
    sync.watching = False
    assert await lookups.get(saved.id) is None


async def test_a_saved_search_this_notifier_paused_is_read_from_mongodb_until_a_later_load(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    saved, _ = await saved_search_with_webhook(mongo_db, "http://127.0.0.1:9/hook")
    sync = _Sync(mongo_db, [saved], datetime.now(UTC))
    lookups = SyncedSavedSearches(sync, mongo_db)
    await pause_webhook(mongo_db, saved.id, "the receiver answered 410")
    lookups.changed(saved.id)
    found = await lookups.get(saved.id)
    assert found is not None and found.webhook is not None and found.webhook.paused

    # A load after the change holds it: the copy answers again.
    assert found is not None
    sync.loaded = {saved.id: found}
    sync.synced_through = datetime.now(UTC)
    again = await lookups.get(saved.id)
    assert again is found
