"""A store stopped for 20 s in the middle of a run (a private MongoDB and Elasticsearch, never the shared ones).

It also checks what every test of the private stack relies on: its stopped server really refuses
connections, and once started again it has kept its data.
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
from elasticsearch import AsyncElasticsearch
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure

from services.common.catalogue import VIDEOS_COLLECTION
from services.common.settings import StackSettings
from services.common.topology import QueueNames
from tests.factories import make_event
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
@pytest.mark.parametrize("server", ["elasticsearch", "mongodb"])
async def test_a_store_stopped_for_20_seconds_mid_run_loses_nothing_and_the_indexer_recovers_by_itself(
    server: Server,
    private_stack: PrivateStack,
    private_stores: tuple[AsyncDatabase[dict[str, Any]], AsyncElasticsearch, str],
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
            # The outage lasts its full 20 s (the point of the test), whatever the stop took.
            remaining = OUTAGE_SECONDS - (asyncio.get_running_loop().time() - outage_started)
            await asyncio.sleep(max(0.0, remaining))
        finally:
            await asyncio.to_thread(private_stack.start, server)
        if server == "elasticsearch":
            assert (await es.get(index=f"{alias}-kept", id="1"))["_source"] == {"n": 1}
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
