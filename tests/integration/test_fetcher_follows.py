"""Auto-follow against the real MongoDB: the window's counts, the top channels, ties, hourly, a new leader."""

from __future__ import annotations

import asyncio
import itertools
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from services.common.catalogue import VIDEOS_COLLECTION, ensure_mongo_indexes
from services.common.events import FoundBy, VideoEvent
from services.common.fetcher_state import FOLLOWS_COLLECTION, FOLLOWS_ID, FollowsDoc
from services.fetcher.follows import ChannelFollows, Follow, search_counts, search_counts_pipeline
from services.fetcher.lease import LeaseLostError
from tests.factories import make_event
from tests.integration.api_support import prepare_stores, write
from tests.private_stack import PrivateStack

NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)
WEEK = timedelta(days=7)
_video_numbers = itertools.count()


def channel(n: int) -> str:
    return f"UC{n:022d}"


class FixedClock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def now(self) -> datetime:
        return self.moment

    async def sleep_until(self, moment: datetime) -> None:
        self.moment = max(self.moment, moment)


def stored_video(
    channel_id: str,
    *,
    published_at: datetime = NOW - timedelta(days=1),
    queries: list[str] | None = None,
    channel_find: bool = False,
    legacy: bool = False,
) -> dict[str, Any]:
    """A video document as the indexer stores it: found_by and queries, or (legacy) queries alone."""
    queries = ["cricket"] if queries is None else queries
    doc: dict[str, Any] = {
        "video_id": f"v{next(_video_numbers):010d}",
        "channel_id": channel_id,
        "published_at": published_at,
        "queries": queries,
    }
    if not legacy:
        doc["found_by"] = [{"source": "search", "query": q} for q in queries] + (
            [{"source": "channel", "channel_id": channel_id, "via": "poll"}] if channel_find else []
        )
    return doc


async def store(db: AsyncDatabase[dict[str, Any]], docs: list[dict[str, Any]]) -> None:
    await ensure_mongo_indexes(db)
    await db[VIDEOS_COLLECTION].insert_many(docs)


async def videos_of(db: AsyncDatabase[dict[str, Any]], counts: dict[int, int]) -> None:
    await store(db, [stored_video(channel(n)) for n, count in counts.items() for _ in range(count)])


def scanned_indexes(plan: dict[str, Any]) -> list[str]:
    """The indexes a query plan scans (a collection scan has none)."""
    below = [plan["inputStage"]] if "inputStage" in plan else plan.get("inputStages", [])
    found = [plan["indexName"]] if plan.get("stage") == "IXSCAN" else []
    return found + [name for stage in below for name in scanned_indexes(stage)]


def follows(db: AsyncDatabase[dict[str, Any]], clock: FixedClock, **kwargs: Any) -> ChannelFollows:
    settings: dict[str, Any] = {"explicit": [], "top_n": 2, "window": WEEK} | kwargs
    return ChannelFollows(db=db, clock=clock, **settings)


def auto(current: list[Follow]) -> list[tuple[str, int | None, int | None]]:
    return [(f.channel_id, f.rank, f.count) for f in current if f.reason == "auto"]


async def test_counts_are_the_videos_search_found_per_channel_in_the_window(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    await store(
        mongo_db,
        [
            stored_video(channel(1)),
            stored_video(channel(1), queries=["cricket", "world cup"]),  # two queries: one video
            stored_video(channel(1), channel_find=True),  # channel first, then search
            stored_video(channel(1), legacy=True),  # stored before found_by: its queries say search
            stored_video(channel(2), queries=[], channel_find=True),  # found only through the channel
            stored_video(channel(2), published_at=NOW - WEEK - timedelta(seconds=1)),  # before the window
            stored_video(channel(2), published_at=NOW - WEEK),
            stored_video("not-a-channel-id"),
        ],
    )
    assert await search_counts(mongo_db, NOW - WEEK, NOW) == {channel(1): 4, channel(2): 1}


async def test_auto_follow_counts_what_the_indexer_stored(
    mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    rng = random.Random(15)
    published = NOW - timedelta(days=1)

    def search(n: int, query: str = "cricket", **kwargs: Any) -> VideoEvent:
        return make_event(rng, query=query, channel=n, published_at=published, fetched_at=NOW, **kwargs)

    def uploaded(n: int, **kwargs: Any) -> VideoEvent:
        event = search(n, **kwargs)
        return event.model_copy(update={"query": None, "found_by": FoundBy.channel(event.channel_id)})

    twice = search(1)
    events = [search(1), search(1), twice, search(1, query="world cup", vid=twice.video_id)]
    events += [search(2), search(2)] + [uploaded(2) for _ in range(5)]  # its uploads do not count
    events += [search(3), search(3)]
    late = search(3)
    events += [uploaded(3, vid=late.video_id), late]  # found in its uploads first, then by search
    await write(await prepare_stores(mongo_db, es, es_alias), es, es_alias, events)
    chosen = follows(mongo_db, FixedClock(NOW))
    await chosen.load()
    assert auto(chosen.follows()) == [(channel(1), 1, 3), (channel(3), 2, 3)]


async def test_the_count_reads_the_window_through_the_published_at_index(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    await videos_of(mongo_db, {n: 3 for n in range(20)})
    explained = await mongo_db.command(
        "explain",
        {"aggregate": VIDEOS_COLLECTION, "pipeline": search_counts_pipeline(NOW - WEEK, NOW), "cursor": {}},
        verbosity="queryPlanner",
    )
    winning = explained["stages"][0]["$cursor"]["queryPlanner"]["winningPlan"]
    assert scanned_indexes(winning) == ["published_at_video_id"], winning


async def test_auto_follow_picks_the_top_channels_of_the_window_and_saves_them(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    await videos_of(mongo_db, {1: 2, 2: 9, 3: 5, 4: 1})
    chosen = follows(mongo_db, FixedClock(NOW), explicit=[channel(7)])
    await chosen.load()
    current = await chosen.current(NOW)
    assert current[0] == Follow(channel(7), "explicit")
    assert auto(current) == [(channel(2), 1, 9), (channel(3), 2, 5)]
    saved = FollowsDoc.model_validate(await mongo_db[FOLLOWS_COLLECTION].find_one({"_id": FOLLOWS_ID}))
    assert saved.explicit == [channel(7)]
    assert [(a.channel_id, a.rank, a.count) for a in saved.auto] == [(channel(2), 1, 9), (channel(3), 2, 5)]
    assert (saved.top_n, saved.window_seconds, saved.evaluated_at) == (2, WEEK.total_seconds(), NOW)


async def test_a_tie_keeps_the_set_and_a_new_leader_keeps_it_too(mongo_db: AsyncDatabase[dict[str, Any]]) -> None:
    await videos_of(mongo_db, {5: 6, 7: 3})
    first = follows(mongo_db, FixedClock(NOW))
    await first.load()
    assert auto(await first.current(NOW)) == [(channel(5), 1, 6), (channel(7), 2, 3)]
    # channel 3 catches up with channel 7 and would win the tie by id: the set stays
    await videos_of(mongo_db, {3: 3})
    later = NOW + timedelta(hours=1)
    assert auto(await first.current(later)) == [(channel(5), 1, 6), (channel(7), 2, 3)]
    # a new leader starts from the saved set: the tie goes to the follower again
    successor = follows(mongo_db, FixedClock(later + timedelta(minutes=5)))
    await successor.load()
    assert auto(successor.follows()) == [(channel(5), 1, 6), (channel(7), 2, 3)]
    # one more video and channel 3 ranks second: it joins, channel 7 (third, within 1.5·N = 3) stays
    await videos_of(mongo_db, {3: 1})
    assert auto(await successor.current(later + timedelta(hours=2))) == [
        (channel(5), 1, 6),
        (channel(3), 2, 4),
        (channel(7), 3, 3),
    ]


async def test_the_set_is_chosen_at_start_then_hourly(mongo_db: AsyncDatabase[dict[str, Any]]) -> None:
    await videos_of(mongo_db, {1: 1})
    chosen = follows(mongo_db, FixedClock(NOW), top_n=1)
    await chosen.load()
    assert chosen.due_at == NOW + timedelta(hours=1)
    await videos_of(mongo_db, {2: 5})
    assert auto(await chosen.current(NOW + timedelta(minutes=59))) == [(channel(1), 1, 1)]
    assert auto(await chosen.current(NOW + timedelta(hours=1))) == [(channel(2), 1, 5)]
    assert chosen.due_at == NOW + timedelta(hours=2)


async def test_a_set_short_of_n_is_chosen_again_within_minutes(mongo_db: AsyncDatabase[dict[str, Any]]) -> None:
    # A young catalogue: one channel where three are wanted. Search fills it within minutes, and
    # waiting an hour would leave the units pool idle.
    await videos_of(mongo_db, {1: 1})
    chosen = follows(mongo_db, FixedClock(NOW), top_n=3)
    await chosen.load()
    assert chosen.due_at == NOW + timedelta(minutes=5)
    await videos_of(mongo_db, {2: 2, 3: 3})
    assert auto(await chosen.current(NOW + timedelta(minutes=5))) == [
        (channel(3), 1, 3),
        (channel(2), 2, 2),
        (channel(1), 3, 1),
    ]
    assert chosen.due_at == NOW + timedelta(minutes=5, hours=1)  # full: hourly from now on


async def test_the_window_moves_with_the_clock(mongo_db: AsyncDatabase[dict[str, Any]]) -> None:
    await store(mongo_db, [stored_video(channel(1), published_at=NOW - timedelta(days=2)) for _ in range(3)])
    await store(mongo_db, [stored_video(channel(2), published_at=NOW - timedelta(hours=1))])
    chosen = follows(mongo_db, FixedClock(NOW), top_n=1, window=timedelta(days=3))
    await chosen.load()
    assert auto(chosen.follows()) == [(channel(1), 1, 3)]
    # a day later channel 1's videos are out of the window: it leaves, channel 2 joins
    assert auto(await chosen.current(NOW + timedelta(days=1, hours=1))) == [(channel(2), 1, 1)]


async def test_zero_follows_only_the_explicit_channels(mongo_db: AsyncDatabase[dict[str, Any]]) -> None:
    await videos_of(mongo_db, {1: 4})
    chosen = follows(mongo_db, FixedClock(NOW), explicit=[channel(9), channel(8), channel(9)], top_n=0)
    await chosen.load()
    assert await chosen.current(NOW) == [Follow(channel(9), "explicit"), Follow(channel(8), "explicit")]


async def test_an_explicit_channel_is_not_among_the_auto_followed(mongo_db: AsyncDatabase[dict[str, Any]]) -> None:
    await videos_of(mongo_db, {1: 9, 2: 5, 3: 4})
    chosen = follows(mongo_db, FixedClock(NOW), explicit=[channel(1)])
    await chosen.load()
    assert auto(chosen.follows()) == [(channel(2), 1, 5), (channel(3), 2, 4)]


async def test_a_deposed_leader_cannot_overwrite_the_set(mongo_db: AsyncDatabase[dict[str, Any]]) -> None:
    await videos_of(mongo_db, {1: 2})
    await follows(mongo_db, FixedClock(NOW), fence=lambda: 5).load()
    stale = follows(mongo_db, FixedClock(NOW), fence=lambda: 4)
    with pytest.raises(LeaseLostError):
        await stale.load()
    saved = await mongo_db[FOLLOWS_COLLECTION].find_one({"_id": FOLLOWS_ID})
    assert saved is not None and saved["lease_token"] == 5


async def test_a_malformed_saved_set_is_chosen_afresh(mongo_db: AsyncDatabase[dict[str, Any]]) -> None:
    await videos_of(mongo_db, {4: 2})
    await mongo_db[FOLLOWS_COLLECTION].insert_one({"_id": FOLLOWS_ID, "auto": [{"channel_id": 4}]})
    chosen = follows(mongo_db, FixedClock(NOW))
    await chosen.load()
    assert auto(chosen.follows()) == [(channel(4), 1, 2)]


async def test_a_failed_count_keeps_the_set_and_is_tried_again_a_minute_later(
    private_stack: PrivateStack, unique_name: str
) -> None:
    """MongoDB away for an evaluation (the session's private server, never the shared one)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        private_stack.mongodb_url, tz_aware=True, serverSelectionTimeoutMS=1000
    )
    db = client[unique_name.replace("-", "_")]
    try:
        await videos_of(db, {1: 2})
        chosen = follows(db, FixedClock(NOW), top_n=1)
        await chosen.load()
        await videos_of(db, {2: 5})
        later = NOW + timedelta(hours=1)
        await asyncio.to_thread(private_stack.stop, "mongodb")
        try:
            assert auto(await chosen.current(later)) == [(channel(1), 1, 2)]
            assert chosen.due_at == later + timedelta(minutes=1)
        finally:
            await asyncio.to_thread(private_stack.start, "mongodb")
        assert auto(await chosen.current(later + timedelta(seconds=59))) == [(channel(1), 1, 2)]
        assert auto(await chosen.current(later + timedelta(minutes=1))) == [(channel(2), 1, 5)]
        assert chosen.due_at == later + timedelta(hours=1, minutes=1)
    finally:
        await client.drop_database(db.name)
        await client.close()
