"""The admin API's gate: 404 while ADMIN_TOKENS is unset, 401 without a valid token, 429 after repeated failures,
CORS closed whatever API_CORS_ORIGINS says, no token in any answer or log line."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch
from pymongo.asynchronous.database import AsyncDatabase

from services.api.admin_auth import FAILURES_ALLOWED
from services.api.routes import ADMIN_ROUTES
from services.common.settings import StackSettings
from tests.integration.admin_support import ADMIN_TOKEN, AUTH, BOB, OTHER_TOKEN, admin_api, json_of
from tests.integration.api_support import prepare_stores

PATHS = [
    route.path.format(query_id="q_0123456789abcdef", channel_id="UC" + "c" * 22, saved_search_id="ss_" + "s" * 22)
    for route in ADMIN_ROUTES
]


async def test_without_admin_tokens_everything_under_admin_is_404(
    stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    await prepare_stores(mongo_db, es, es_alias)
    async with admin_api(stack, mongo_db, es_alias, admin_tokens=None) as api:
        for route, path in zip(ADMIN_ROUTES, [*PATHS], strict=True):
            response = await api.request(route.method, path, headers=AUTH)
            error = (await json_of(response, 404))["error"]
            assert error["code"] == "not_found"
            assert "ADMIN_TOKENS" in error["message"]
        assert (await api.get("/api/v1/admin/anything/else")).status == 404
        assert (await api.get("/api/v1/status")).status == 200


async def test_a_missing_or_wrong_token_is_401_then_429_while_a_valid_token_still_passes(
    stack: StackSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    es: AsyncElasticsearch,
    es_alias: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await prepare_stores(mongo_db, es, es_alias)
    caplog.set_level(logging.DEBUG)
    async with admin_api(stack, mongo_db, es_alias) as api:
        missing = await api.get("/api/v1/admin/queries")
        assert (await json_of(missing, 401))["error"]["code"] == "unauthorized"
        assert missing.headers["WWW-Authenticate"].startswith("Bearer")
        wrong_headers = [
            {"Authorization": "Bearer " + ADMIN_TOKEN[:-1] + "z"},
            {"Authorization": "Basic " + ADMIN_TOKEN},
            {"Authorization": ADMIN_TOKEN},
            {"Authorization": "Bearer "},
        ]
        for failure in range(FAILURES_ALLOWED - 1):
            response = await api.get("/api/v1/admin/queries", headers=wrong_headers[failure % len(wrong_headers)])
            assert response.status == 401, failure
        throttled = await api.get("/api/v1/admin/queries", headers=wrong_headers[0])
        assert throttled.status == 429
        assert 1 <= int(throttled.headers["Retry-After"]) <= 60
        assert (await throttled.json())["error"]["code"] == "too_many_requests"
        # The slow-down is for failures: an admin with a valid token is not locked out by them.
        assert (await api.get("/api/v1/admin/queries", headers=BOB)).status == 200
        body = await (await api.get("/api/v1/admin/queries", headers=AUTH)).text()
        assert ADMIN_TOKEN not in body and OTHER_TOKEN not in body
    logged = "\n".join(record.getMessage() + str(record.__dict__) for record in caplog.records)
    assert ADMIN_TOKEN[:-1] not in logged and OTHER_TOKEN not in logged


async def test_cors_stays_closed_for_admin_routes_whatever_api_cors_origins_says(
    stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> None:
    await prepare_stores(mongo_db, es, es_alias)
    origin = "https://dash.example"
    async with admin_api(stack, mongo_db, es_alias, api_cors_origins=origin) as api:
        public = await api.get("/api/v1/status", headers={"Origin": origin})
        assert public.headers["Access-Control-Allow-Origin"] == origin
        admin = await api.get("/api/v1/admin/queries", headers=AUTH | {"Origin": origin})
        assert admin.status == 200
        assert not [name for name in admin.headers if name.lower().startswith("access-control-")]
        preflight = await api.options(
            "/api/v1/admin/queries",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert "Access-Control-Allow-Origin" not in preflight.headers
        assert preflight.status != 204
