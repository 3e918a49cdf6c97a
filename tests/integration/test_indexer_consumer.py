"""The batch consumer against real RabbitMQ, MongoDB and Elasticsearch: dead letters, attempts, outages."""

from __future__ import annotations

import asyncio
import copy
import json
import random
from typing import Any

import aio_pika
from elasticsearch import AsyncElasticsearch
from pymongo.asynchronous.database import AsyncDatabase

from services.common.catalogue import (
    SEARCH_INDEX_MAPPINGS,
    SEARCH_INDEX_SETTINGS,
    VIDEOS_COLLECTION,
    versioned_index_name,
)
from services.common.settings import StackSettings
from services.common.topology import QueueNames
from services.indexer.settings import Settings
from services.indexer.settlement import ATTEMPTS_HEADER, DEAD_REASON_HEADER
from tests.factories import make_event
from tests.integration.indexer_support import (
    bodies,
    holds,
    metric,
    publish,
    ready_counts,
    running_indexer,
    shared_stack_settings,
    stored_counts,
    take_dead_letters,
    wait_stored,
)
from tests.waiting import wait_until


def _settings(
    stack: StackSettings, names: QueueNames, db: AsyncDatabase[dict[str, Any]], alias: str, **extra: Any
) -> Settings:
    return shared_stack_settings(
        stack, names, db.name, alias, **({"index_batch_size": 100, "index_batch_max_wait_ms": 50} | extra)
    )


async def test_valid_events_are_stored_and_garbage_is_dead_lettered_with_reasons(
    stack: StackSettings,
    amqp: aio_pika.abc.AbstractRobustConnection,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    es_alias: str,
) -> None:
    rng = random.Random(7)
    events = [make_event(rng) for _ in range(300)]
    wrong_version = json.loads(events[0].model_dump_json()) | {"schema_version": 3, "video_id": "zzzzzzzzzzz"}
    garbage = {
        b"not json": "not JSON",
        b"\xff\xfe invalid utf-8": "not JSON",
        '{"title": "caf\xe9"}'.encode("latin-1"): "not JSON",  # a Latin-1 byte inside a JSON string
        b'{"video_id": "short"}': "schema error",
        b"[1, 2, 3]": "not a JSON object",
        json.dumps(wrong_version).encode(): "schema_version",
        b"x" * (5 * 1024 * 1024): "not JSON",
    }
    payloads = bodies(events)
    # Garbage sits in the middle of the stream: it must not block the valid messages around it.
    await publish(amqp, queue_names, payloads[:150] + list(garbage) + payloads[150:])

    async with running_indexer(_settings(stack, queue_names, mongo_db, es_alias), amqp, mongo_db, es) as (_, registry):
        await wait_stored(mongo_db, es, es_alias, len(events))
        dead = await take_dead_letters(amqp, queue_names, len(garbage))
        assert metric(registry, "tubewatch_indexer_dead_letters_total", cause="invalid") == len(garbage)
        assert metric(registry, "tubewatch_indexer_messages_total", outcome="stored") == len(events)

    reasons = {letter.body: str(letter.headers[DEAD_REASON_HEADER]) for letter in dead}
    assert set(reasons) == set(garbage)
    for body, expected in garbage.items():
        assert expected in reasons[body], (body[:40], reasons[body])
    assert await stored_counts(mongo_db, es, es_alias) == (len(events), len(events))
    assert await ready_counts(amqp, queue_names) == (0, 0)


def _strict_duration_index(alias: str) -> tuple[str, dict[str, Any]]:
    """The current mapping, except that durations must fit a byte: a mapping that refuses documents."""
    mappings = copy.deepcopy(SEARCH_INDEX_MAPPINGS)
    mappings["properties"]["duration_seconds"] = {"type": "byte"}
    return versioned_index_name(alias), mappings


async def test_a_document_the_index_refuses_is_retried_then_dead_lettered_with_its_reason(
    stack: StackSettings,
    amqp: aio_pika.abc.AbstractRobustConnection,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    es_alias: str,
) -> None:
    index, mappings = _strict_duration_index(es_alias)
    await es.indices.create(
        index=index, settings=SEARCH_INDEX_SETTINGS, mappings=mappings, aliases={es_alias: {"is_write_index": True}}
    )
    rng = random.Random(8)
    good = [make_event(rng).model_copy(update={"duration_seconds": 60}) for _ in range(60)]
    refused = [make_event(rng).model_copy(update={"duration_seconds": 3600}) for _ in range(4)]
    await publish(amqp, queue_names, bodies(good[:30] + refused + good[30:]))

    settings = _settings(stack, queue_names, mongo_db, es_alias, index_max_attempts=3)
    async with running_indexer(settings, amqp, mongo_db, es) as (_, registry):
        dead = await take_dead_letters(amqp, queue_names, len(refused))
        await wait_stored(mongo_db, es, es_alias, len(good) + len(refused), in_search=len(good))
        # Each refused message was tried three times: two re-queued copies, then the dead letter.
        assert metric(registry, "tubewatch_indexer_messages_total", outcome="retried") == 2 * len(refused)
        assert metric(registry, "tubewatch_indexer_dead_letters_total", cause="rejected") == len(refused)

    assert sorted(letter.body for letter in dead) == sorted(bodies(refused))
    for letter in dead:
        assert letter.headers[ATTEMPTS_HEADER] == 3
        reason = str(letter.headers[DEAD_REASON_HEADER])
        assert reason.startswith("elasticsearch 400:"), reason
        assert "duration_seconds" in reason, reason
    # MongoDB, the system of record, accepted them all; the index holds only what fits its mapping.
    assert await mongo_db[VIDEOS_COLLECTION].count_documents({}) == len(good) + len(refused)
    await es.indices.refresh(index=es_alias)
    assert (await es.count(index=es_alias))["count"] == len(good)
    assert await ready_counts(amqp, queue_names) == (0, 0)


async def test_an_index_refusing_writes_is_an_outage_the_indexer_waits_out_without_dead_letters(
    stack: StackSettings,
    amqp: aio_pika.abc.AbstractRobustConnection,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    es_alias: str,
) -> None:
    rng = random.Random(9)
    events = [make_event(rng) for _ in range(300)]
    settings = _settings(stack, queue_names, mongo_db, es_alias, index_prefetch=40, index_batch_size=20)
    async with running_indexer(settings, amqp, mongo_db, es) as (indexer, registry):
        await wait_until(holds(lambda: indexer.consuming), what="consumer attached")
        # A write block is what Elasticsearch sets at the disk flood stage: a 403 about the cluster's
        # state, not about any document.
        await es.indices.put_settings(index=es_alias, settings={"index.blocks.write": True})
        try:
            await publish(amqp, queue_names, bodies(events))
            await wait_until(holds(lambda: not indexer.stores_ready), what="indexer to report the outage")
            assert indexer.state.startswith("holding: elasticsearch")
            # It stops taking messages: all but its prefetch window wait in RabbitMQ, none dead.
            ready, dead = await ready_counts(amqp, queue_names)
            assert ready >= len(events) - settings.index_prefetch
            assert dead == 0
        finally:
            await es.indices.put_settings(index=es_alias, settings={"index.blocks.write": None})
        await wait_stored(mongo_db, es, es_alias, len(events))
        await wait_until(holds(lambda: indexer.stores_ready), what="indexer to report ready again")
        assert metric(registry, "tubewatch_indexer_store_outages_total", store="elasticsearch") > 0
        assert metric(registry, "tubewatch_indexer_messages_total", outcome="dead_lettered") == 0
    assert await ready_counts(amqp, queue_names) == (0, 0)


async def _close_from_the_broker(connection_name: str) -> None:
    """Make RabbitMQ drop one connection (ours, found by name), as a broker restart or a network cut would."""

    async def rabbitmqctl(*args: str) -> str:
        process = await asyncio.create_subprocess_exec(
            "rabbitmqctl", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode == 0, err.decode()
        return out.decode()

    # One line per connection: "<rabbit@host.N.N.N>\t[...client properties...]".
    listed = await rabbitmqctl("list_connections", "pid", "client_properties", "--no-table-headers", "--quiet")
    marker = f'{{"connection_name","{connection_name}"}}'
    pids = [line.split("\t", 1)[0] for line in listed.splitlines() if marker in line]
    assert len(pids) == 1, listed
    await rabbitmqctl("close_connection", pids[0], "test: the connection is lost")


async def test_a_lost_broker_connection_is_restored_and_consumption_resumes_with_nothing_lost(
    stack: StackSettings,
    amqp: aio_pika.abc.AbstractRobustConnection,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    es_alias: str,
    unique_name: str,
) -> None:
    rng = random.Random(10)
    events = [make_event(rng) for _ in range(3_000)]
    await publish(amqp, queue_names, bodies(events))
    connection = await aio_pika.connect_robust(
        stack.amqp_url, client_properties={"connection_name": unique_name}, reconnect_interval=0.5
    )
    reconnected = asyncio.Event()
    connection.reconnect_callbacks.add(lambda *_: reconnected.set())
    try:
        settings = _settings(stack, queue_names, mongo_db, es_alias, index_prefetch=200, index_batch_size=50)
        async with running_indexer(settings, connection, mongo_db, es) as (indexer, _):

            async def under_way() -> bool:
                return await mongo_db[VIDEOS_COLLECTION].count_documents({}) >= 300

            await wait_until(under_way, what="the run under way")
            await _close_from_the_broker(unique_name)
            await asyncio.wait_for(reconnected.wait(), timeout=60)
            await wait_stored(mongo_db, es, es_alias, len(events))
            assert indexer.consuming
    finally:
        await connection.close()
    assert await ready_counts(amqp, queue_names) == (0, 0)
    assert await stored_counts(mongo_db, es, es_alias) == (len(events), len(events))
