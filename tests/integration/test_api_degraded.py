"""Degraded mode on a PRIVATE Elasticsearch: stop it, the API serves from MongoDB; start it, ES again.

Never the shared servers: the session's private_stack has its own MongoDB and Elasticsearch.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from elasticsearch import AsyncElasticsearch
from pymongo import AsyncMongoClient

from services.api.app import create_app
from services.common.events import VideoEvent
from tests.integration.api_support import api_settings, get_page, newest_first, prepare_stores, spread_events, write
from tests.private_stack import PrivateStack
from tests.waiting import wait_until


@pytest.fixture
async def private_catalogue(private_stack: PrivateStack, unique_name: str) -> AsyncIterator[list[VideoEvent]]:
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(private_stack.mongodb_url, tz_aware=True)
    es = AsyncElasticsearch(private_stack.elasticsearch_url, request_timeout=30)
    database = unique_name.replace("-", "_")
    events = spread_events(random.Random(17), 250)
    try:
        await write(await prepare_stores(mongo[database], es, unique_name), es, unique_name, events)
        yield events
    finally:
        try:
            await mongo.drop_database(database)
            if await es.ping():
                found = await es.indices.get(index=f"{unique_name}*", allow_no_indices=True)
                if found.body:
                    await es.indices.delete(index=",".join(found.body))
        finally:
            # Closed even when a store is still down: an unclosed client would fail a later test.
            await mongo.close()
            await es.close()


@pytest.fixture
async def api(private_stack: PrivateStack, unique_name: str) -> AsyncIterator[TestClient[Any, Any]]:
    settings = api_settings(
        mongodb_url=private_stack.mongodb_url,
        mongodb_database=unique_name.replace("-", "_"),
        elasticsearch_url=private_stack.elasticsearch_url,
        elasticsearch_index=unique_name,
    )
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client


async def test_listing_and_q_fall_back_to_mongodb_while_elasticsearch_is_down_and_return_without_restart(
    api: TestClient[Any, Any], private_catalogue: list[VideoEvent], private_stack: PrivateStack
) -> None:
    expected = newest_first(private_catalogue)
    first, served_by = await get_page(api, {"limit": "100"})
    assert served_by == "elasticsearch"
    assert (await api.get("/api/v1/videos", params={"q": "cricket", "sort": "relevance"})).status == 200

    await asyncio.to_thread(private_stack.stop, "elasticsearch")
    try:
        # The walk started on Elasticsearch goes on from MongoDB with the same cursor, same order.
        ids = [item["video_id"] for item in first["items"]]
        cursor = first["next_cursor"]
        while cursor:
            body, served_by = await get_page(api, {"limit": "100", "cursor": cursor})
            assert served_by == "mongodb"
            ids += [item["video_id"] for item in body["items"]]
            cursor = body["next_cursor"]
        assert ids == expected

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
    finally:
        await asyncio.to_thread(private_stack.start, "elasticsearch")

    async def served_by_elasticsearch_again() -> bool:
        _, served = await get_page(api, {"limit": "1"})
        return served == "elasticsearch"

    await wait_until(served_by_elasticsearch_again, within=60, what="the API to use Elasticsearch again")
    response = await api.get("/api/v1/videos", params={"q": "cricket", "sort": "relevance"})
    assert response.status == 200
