"""The admin API's queries: seeded from SEARCH_QUERIES once, then added, paused, reweighted, removed."""

from __future__ import annotations

from typing import Any

from elasticsearch import AsyncElasticsearch
from pymongo.asynchronous.database import AsyncDatabase

from services.api.admin_models import AdminQuery, AdminQueryList
from services.common.settings import StackSettings
from services.common.sources import SOURCES_COLLECTION, load_sources
from tests.integration.admin_support import AUTH, admin_api, json_of
from tests.integration.api_support import prepare_stores


async def test_the_environment_seeds_the_queries_once_and_an_added_query_is_stored_normalised(
    stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    await prepare_stores(mongo_db, es, es_alias)
    async with admin_api(stack, mongo_db, es_alias, search_queries="cricket, chess") as api:
        listed = AdminQueryList.model_validate(await json_of(await api.get("/api/v1/admin/queries", headers=AUTH), 200))
        assert [q.text for q in listed.items] == ["cricket", "chess"]
        assert all(q.weight == 1 and not q.paused for q in listed.items)
        assert listed.managed_by_environment is False

        created = AdminQuery.model_validate(
            await json_of(
                await api.post("/api/v1/admin/queries", json={"text": "  world cup ", "weight": 2.5}, headers=AUTH),
                201,
            )
        )
        assert (created.text, created.weight, created.paused, created.videos_stored) == ("world cup", 2.5, False, 0)
        fetched = await json_of(await api.get(f"/api/v1/admin/queries/{created.id}", headers=AUTH), 200)
        assert fetched["text"] == "world cup"

        duplicate = await json_of(
            await api.post("/api/v1/admin/queries", json={"text": "world cup"}, headers=AUTH), 409
        )
        assert duplicate["error"]["code"] == "conflict"
        assert duplicate["error"]["parameter"] == "text"

    # Every query removed, a restart does not bring the environment's back.
    async with admin_api(stack, mongo_db, es_alias, search_queries="cricket, chess") as api:
        for query in (await json_of(await api.get("/api/v1/admin/queries", headers=AUTH), 200))["items"]:
            response = await api.delete(f"/api/v1/admin/queries/{query['id']}", headers=AUTH)
            assert response.status == 204
    async with admin_api(stack, mongo_db, es_alias, search_queries="cricket, chess") as api:
        assert (await json_of(await api.get("/api/v1/admin/queries", headers=AUTH), 200))["items"] == []
    assert (await load_sources(mongo_db)).queries == ()


async def test_a_query_is_paused_reweighted_by_merge_patch_and_removed(
    stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    await prepare_stores(mongo_db, es, es_alias)
    async with admin_api(stack, mongo_db, es_alias) as api:
        created = await json_of(await api.post("/api/v1/admin/queries", json={"text": "chess"}, headers=AUTH), 201)
        path = f"/api/v1/admin/queries/{created['id']}"
        paused = await json_of(
            await api.patch(
                path,
                data=b'{"paused": true, "weight": 4}',
                headers=AUTH | {"Content-Type": "application/merge-patch+json"},
            ),
            200,
        )
        assert (paused["paused"], paused["weight"], paused["next_poll_at"]) == (True, 4, None)
        sources = await load_sources(mongo_db)
        assert "chess" not in [q.text for q in sources.searched_queries]
        assert sources.by_text["chess"].weight == 4

        reset = await json_of(await api.patch(path, json={"weight": None}, headers=AUTH), 200)
        assert (reset["paused"], reset["weight"]) == (True, 1)
        resumed = await json_of(await api.patch(path, json={"paused": False}, headers=AUTH), 200)
        assert resumed["paused"] is False
        assert "chess" in [q.text for q in (await load_sources(mongo_db)).searched_queries]

        assert (await api.delete(path, headers=AUTH)).status == 204
        gone = await json_of(await api.get(path, headers=AUTH), 404)
        assert gone["error"] == {"code": "not_found", "message": gone["error"]["message"], "parameter": "query_id"}
        assert await mongo_db[SOURCES_COLLECTION].count_documents({"text": "chess"}) == 0


async def test_invalid_bodies_name_the_field_and_wrong_kinds_of_body_are_refused(
    stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    await prepare_stores(mongo_db, es, es_alias)
    async with admin_api(stack, mongo_db, es_alias) as api:
        cases = [
            ({"text": ""}, "text"),
            ({"text": "   "}, "text"),
            ({"text": "x" * 101}, "text"),
            ({"text": "bell\x07"}, "text"),
            ({"text": "ok", "weight": 0.05}, "weight"),
            ({"text": "ok", "weight": 11}, "weight"),
            ({"text": "ok", "weight": "2"}, "weight"),
            ({"text": "ok", "colour": "red"}, "colour"),
            ({}, "text"),
        ]
        for body, parameter in cases:
            error = (await json_of(await api.post("/api/v1/admin/queries", json=body, headers=AUTH), 400))["error"]
            assert (error["code"], error["parameter"]) == ("invalid_parameter", parameter), body

        too_large = await api.post(
            "/api/v1/admin/queries",
            data=b'{"text": "' + b"x" * 70_000 + b'"}',
            headers=AUTH | {"Content-Type": "application/json"},
        )
        assert (await json_of(too_large, 413))["error"]["code"] == "payload_too_large"
        form = await api.post("/api/v1/admin/queries", data={"text": "chess"}, headers=AUTH)
        assert (await json_of(form, 415))["error"]["code"] == "unsupported_media_type"
        not_json = await api.post(
            "/api/v1/admin/queries", data=b"{text", headers=AUTH | {"Content-Type": "application/json"}
        )
        assert (await json_of(not_json, 400))["error"]["code"] == "invalid_request"
        bad_id = await json_of(await api.get("/api/v1/admin/queries/nope", headers=AUTH), 400)
        assert bad_id["error"]["parameter"] == "query_id"
