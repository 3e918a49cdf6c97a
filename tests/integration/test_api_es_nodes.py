"""The API given several Elasticsearch nodes: one of them dead fails no read (the client retries
another node), and with every node dead the API still falls back to MongoDB at once."""

from __future__ import annotations

import random
import time
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from elasticsearch import AsyncElasticsearch
from pymongo.asynchronous.database import AsyncDatabase

from services.api.app import create_app
from services.common.settings import StackSettings
from tests.conftest import free_port
from tests.integration.api_support import api_settings, get_page, newest_first, prepare_stores, spread_events, write


async def test_a_dead_node_in_the_list_fails_no_read_and_all_dead_falls_back_at_once(
    stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    events = spread_events(random.Random(29), 60)
    await write(await prepare_stores(mongo_db, es, es_alias), es, es_alias, events)
    dead = [f"http://127.0.0.1:{free_port()}" for _ in range(2)]

    settings = api_settings(
        mongodb_url=stack.mongodb_url,
        mongodb_database=mongo_db.name,
        elasticsearch_url=f"{dead[0]},{stack.elasticsearch_url},{dead[1]}",
        elasticsearch_index=es_alias,
    )
    async with TestClient(TestServer(create_app(settings))) as api:
        for _ in range(30):
            body, served_by = await get_page(api, {"limit": "20"})
            assert served_by == "elasticsearch"
            assert [item["video_id"] for item in body["items"]] == newest_first(events)[:20]

    settings = api_settings(
        mongodb_url=stack.mongodb_url,
        mongodb_database=mongo_db.name,
        elasticsearch_url=",".join(dead),
        elasticsearch_index=es_alias,
    )
    async with TestClient(TestServer(create_app(settings))) as api:
        started = time.monotonic()
        body, served_by = await get_page(api, {"limit": "20"})
        assert served_by == "mongodb"
        assert time.monotonic() - started < 2
        assert [item["video_id"] for item in body["items"]] == newest_first(events)[:20]
