"""Security headers on every kind of answer of the real app, the dashboard's strict CSP, and CORS wiring."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from html.parser import HTMLParser
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from elasticsearch import AsyncElasticsearch
from pymongo.asynchronous.database import AsyncDatabase

from services.api.app import create_app
from services.common.settings import StackSettings
from tests.integration.api_support import api_settings, prepare_stores

Client = TestClient[Any, Any]
ClientFactory = Callable[..., AbstractAsyncContextManager[Client]]
ALLOWED = "https://dash.example.org"


@pytest.fixture
async def make_client(
    stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str
) -> ClientFactory:
    await prepare_stores(mongo_db, es, es_alias)

    @asynccontextmanager
    async def make(**overrides: Any) -> AsyncIterator[Client]:
        settings = api_settings(
            mongodb_url=stack.mongodb_url,
            mongodb_database=mongo_db.name,
            elasticsearch_url=stack.elasticsearch_url,
            elasticsearch_index=es_alias,
            **overrides,
        )
        async with TestClient(TestServer(create_app(settings))) as client:
            yield client

    return make


ANSWERS = [
    ("/api/v1/videos?limit=1", 200),
    ("/api/v1/videos?limit=nope", 400),
    ("/api/v1/videos/aB3dE5fG7hI", 404),
    ("/api/v1/nothing", 404),
    ("/api/v1/channels", 200),
    ("/api/v1/status", 200),
    ("/api/openapi.json", 200),
    ("/api/docs", 200),
    ("/api/docs/init.js", 200),
    ("/api/docs/assets/swagger-ui.css", 200),
    ("/healthz", 200),
    ("/metrics", 200),
    ("/", 200),
]


async def test_every_answer_carries_nosniff_and_a_referrer_policy(make_client: ClientFactory) -> None:
    async with make_client() as client:
        for path, status in ANSWERS:
            response = await client.get(path)
            assert response.status == status, path
            assert response.headers.get("X-Content-Type-Options") == "nosniff", path
            assert response.headers.get("Referrer-Policy") == "no-referrer", path
        refused = await client.post("/api/v1/videos")
        assert refused.status == 405
        assert refused.headers["X-Content-Type-Options"] == "nosniff"


def policy(header: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = words[1:]
    return directives


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.handlers: list[str] = []
        self._open: dict[str, str | None] | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handlers += [name for name, _ in attrs if name.lower().startswith("on")]
        self.handlers += [f"{name}={value}" for name, value in attrs if (value or "").lower().startswith("javascript:")]
        if tag == "script":
            self._open, self._text = dict(attrs), ""

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._open is not None:
            self.scripts.append((self._open, self._text))
            self._open = None


@pytest.mark.parametrize("path", ["/", "/api/docs"])
async def test_pages_run_no_inline_script(make_client: ClientFactory, path: str) -> None:
    async with make_client() as client:
        response = await client.get(path)
        parser = _Scripts()
        parser.feed(await response.text())
    assert parser.scripts, "the page loads its scripts"
    for attrs, text in parser.scripts:
        assert (attrs.get("src") or "").startswith("/"), attrs  # a file of this server
        assert not text.strip(), f"inline script body: {text[:80]!r}"
    assert parser.handlers == []


async def test_the_dashboard_policy_allows_no_inline_or_foreign_script(make_client: ClientFactory) -> None:
    async with make_client() as client:
        response = await client.get("/")
    directives = policy(response.headers["Content-Security-Policy"])
    # script-src, or default-src when absent, governs scripts; neither may allow inline code.
    scripts = directives.get("script-src", directives.get("default-src"))
    assert scripts == ["'self'"], scripts
    for name in ("default-src", "script-src", "script-src-elem", "script-src-attr"):
        for source in directives.get(name, []):
            assert source not in (
                "'unsafe-inline'",
                "'unsafe-eval'",
                "'unsafe-hashes'",
                "*",
                "data:",
                "http:",
                "https:",
            )
    assert directives["object-src"] == ["'none'"]
    assert directives["base-uri"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]


async def test_cors_is_closed_by_default(make_client: ClientFactory) -> None:
    async with make_client() as client:
        for path in ("/api/v1/videos", "/api/v1/status", "/api/openapi.json", "/"):
            response = await client.get(path, headers={"Origin": ALLOWED})
            assert not [h for h in response.headers if h.lower().startswith("access-control-")], path
        preflight = await client.options(
            "/api/v1/videos", headers={"Origin": ALLOWED, "Access-Control-Request-Method": "GET"}
        )
        assert preflight.status == 405
        assert "Access-Control-Allow-Origin" not in preflight.headers


async def test_configured_origins_read_the_api_and_pass_preflights(make_client: ClientFactory) -> None:
    async with make_client(api_cors_origins=[ALLOWED, "http://localhost:5173"]) as client:
        response = await client.get("/api/v1/videos", headers={"Origin": ALLOWED})
        assert response.status == 200
        assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
        assert "X-Served-By" in response.headers["Access-Control-Expose-Headers"]
        assert "Origin" in response.headers["Vary"]
        error = await client.get("/api/v1/videos?limit=nope", headers={"Origin": ALLOWED})
        assert error.status == 400  # a page of that origin can read why
        assert error.headers["Access-Control-Allow-Origin"] == ALLOWED
        preflight = await client.options(
            "/api/v1/videos/aB3dE5fG7hI",
            headers={
                "Origin": ALLOWED,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "x-request-id",
            },
        )
        assert preflight.status == 204
        assert preflight.headers["Access-Control-Allow-Origin"] == ALLOWED
        assert "X-Request-Id" in preflight.headers  # answered inside the API's own middleware
        foreign = await client.get("/api/v1/videos", headers={"Origin": "https://evil.example.net"})
        assert "Access-Control-Allow-Origin" not in foreign.headers
        dashboard = await client.get("/", headers={"Origin": ALLOWED})
        assert "Access-Control-Allow-Origin" not in dashboard.headers
