"""/api/v1/queries lists the sources in MongoDB, active and paused, not SEARCH_QUERIES."""

from __future__ import annotations

from typing import Any

from elasticsearch import AsyncElasticsearch
from pymongo.asynchronous.database import AsyncDatabase

from services.api.models import QueryList
from services.common.settings import StackSettings
from tests.integration.admin_support import AUTH, admin_api, json_of
from tests.integration.api_support import prepare_stores


async def test_a_query_added_paused_or_removed_through_the_admin_api_is_listed_as_such(
    stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    await prepare_stores(mongo_db, es, es_alias)
    async with admin_api(stack, mongo_db, es_alias, search_queries="cricket, chess") as api:
        seeded = QueryList.model_validate(await json_of(await api.get("/api/v1/queries"), 200))
        assert [(q.query, q.paused) for q in seeded.items] == [("cricket", False), ("chess", False)]

        listed = (await json_of(await api.get("/api/v1/admin/queries", headers=AUTH), 200))["items"]
        ids = {q["text"]: q["id"] for q in listed}
        await json_of(await api.post("/api/v1/admin/queries", json={"text": "world cup"}, headers=AUTH), 201)
        pause = await api.patch(f"/api/v1/admin/queries/{ids['chess']}", json={"paused": True}, headers=AUTH)
        await json_of(pause, 200)
        assert (await api.delete(f"/api/v1/admin/queries/{ids['cricket']}", headers=AUTH)).status == 204

        after = QueryList.model_validate(await json_of(await api.get("/api/v1/queries"), 200))
        assert [(q.query, q.paused) for q in after.items] == [("chess", True), ("world cup", False)]
        assert all(q.planned_interval_seconds is None for q in after.items)
