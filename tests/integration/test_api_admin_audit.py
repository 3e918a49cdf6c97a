"""The audit log: every change of the sources, by whose token, before and after, newest first, cursor-paged;
and SOURCES_FROM_ENV=always: the environment replaces the sources at each start and changes are refused."""

from __future__ import annotations

from typing import Any

from elasticsearch import AsyncElasticsearch
from pymongo.asynchronous.database import AsyncDatabase

from services.api.admin_models import AuditPage
from services.common.settings import StackSettings
from services.common.sources import AUDIT_COLLECTION, AUDIT_TTL_INDEX, load_sources
from tests.integration.admin_support import AUTH, BOB, CHANNEL_A, CHANNEL_B, admin_api, json_of
from tests.integration.api_support import prepare_stores


async def test_every_change_is_audited_newest_first_with_the_token_label(
    stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    await prepare_stores(mongo_db, es, es_alias)
    async with admin_api(stack, mongo_db, es_alias, search_queries="cricket", admin_audit_days=7) as api:
        query = await json_of(await api.post("/api/v1/admin/queries", json={"text": "chess"}, headers=AUTH), 201)
        await json_of(await api.patch(f"/api/v1/admin/queries/{query['id']}", json={"weight": 3}, headers=BOB), 200)
        # A patch that changes nothing writes nothing.
        await json_of(await api.patch(f"/api/v1/admin/queries/{query['id']}", json={"weight": 3}, headers=BOB), 200)
        await json_of(await api.post("/api/v1/admin/channels", json={"channel_id": CHANNEL_A}, headers=AUTH), 201)
        assert (await api.delete(f"/api/v1/admin/queries/{query['id']}", headers=AUTH)).status == 204

        entries = []
        cursor: str | None = None
        while True:
            page = AuditPage.model_validate(
                await json_of(
                    await api.get(
                        "/api/v1/admin/audit",
                        params={"limit": "2", **({"cursor": cursor} if cursor else {})},
                        headers=AUTH,
                    ),
                    200,
                )
            )
            entries += page.items
            cursor = page.next_cursor
            if cursor is None:
                break
        assert [(e.actor, e.action, e.kind) for e in entries] == [
            ("alice", "delete", "query"),
            ("alice", "create", "channel"),
            ("bob", "update", "query"),
            ("alice", "create", "query"),
            ("environment", "create", "query"),
        ]
        update = entries[2]
        assert update.target == query["id"]
        assert (update.before or {})["weight"] == 1 and (update.after or {})["weight"] == 3
        assert entries[0].after is None and (entries[0].before or {})["text"] == "chess"
        bad = await json_of(await api.get("/api/v1/admin/audit", params={"cursor": "nope"}, headers=AUTH), 400)
        assert bad["error"]["parameter"] == "cursor"
    indexes = await mongo_db[AUDIT_COLLECTION].index_information()
    assert indexes[AUDIT_TTL_INDEX]["expireAfterSeconds"] == 7 * 86_400
    # A changed ADMIN_AUDIT_DAYS changes the TTL in place.
    async with admin_api(stack, mongo_db, es_alias, search_queries="cricket", admin_audit_days=30):
        pass
    assert (await mongo_db[AUDIT_COLLECTION].index_information())[AUDIT_TTL_INDEX]["expireAfterSeconds"] == 30 * 86_400


async def test_sources_from_env_always_replaces_the_sets_at_each_start_and_refuses_changes(
    stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    await prepare_stores(mongo_db, es, es_alias)
    async with admin_api(stack, mongo_db, es_alias, search_queries="cricket") as api:
        await json_of(await api.post("/api/v1/admin/queries", json={"text": "chess"}, headers=AUTH), 201)
    # What the first start seeded keeps its id when the environment manages it from now on.
    cricket_id = (await load_sources(mongo_db)).by_text["cricket"].id
    async with admin_api(
        stack,
        mongo_db,
        es_alias,
        search_queries="cricket, go",
        follow_channels=f"{CHANNEL_A} {CHANNEL_B}",
        sources_from_env="always",
    ) as api:
        sources = await load_sources(mongo_db)
        assert [q.text for q in sources.queries] == ["cricket", "go"]
        assert sources.by_text["cricket"].id == cricket_id
        assert sources.explicit_channels == [CHANNEL_A, CHANNEL_B]
        listed = await json_of(await api.get("/api/v1/admin/queries", headers=AUTH), 200)
        assert listed["managed_by_environment"] is True
        for method, path, body in [
            ("POST", "/api/v1/admin/queries", {"text": "chess"}),
            ("PATCH", f"/api/v1/admin/queries/{cricket_id}", {"paused": True}),
            ("DELETE", f"/api/v1/admin/queries/{cricket_id}", None),
            ("POST", "/api/v1/admin/channels", {"channel_id": CHANNEL_A}),
            ("PATCH", f"/api/v1/admin/channels/{CHANNEL_A}", {"excluded": True}),
        ]:
            error = (await json_of(await api.request(method, path, json=body, headers=AUTH), 409))["error"]
            assert (error["code"], "SOURCES_FROM_ENV=always" in error["message"]) == ("conflict", True), path
    # The marker says so: an API of another configuration refuses too.
    async with admin_api(stack, mongo_db, es_alias, search_queries="cricket") as api:
        refused = await api.post("/api/v1/admin/queries", json={"text": "chess"}, headers=AUTH)
        assert refused.status == 409
