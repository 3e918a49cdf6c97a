"""Helpers of the admin API's integration tests: an API with tokens over per-test stores, requests with a token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from pymongo.asynchronous.database import AsyncDatabase

from services.api.app import create_app
from services.common.settings import StackSettings
from tests.integration.api_support import api_settings
from tests.waiting import wait_until

ADMIN_TOKEN = "test-admin-token-" + "a" * 32
OTHER_TOKEN = "test-other-token-" + "b" * 32
ADMIN_TOKENS = f"alice:{ADMIN_TOKEN} bob:{OTHER_TOKEN}"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
BOB = {"Authorization": f"Bearer {OTHER_TOKEN}"}
# Channel ids of the form channels.list knows (UC + 22 characters).
CHANNEL_A = "UC" + "a" * 22
CHANNEL_B = "UC" + "b" * 22

Client = TestClient[Any, Any]


@asynccontextmanager
async def admin_api(
    stack: StackSettings, db: AsyncDatabase[dict[str, Any]], alias: str, **overrides: Any
) -> AsyncIterator[Client]:
    """The API with ADMIN_TOKENS (alice and bob) over this test's stores, its sources seeded."""
    settings = api_settings(
        mongodb_url=stack.mongodb_url,
        mongodb_database=db.name,
        elasticsearch_url=stack.elasticsearch_url,
        elasticsearch_index=alias,
        **({"admin_tokens": ADMIN_TOKENS} | overrides),
    )
    async with TestClient(TestServer(create_app(settings))) as client:

        async def seeded() -> bool:
            response = await client.get("/readyz")
            return bool((await response.json())["checks"]["sources"]["ok"])

        await wait_until(seeded, within=30, what="the API seeding the sources")
        yield client


async def json_of(response: Any, status: int) -> Any:
    body = await response.json()
    assert response.status == status, body
    return body
