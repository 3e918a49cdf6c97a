"""``replay-dead``: an operator lists dead letters, fixes the cause, and puts them back on the work queue."""

from __future__ import annotations

import asyncio
import copy
import json
import random
import sys
from typing import Any

import aio_pika
from elasticsearch import AsyncElasticsearch
from pymongo.asynchronous.database import AsyncDatabase

from services.common.catalogue import SEARCH_INDEX_MAPPINGS, SEARCH_INDEX_SETTINGS, versioned_index_name
from services.common.dead_letter_replay import REPLAYED_HEADER
from services.common.settings import PROJECT_ROOT, StackSettings
from services.common.topology import QueueNames
from services.indexer.reindex import reindex
from services.indexer.settings import Settings
from tests.factories import make_event
from tests.integration.indexer_support import (
    bodies,
    holds,
    metric,
    publish,
    ready_counts,
    running_indexer,
    settings_env,
    shared_stack_settings,
    stored_counts,
    take_dead_letters,
)
from tests.waiting import wait_until


def _settings(
    stack: StackSettings, names: QueueNames, db: AsyncDatabase[dict[str, Any]], alias: str, **extra: Any
) -> Settings:
    return shared_stack_settings(
        stack,
        names,
        db.name,
        alias,
        **({"index_batch_max_wait_ms": 50, "index_max_attempts": 2, "reindex_old_index_grace_seconds": 0} | extra),
    )


async def _replay_dead(settings: Settings, *args: str) -> list[dict[str, Any]]:
    """Run ``python -m services.indexer replay-dead ARGS``; returns its JSON lines."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.indexer",
        "replay-dead",
        *args,
        cwd=PROJECT_ROOT,
        env=settings_env(settings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    return [json.loads(line) for line in out.decode().splitlines()]


async def test_dead_letters_are_listed_then_replayed_once_the_cause_is_fixed(
    stack: StackSettings,
    amqp: aio_pika.abc.AbstractRobustConnection,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    es_alias: str,
) -> None:
    # The bug: an index whose mapping cannot hold durations over 127 seconds.
    mappings = copy.deepcopy(SEARCH_INDEX_MAPPINGS)
    mappings["properties"]["duration_seconds"] = {"type": "byte"}
    await es.indices.create(
        index=versioned_index_name(es_alias),
        settings=SEARCH_INDEX_SETTINGS,
        mappings=mappings,
        aliases={es_alias: {"is_write_index": True}},
    )
    rng = random.Random(12)
    good = [make_event(rng).model_copy(update={"duration_seconds": 30}) for _ in range(20)]
    long = [make_event(rng).model_copy(update={"duration_seconds": 5400}) for _ in range(3)]
    settings = _settings(stack, queue_names, mongo_db, es_alias)
    await publish(amqp, queue_names, bodies(good + long))

    async with running_indexer(settings, amqp, mongo_db, es) as (indexer, registry):

        async def three_dead() -> bool:
            return (await ready_counts(amqp, queue_names))[1] == 3

        await wait_until(three_dead, what="three dead letters")

        listed = await _replay_dead(settings, "--dry-run")
        assert len(listed) == 3
        # Each line shows the start of the body: enough to recognise the video.
        assert {e.video_id for e in long if any(e.video_id in line["body"] for line in listed)} == {
            e.video_id for e in long
        }
        for line in listed:
            assert "duration_seconds" in line["reason"]
            assert line["attempts"] == 2
        assert await ready_counts(amqp, queue_names) == (0, 3), "a dry run must leave the dead letters in place"

        # The fix: a reindex builds a new index with the correct mapping from MongoDB, which kept them.
        await reindex(settings, mongo_db, es, progress=False)
        stored_before = metric(registry, "tubewatch_indexer_messages_total", outcome="stored")

        assert len(await _replay_dead(settings, "--limit", "1")) == 1
        assert len(await _replay_dead(settings)) == 2

        async def all_replayed_and_stored() -> bool:
            stored = metric(registry, "tubewatch_indexer_messages_total", outcome="stored")
            return stored == stored_before + 3

        await wait_until(all_replayed_and_stored, what="the replayed messages stored")
        await wait_until(holds(lambda: indexer.stores_ready), what="indexer ready")
    assert await ready_counts(amqp, queue_names) == (0, 0)
    assert await stored_counts(mongo_db, es, es_alias) == (23, 23)


async def test_a_replayed_message_that_fails_again_is_dead_lettered_again_not_replayed_in_a_loop(
    stack: StackSettings,
    amqp: aio_pika.abc.AbstractRobustConnection,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    es_alias: str,
) -> None:
    settings = _settings(stack, queue_names, mongo_db, es_alias)
    await publish(amqp, queue_names, [b"still not an event"])
    async with running_indexer(settings, amqp, mongo_db, es):

        async def dead_once() -> bool:
            return (await ready_counts(amqp, queue_names))[1] == 1

        await wait_until(dead_once, what="the dead letter")
        replayed = await _replay_dead(settings)
        assert [line["body"] for line in replayed] == ["still not an event"]
        again = await take_dead_letters(amqp, queue_names, 1)
    assert again[0].body == b"still not an event"
    assert again[0].headers[REPLAYED_HEADER] == 1
    assert "not JSON" in str(again[0].headers["x-tubewatch-dead-reason"])
