"""/api/v1/status and /api/v1/queries read shared state: fetcher documents, RabbitMQ queues, the stores."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aio_pika
import pytest
from aiohttp.test_utils import TestClient, TestServer
from elasticsearch import AsyncElasticsearch
from pymongo.asynchronous.database import AsyncDatabase

from services.api.app import create_app
from services.api.models import PipelineStatus, QueryList
from services.common.fetcher_state import (
    BUDGET_COLLECTION,
    CHANNEL_STATE_COLLECTION,
    FOLLOWS_COLLECTION,
    KEY_STATE_COLLECTION,
    LEASE_COLLECTION,
    QUERY_STATE_COLLECTION,
    AutoFollowDoc,
    BudgetDoc,
    ChannelStateDoc,
    FollowsDoc,
    KeyStateDoc,
    KnownVideoDoc,
    LeaseDoc,
    PollStatsDoc,
    ProjectUnitsDoc,
    QueryStateDoc,
    UnitsBudgetDoc,
    freshness_docs,
)
from services.common.freshness import FreshnessDigest
from services.common.poll_stats import PollStats
from services.common.settings import StackSettings
from services.common.timefmt import utc_now
from services.common.topology import ROUTING_KEY_VIDEO_FOUND, QueueNames, declare_index_queue
from tests.factories import make_event
from tests.integration.api_support import api_settings, prepare_stores, write


@pytest.fixture
async def api(
    stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es_alias: str, queue_names: QueueNames
) -> AsyncIterator[TestClient[Any, Any]]:
    settings = api_settings(
        mongodb_url=stack.mongodb_url,
        mongodb_database=mongo_db.name,
        elasticsearch_url=stack.elasticsearch_url,
        elasticsearch_index=es_alias,
        amqp_url=stack.amqp_url,
        amqp_exchange=queue_names.exchange,
        amqp_queue=queue_names.queue,
        search_queries="cricket,world cup",
    )
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client


async def _status(api: TestClient[Any, Any]) -> PipelineStatus:
    response = await api.get("/api/v1/status")
    assert response.status == 200, await response.text()
    return PipelineStatus.model_validate(await response.json())


async def test_a_fresh_install_has_a_status_of_nothing_yet(api: TestClient[Any, Any]) -> None:
    status = await _status(api)
    assert status.fetcher.keys.live == status.fetcher.keys.parked == status.fetcher.keys.disabled == 0
    assert status.fetcher.leader is None
    assert status.fetcher.calls_left_today is None
    assert status.fetcher.last_poll_at is None
    assert status.indexer.queue.messages is None
    assert status.indexer.queue.error == "queue does not exist yet"
    assert status.videos.stored == 0
    assert (status.fetcher.followed_channels, status.fetcher.auto_follow, status.fetcher.units) == ([], None, None)
    queries = QueryList.model_validate(await (await api.get("/api/v1/queries")).json())
    assert [q.query for q in queries.items] == ["cricket", "world cup"]
    assert all(q.last_poll_at is None and q.watermark is None for q in queries.items)


async def test_status_shows_the_fetcher_state_queue_depths_and_counts(
    api: TestClient[Any, Any],
    mongo_db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    es_alias: str,
    amqp: aio_pika.abc.AbstractRobustConnection,
    queue_names: QueueNames,
) -> None:
    now = utc_now().replace(microsecond=0)
    keys = [
        KeyStateDoc(
            fingerprint="fp-live-1", project="p1", quota_day="2026-11-24", search_calls_spent=7, updated_at=now
        ),
        KeyStateDoc(fingerprint="fp-live-2", project="p2", quota_day="2026-11-24", updated_at=now),
        KeyStateDoc(
            fingerprint="fp-parked",
            project="p3",
            state="parked",
            parked_until=now + timedelta(hours=1),
            quota_day="2026-11-24",
            updated_at=now,
        ),
        KeyStateDoc(
            fingerprint="fp-off",
            project="p4",
            state="disabled",
            disabled_reason="keyInvalid",
            quota_day="2026-11-24",
            updated_at=now,
        ),
    ]
    await mongo_db[KEY_STATE_COLLECTION].insert_many([k.model_dump(by_alias=True) for k in keys])
    await mongo_db[LEASE_COLLECTION].insert_one(
        LeaseDoc(holder="host:1:abc", token=3, expires_at=now + timedelta(seconds=20), renewed_at=now).model_dump(
            by_alias=True
        )
    )
    await mongo_db[BUDGET_COLLECTION].insert_one(
        BudgetDoc(
            calls_left_today=180,
            effective_interval_seconds=42.5,
            reset_at=now + timedelta(hours=5),
            keys_live=2,
            keys_parked=1,
            keys_disabled=1,
            updated_at=now,
        ).model_dump(by_alias=True)
    )
    await mongo_db[QUERY_STATE_COLLECTION].insert_many(
        [
            QueryStateDoc(
                query="cricket", watermark=now - timedelta(minutes=1), last_poll_at=now, videos_published=9
            ).model_dump(by_alias=True),
            QueryStateDoc(query="retired query", last_poll_at=now + timedelta(days=1)).model_dump(by_alias=True),
        ]
    )
    rng = random.Random(1)
    events = [make_event(rng, query="cricket") for _ in range(5)] + [
        make_event(rng, query="world cup") for _ in range(2)
    ]
    await write(await prepare_stores(mongo_db, es, es_alias), es, es_alias, events)
    channel = await amqp.channel()
    await declare_index_queue(channel, queue_names)
    exchange = await channel.get_exchange(queue_names.exchange)
    for n in range(3):
        await exchange.publish(aio_pika.Message(body=b"{}", message_id=str(n)), routing_key=ROUTING_KEY_VIDEO_FOUND)
    dead = await channel.get_exchange(queue_names.dead_exchange)
    await dead.publish(aio_pika.Message(body=b"bad"), routing_key="")
    await channel.close()

    status = await _status(api)
    assert (status.fetcher.keys.live, status.fetcher.keys.parked, status.fetcher.keys.disabled) == (2, 1, 1)
    assert [k.fingerprint for k in status.fetcher.key_details] == ["fp-live-1", "fp-live-2", "fp-off", "fp-parked"]
    assert status.fetcher.key_details[0].search_calls_spent == 7
    assert status.fetcher.calls_left_today == 180
    assert status.fetcher.effective_interval_seconds == 42.5
    assert status.fetcher.leader is not None
    assert status.fetcher.leader.holder == "host:1:abc"
    assert status.fetcher.leader.active
    assert status.fetcher.last_poll_at == now + timedelta(days=1)
    assert status.indexer.queue.messages == 3
    assert status.indexer.dead_letters.messages == 1
    assert status.videos.stored == 7
    assert status.videos.indexed == 7
    assert status.served_by == "elasticsearch"

    queries = QueryList.model_validate(await (await api.get("/api/v1/queries")).json()).items
    cricket, world_cup = queries
    assert (cricket.query, cricket.videos_stored, cricket.videos_published) == ("cricket", 5, 9)
    assert cricket.last_poll_at == now
    assert cricket.watermark == now - timedelta(minutes=1)
    assert (world_cup.query, world_cup.videos_stored, world_cup.last_poll_at) == ("world cup", 2, None)


async def test_a_malformed_state_document_is_skipped_not_a_500(
    api: TestClient[Any, Any], mongo_db: AsyncDatabase[dict[str, Any]]
) -> None:
    await mongo_db[KEY_STATE_COLLECTION].insert_one({"_id": "fp-weird", "state": "exploded"})
    await mongo_db[LEASE_COLLECTION].insert_one({"_id": "fetcher", "holder": 12})
    await mongo_db[FOLLOWS_COLLECTION].insert_one({"_id": "follows", "auto": [{"channel_id": 3}]})
    status = await _status(api)
    assert status.fetcher.key_details == []
    assert status.fetcher.leader is None
    assert (status.fetcher.followed_channels, status.fetcher.auto_follow) == ([], None)


async def test_queries_show_the_plan_rebuilt_from_the_fetchers_inputs_and_the_measured_freshness(
    api: TestClient[Any, Any], mongo_db: AsyncDatabase[dict[str, Any]]
) -> None:
    now = utc_now().replace(microsecond=0)
    # a day to the reset, 100 calls, rates 25:1 an hour: intervals 1:5 (1,036.8 s and 5,184 s)
    await mongo_db[BUDGET_COLLECTION].insert_one(
        BudgetDoc(
            calls_left_today=100,
            effective_interval_seconds=1728,
            reset_at=now + timedelta(days=1),
            keys_live=1,
            keys_parked=0,
            keys_disabled=0,
            updated_at=now,
            poll_interval_seconds=10,
            max_query_interval_seconds=7200,
            max_calls_per_poll=20,
            planned_queries=["cricket", "world cup"],
        ).model_dump(by_alias=True)
    )
    cricket = PollStats()
    cricket.record(videos=25, calls=1, seconds=3600, cost_decay=0.9)
    world_cup = PollStats()
    world_cup.record(videos=1, calls=1, seconds=3600, cost_decay=0.9)
    digest = FreshnessDigest()
    digest.add([60.0] * 50 + [600.0] * 49 + [3000.0], now)
    await mongo_db[QUERY_STATE_COLLECTION].insert_many(
        [
            QueryStateDoc(
                query="cricket", poll_stats=PollStatsDoc.of(cricket), freshness=freshness_docs(digest)
            ).model_dump(by_alias=True),
            QueryStateDoc(query="world cup", poll_stats=PollStatsDoc.of(world_cup)).model_dump(by_alias=True),
        ]
    )
    queries = QueryList.model_validate(await (await api.get("/api/v1/queries")).json()).items
    busy, quiet = queries
    assert busy.upload_rate_per_hour == pytest.approx(25)
    assert quiet.upload_rate_per_hour == pytest.approx(1)
    assert busy.planned_interval_seconds == pytest.approx(1036.8, abs=0.1)
    assert quiet.planned_interval_seconds == pytest.approx(5184, abs=0.1)
    assert busy.calls_per_day == pytest.approx(83.33, abs=0.01)
    assert busy.expected_mean_delay_seconds == pytest.approx(518.4, abs=0.1)
    assert busy.freshness_videos == 100
    assert busy.freshness_p50_seconds == pytest.approx(60, rel=0.03)
    assert busy.freshness_p99_seconds == pytest.approx(600, rel=0.03)
    assert (quiet.freshness_videos, quiet.freshness_p50_seconds) == (0, None)
    status = await _status(api)
    assert status.fetcher.scheduling == "rate"
    assert status.fetcher.max_query_interval_seconds == 7200
    assert status.fetcher.budget_too_small is False


async def test_status_lists_the_followed_channels_with_why_and_how_they_are_read_and_the_units_pool(
    api: TestClient[Any, Any], mongo_db: AsyncDatabase[dict[str, Any]]
) -> None:
    now = utc_now().replace(microsecond=0)
    named, missing, busy, quiet = (f"UC{n:022d}" for n in range(1, 5))
    await mongo_db[FOLLOWS_COLLECTION].insert_one(
        FollowsDoc(
            explicit=[named, missing],
            auto=[
                AutoFollowDoc(channel_id=busy, rank=1, count=40, since=now - timedelta(days=2)),
                AutoFollowDoc(channel_id=quiet, rank=2, count=7, since=now - timedelta(hours=3)),
            ],
            top_n=20,
            window_seconds=7 * 86_400,
            evaluated_at=now - timedelta(minutes=10),
        ).model_dump(by_alias=True)
    )
    await mongo_db[CHANNEL_STATE_COLLECTION].insert_many(
        [
            ChannelStateDoc(
                channel_id=named,
                uploads_playlist_id="UU" + named[2:],
                known_videos=[KnownVideoDoc(video_id="abcdefghijk", published_at=now)],
                last_read_at=now - timedelta(seconds=30),
                last_deep_read_at=now - timedelta(hours=5),
                videos_published=12,
                interval_seconds=95.5,
            ).model_dump(by_alias=True),
            ChannelStateDoc(channel_id=missing, status="not_found").model_dump(by_alias=True),
            ChannelStateDoc(channel_id=busy, interval_seconds=60, last_read_at=now).model_dump(by_alias=True),
            # a channel no longer followed is not listed
            ChannelStateDoc(channel_id="UC" + "9" * 22, last_read_at=now).model_dump(by_alias=True),
        ]
    )
    await mongo_db[BUDGET_COLLECTION].insert_one(
        UnitsBudgetDoc(
            units_per_day=10_000,
            reserve_for_enrichment=0.2,
            read_units_left_today=6_000,
            units_left_today=8_000,
            units_spent_today=12_000,
            reset_at=now + timedelta(hours=6),
            projects=[
                ProjectUnitsDoc(project="p2", units_spent=10_000, units_left=0, parked_until=now + timedelta(hours=6)),
                ProjectUnitsDoc(project="p1", units_spent=2_000, units_left=8_000),
            ],
            max_channel_interval_seconds=1800,
            planned_channels=[named, busy, quiet],
            updated_at=now,
        ).model_dump(by_alias=True)
    )

    fetcher = (await _status(api)).fetcher
    listed = [(c.channel_id, c.reason, c.rank, c.count) for c in fetcher.followed_channels]
    assert listed == [
        (named, "explicit", None, None),
        (missing, "explicit", None, None),
        (busy, "auto", 1, 40),
        (quiet, "auto", 2, 7),
    ]
    first, not_found, top, unread = fetcher.followed_channels
    assert (first.status, first.interval_seconds, first.videos_published) == ("ok", 95.5, 12)
    assert first.last_read_at == now - timedelta(seconds=30)
    assert first.last_deep_read_at == now - timedelta(hours=5)
    assert (first.auto_since, top.auto_since) == (None, now - timedelta(days=2))
    assert not_found.status == "not_found"
    assert (top.status, top.interval_seconds, top.last_read_at) == ("ok", 60, now)
    assert (unread.status, unread.interval_seconds, unread.last_read_at, unread.videos_published) == (
        None,
        None,
        None,
        None,
    )
    assert fetcher.auto_follow is not None
    assert (fetcher.auto_follow.channels, fetcher.auto_follow.window_days) == (20, 7)
    assert fetcher.auto_follow.evaluated_at == now - timedelta(minutes=10)
    units = fetcher.units
    assert units is not None
    assert (units.units_left_today, units.read_units_left_today, units.units_spent_today) == (8_000, 6_000, 12_000)
    assert [(p.project, p.units_left, p.parked_until) for p in units.projects] == [
        ("p1", 8_000, None),
        ("p2", 0, now + timedelta(hours=6)),
    ]
    assert units.resets_at == now + timedelta(hours=6)
    assert (units.budget_too_small, units.all_units_parked) == (False, False)
