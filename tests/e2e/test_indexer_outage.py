"""A store stopped for 20 s in the middle of a run (a private MongoDB and Elasticsearch, never the shared ones).

It also checks what every test of the private stack relies on: its stopped server really refuses
connections, and once started again it has kept its data. And while Elasticsearch is down, the API's
degraded mode on a catalogue of its own: lists and ``q`` served from MongoDB, back to Elasticsearch
without a restart (the outage lasts its 20 s anyway: an Elasticsearch start is spent once).
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from aiohttp.test_utils import TestClient, TestServer
from elasticsearch import AsyncElasticsearch
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure

from services.api.app import create_app
from services.common.catalogue import VIDEOS_COLLECTION
from services.common.events import VideoEvent
from services.common.settings import StackSettings
from services.common.topology import QueueNames
from tests.factories import make_event
from tests.integration.api_support import api_settings, get_page, newest_first, prepare_stores, spread_events, write
from tests.integration.indexer_support import (
    IndexerProcess,
    bodies,
    indexer_settings,
    publish,
    ready_counts,
    stored_counts,
    wait_stored,
)
from tests.private_stack import PrivateStack, Server
from tests.waiting import wait_until

OUTAGE_SECONDS = 20
EVENTS = 12_000
CHUNK = 500


@pytest.fixture
async def private_stores(
    private_stack: PrivateStack, unique_name: str
) -> AsyncIterator[tuple[AsyncDatabase[dict[str, Any]], AsyncElasticsearch, str]]:
    """A database and an alias of this test on the private MongoDB and Elasticsearch, removed afterwards."""
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        private_stack.mongodb_url, tz_aware=True, serverSelectionTimeoutMS=30_000
    )
    es = AsyncElasticsearch(private_stack.elasticsearch_url, request_timeout=60)
    database = unique_name.replace("-", "_")
    try:
        yield mongo[database], es, unique_name
    finally:
        try:
            await mongo.drop_database(database)
            found = await es.indices.get(index=f"{unique_name}*", allow_no_indices=True, expand_wildcards="all")
            if found.body:
                await es.indices.delete(index=",".join(found.body))
        finally:
            # Closed even when a store is still down: an unclosed client would fail a later test.
            await es.close()
            await mongo.close()


class DegradedApi:
    """The API (in this process) on a catalogue of its own on the private stack, checked around an
    Elasticsearch outage: served by Elasticsearch, then by MongoDB, then by Elasticsearch again."""

    def __init__(self, client: TestClient[Any, Any], events: list[VideoEvent]) -> None:
        self.client = client
        self.events = events
        self.first: dict[str, Any] = {}

    async def before_outage(self) -> None:
        self.first, served_by = await get_page(self.client, {"limit": "100"})
        assert served_by == "elasticsearch"
        assert (await self.client.get("/api/v1/videos", params={"q": "cricket", "sort": "relevance"})).status == 200

    async def during_outage(self) -> None:
        api = self.client
        # The walk started on Elasticsearch goes on from MongoDB with the same cursor, same order.
        ids = [item["video_id"] for item in self.first["items"]]
        cursor = self.first["next_cursor"]
        while cursor:
            body, served_by = await get_page(api, {"limit": "100", "cursor": cursor})
            assert served_by == "mongodb"
            ids += [item["video_id"] for item in body["items"]]
            cursor = body["next_cursor"]
        assert ids == newest_first(self.events)

        body, served_by = await get_page(api, {"q": "highlights", "limit": "100"})
        assert served_by == "mongodb"
        assert len(body["items"]) == 100
        body, _ = await get_page(api, {"q": "highl", "limit": "100"})
        assert body["items"] == []  # MongoDB's text index matches whole words only: no prefixes
        response = await api.get("/api/v1/videos", params={"q": "cricket", "sort": "relevance"})
        assert response.status == 503
        assert (await response.json())["error"]["code"] == "unavailable"
        ready = await api.get("/readyz")
        assert ready.status == 200
        assert "degraded" in (await ready.json())["checks"]["elasticsearch"]["detail"]

    async def after_outage(self) -> None:
        async def served_by_elasticsearch_again() -> bool:
            _, served = await get_page(self.client, {"limit": "1"})
            return served == "elasticsearch"

        await wait_until(served_by_elasticsearch_again, within=60, what="the API to use Elasticsearch again")
        response = await self.client.get("/api/v1/videos", params={"q": "cricket", "sort": "relevance"})
        assert response.status == 200


@pytest.fixture
async def degraded_api(
    server: Server, private_stack: PrivateStack, unique_name: str
) -> AsyncIterator[DegradedApi | None]:
    """For the Elasticsearch outage: the API on 250 videos of its own database and alias."""
    if server != "elasticsearch":
        yield None
        return
    name = unique_name.replace("twtest-", "twtest-api-")
    database = name.replace("-", "_")
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(private_stack.mongodb_url, tz_aware=True)
    es = AsyncElasticsearch(private_stack.elasticsearch_url, request_timeout=30)
    events = spread_events(random.Random(17), 250)
    try:
        await write(await prepare_stores(mongo[database], es, name), es, name, events)
        settings = api_settings(
            mongodb_url=private_stack.mongodb_url,
            mongodb_database=database,
            elasticsearch_url=private_stack.elasticsearch_url,
            elasticsearch_index=name,
        )
        async with TestClient(TestServer(create_app(settings))) as client:
            yield DegradedApi(client, events)
    finally:
        try:
            await mongo.drop_database(database)
            if await es.ping():
                found = await es.indices.get(index=f"{name}*", allow_no_indices=True)
                if found.body:
                    await es.indices.delete(index=",".join(found.body))
        finally:
            # Closed even when a store is still down: an unclosed client would fail a later test.
            await mongo.close()
            await es.close()


async def _answers(private_stack: PrivateStack, server: Server) -> bool:
    """Whether the private ``server`` accepts a connection now (one try, no retries)."""
    if server == "elasticsearch":
        es = AsyncElasticsearch(private_stack.elasticsearch_url, request_timeout=5, max_retries=0)
        try:
            return bool(await es.ping())
        finally:
            await es.close()
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(private_stack.mongodb_url, serverSelectionTimeoutMS=2000)
    try:
        await mongo.admin.command("ping")
        return True
    except ConnectionFailure:
        return False
    finally:
        await mongo.close()


@pytest.mark.timeout(900)
# When MongoDB goes away in the middle of a driver's server check, PyMongo's async monitor can drop
# that check's socket without closing it (the ResourceWarning surfaces at garbage collection, in
# whichever test runs then); our own clients are all closed.
@pytest.mark.filterwarnings("ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("server", ["elasticsearch", "mongodb"])
async def test_a_store_stopped_for_20_seconds_mid_run_loses_nothing_and_the_indexer_recovers_by_itself(
    server: Server,
    private_stack: PrivateStack,
    private_stores: tuple[AsyncDatabase[dict[str, Any]], AsyncElasticsearch, str],
    degraded_api: DegradedApi | None,
    stack: StackSettings,
    amqp: aio_pika.abc.AbstractRobustConnection,
    queue_names: QueueNames,
    tmp_path: Path,
) -> None:
    db, es, alias = private_stores
    settings = indexer_settings(
        amqp_url=stack.amqp_url,
        names=queue_names,
        mongodb_url=private_stack.mongodb_url,
        database=db.name,
        elasticsearch_url=private_stack.elasticsearch_url,
        alias=alias,
        index_retry_max_seconds=2,
    )
    rng = random.Random(20)
    events = [make_event(rng) for _ in range(EVENTS)]
    payloads = bodies(events)
    indexer = IndexerProcess(settings, tmp_path)
    await indexer.start()
    try:
        await indexer.wait_ready(within=120)

        async def keep_publishing() -> None:
            # New events keep arriving before, during and after the outage.
            for start in range(0, len(payloads), CHUNK):
                await publish(amqp, queue_names, payloads[start : start + CHUNK])
                await asyncio.sleep(0.5)

        publisher = asyncio.create_task(keep_publishing())

        async def under_way() -> bool:
            return await db[VIDEOS_COLLECTION].estimated_document_count() >= 2 * CHUNK

        await wait_until(under_way, within=120, what=f"the run under way (log: {indexer.log})")
        # A record of the test's own that the restarted server must still have.
        if server == "elasticsearch":
            # No replica: a single node stays green.
            await es.indices.create(index=f"{alias}-kept", settings={"number_of_replicas": 0})
            await es.index(index=f"{alias}-kept", id="1", document={"n": 1}, refresh=True)
        else:
            await db.kept.insert_one({"_id": 1})
        if degraded_api is not None:
            await degraded_api.before_outage()
        outage_started = asyncio.get_running_loop().time()
        await asyncio.to_thread(private_stack.stop, server)
        try:
            assert not await _answers(private_stack, server), f"the stopped {server} still answers"

            async def reports_unready() -> bool:
                status, body = await indexer.get("/readyz")
                return status == 503 and not json.loads(body)["checks"][server]["ok"]

            await wait_until(reports_unready, within=OUTAGE_SECONDS, what="/readyz to report the outage")

            async def holding_a_batch() -> bool:
                return await indexer.metric("tubewatch_indexer_store_outages_total", store=server) > 0

            await wait_until(holding_a_batch, within=OUTAGE_SECONDS, what="a batch held for the outage")
            if degraded_api is not None:
                await degraded_api.during_outage()
            # The outage lasts its full 20 s (the point of the test), whatever the stop took.
            remaining = OUTAGE_SECONDS - (asyncio.get_running_loop().time() - outage_started)
            await asyncio.sleep(max(0.0, remaining))
        finally:
            await asyncio.to_thread(private_stack.start, server)
        if server == "elasticsearch":
            assert (await es.get(index=f"{alias}-kept", id="1"))["_source"] == {"n": 1}
            assert degraded_api is not None
            await degraded_api.after_outage()
        else:
            assert await db.kept.find_one({"_id": 1}) == {"_id": 1}
        await publisher
        await wait_stored(db, es, alias, len(events), within=300)
        await indexer.wait_ready(within=60)
        assert indexer.process is not None and indexer.process.returncode is None, "the indexer had to restart"
        assert await indexer.metric("tubewatch_indexer_messages_total", outcome="dead_lettered") == 0
        assert await indexer.metric("tubewatch_indexer_messages_total", outcome="retried") == 0
    finally:
        await indexer.stop()
    assert await stored_counts(db, es, alias) == (len(events), len(events))
    assert await ready_counts(amqp, queue_names) == (0, 0)
