"""The served OpenAPI document and its interactive viewer (swagger-ui-dist installed by `make install`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.api.app import create_app
from services.api.openapi import build_openapi
from services.common.settings import StackSettings
from tests.integration.api_support import api_settings


@pytest.fixture
async def api(stack: StackSettings, unique_name: str) -> AsyncIterator[TestClient[Any, Any]]:
    settings = api_settings(
        mongodb_url=stack.mongodb_url,
        mongodb_database=unique_name.replace("-", "_"),
        elasticsearch_url=stack.elasticsearch_url,
        elasticsearch_index=unique_name,
    )
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client


async def test_the_served_document_is_the_generated_openapi_3_1(api: TestClient[Any, Any]) -> None:
    response = await api.get("/api/openapi.json")
    assert response.status == 200
    assert await response.json() == build_openapi()


async def test_the_viewer_page_and_its_assets_are_served_locally(api: TestClient[Any, Any]) -> None:
    page = await api.get("/api/docs")
    assert page.status == 200
    html = await page.text()
    assert "<script>" not in html  # no inline script: works under a strict CSP
    assert "http" not in html  # every asset from this server, none from a CDN
    for asset, kind in (
        ("/api/docs/assets/swagger-ui-bundle.js", "javascript"),
        ("/api/docs/assets/swagger-ui.css", "text/css"),
        ("/api/docs/init.js", "javascript"),
    ):
        assert asset in html
        response = await api.get(asset)
        assert response.status == 200, asset
        assert kind in response.headers["Content-Type"]
    init = await (await api.get("/api/docs/init.js")).text()
    assert "/api/openapi.json" in init
    bundle = await (await api.get("/api/docs/assets/swagger-ui-bundle.js")).text()
    assert "SwaggerUIBundle" in bundle
