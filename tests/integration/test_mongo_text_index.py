"""MongoDB's text index (degraded-mode q): titles and channel titles, migrated from the older one.

The older catalogue is built with the definition earlier versions created (a text index on title and
description, named ``title_description_text``), so the migration starts where a deployment would.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from elasticsearch import AsyncElasticsearch
from pymongo import TEXT, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from services.api.app import create_app
from services.common.catalogue import (
    MONGO_TEXT_INDEX,
    MONGO_VIDEO_INDEXES,
    VIDEOS_COLLECTION,
    ensure_mongo_indexes,
    ensure_text_index,
    outdated_text_indexes,
)
from services.common.events import VideoEvent
from services.common.settings import StackSettings
from services.common.timefmt import truncate_to_ms, utc_now
from services.common.topology import QueueNames
from services.indexer.mongo_documents import new_document
from tests.factories import make_event
from tests.integration.api_support import api_settings, get_page
from tests.integration.indexer_support import IndexerProcess, shared_stack_settings
from tests.waiting import wait_until

# What ensure_mongo_indexes created before: the same other indexes, and this text index.
OLDER_TEXT_INDEX = IndexModel(
    [("title", TEXT), ("description", TEXT)], name="title_description_text", default_language="english"
)


def _videos(count: int) -> tuple[list[VideoEvent], dict[str, VideoEvent]]:
    rng = random.Random(22)
    plain = [make_event(rng) for _ in range(count)]
    special = {
        "title": make_event(rng, title="Quetzalcoatl bowling spell"),
        "channel": make_event(rng, channel=7).model_copy(update={"channel_title": "Wombat Sports Network"}),
        "description": make_event(rng).model_copy(update={"description": "A zeugma of googlies"}),
    }
    return plain + list(special.values()), special


async def _older_catalogue(db: AsyncDatabase[dict[str, Any]], events: list[VideoEvent]) -> None:
    await db[VIDEOS_COLLECTION].create_indexes([*MONGO_VIDEO_INDEXES, OLDER_TEXT_INDEX])
    now = truncate_to_ms(utc_now())
    await db[VIDEOS_COLLECTION].insert_many([new_document(e, now) for e in events])


async def _text_index_names(db: AsyncDatabase[dict[str, Any]]) -> list[str]:
    return [i["name"] async for i in await db[VIDEOS_COLLECTION].list_indexes() if i["key"].get("_fts") == "text"]


@pytest.fixture
async def degraded_api(
    stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]]
) -> AsyncIterator[TestClient[Any, Any]]:
    """The API with its alias missing: every list comes from MongoDB."""
    settings = api_settings(
        mongodb_url=stack.mongodb_url,
        mongodb_database=mongo_db.name,
        elasticsearch_url=stack.elasticsearch_url,
        elasticsearch_index=f"{mongo_db.name}-absent",
    )
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client


async def _ids(api: TestClient[Any, Any], q: str) -> list[str]:
    body, served_by = await get_page(api, {"q": q, "limit": "100"})
    assert served_by == "mongodb"
    return [item["video_id"] for item in body["items"]]


async def test_an_indexer_started_on_an_older_catalogue_replaces_its_text_index_and_degraded_q_follows(
    stack: StackSettings,
    queue_names: QueueNames,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    es_alias: str,
    degraded_api: TestClient[Any, Any],
    tmp_path: Path,
) -> None:
    events, special = _videos(3000)
    await _older_catalogue(mongo_db, events)
    assert await _text_index_names(mongo_db) == ["title_description_text"]
    # Under the older index, degraded q found description words.
    assert await _ids(degraded_api, "zeugma") == [special["description"].video_id]

    indexer = IndexerProcess(shared_stack_settings(stack, queue_names, mongo_db.name, es_alias), tmp_path)
    try:
        await indexer.start()
        # Ready does not wait for the text index: it is built beside the consumer.
        await indexer.wait_ready()

        async def migrated() -> bool:
            return await _text_index_names(mongo_db) == [MONGO_TEXT_INDEX.document["name"]]

        await wait_until(migrated, within=60, what=f"the text index replaced (log: {indexer.log})")
    finally:
        await indexer.stop()
    assert await outdated_text_indexes(mongo_db) == ([], True)
    # Titles and channel titles, whole words; descriptions no longer.
    assert await _ids(degraded_api, "quetzalcoatl") == [special["title"].video_id]
    assert await _ids(degraded_api, "wombat network") == [special["channel"].video_id]
    assert await _ids(degraded_api, "zeugma") == []
    assert len(await _ids(degraded_api, "highlights")) == 100
    # The other indexes are untouched and every video is still there.
    names = {i["name"] async for i in await mongo_db[VIDEOS_COLLECTION].list_indexes()}
    assert names == {"_id_", MONGO_TEXT_INDEX.document["name"], *(i.document["name"] for i in MONGO_VIDEO_INDEXES)}
    assert await mongo_db[VIDEOS_COLLECTION].count_documents({}) == len(events)


async def test_indexers_migrating_together_build_the_text_index_once_and_the_next_start_changes_nothing(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    events, _ = _videos(2000)
    await _older_catalogue(mongo_db, events)
    built = await asyncio.gather(*(ensure_text_index(mongo_db) for _ in range(3)))
    assert any(built)
    assert await _text_index_names(mongo_db) == [MONGO_TEXT_INDEX.document["name"]]
    assert await ensure_text_index(mongo_db) is False


async def test_while_the_text_index_is_being_built_degraded_q_is_503_and_listing_still_works(
    mongo_db: AsyncDatabase[dict[str, Any]], degraded_api: TestClient[Any, Any]
) -> None:
    events, _ = _videos(50)
    await ensure_mongo_indexes(mongo_db, text_index=False)
    now = truncate_to_ms(utc_now())
    await mongo_db[VIDEOS_COLLECTION].insert_many([new_document(e, now) for e in events])

    response = await degraded_api.get("/api/v1/videos", params={"q": "highlights"})
    assert response.status == 503
    error = (await response.json())["error"]
    assert error["code"] == "unavailable"
    assert "text index" in error["message"]
    body, served_by = await get_page(degraded_api, {"limit": "100"})
    assert served_by == "mongodb"
    assert len(body["items"]) == len(events)

    await ensure_text_index(mongo_db)
    with_the_word = {e.video_id for e in events if "highlights" in e.title.lower().split()}
    assert set(await _ids(degraded_api, "highlights")) == with_the_word
