"""CORS: closed by default, exact configured origins only, preflights for existing GET endpoints only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import ValidationError

from services.api.cors import EXPOSED_HEADERS, add_cors, normalize_origin
from services.api.settings import Settings

ALLOWED = "https://dash.example.org"
FOREIGN = "https://evil.example.net"


@asynccontextmanager
async def cors_client(origins: list[str]) -> AsyncIterator[TestClient[Any, Any]]:
    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    add_cors(app, origins)
    app.router.add_get("/api/v1/videos", ok)
    app.router.add_get("/api/v1/videos/{video_id}", ok)
    app.router.add_get("/", ok)
    async with TestClient(TestServer(app)) as client:
        yield client


def preflight_headers(origin: str, method: str = "GET", headers: str | None = None) -> dict[str, str]:
    asked = {"Origin": origin, "Access-Control-Request-Method": method}
    return asked | ({"Access-Control-Request-Headers": headers} if headers is not None else {})


def no_cors_headers(response: Any) -> bool:
    return not any(name.lower().startswith("access-control-") for name in response.headers)


async def test_closed_by_default_no_cors_header_and_no_preflight() -> None:
    async with cors_client([]) as client:
        for origin in (FOREIGN, ALLOWED, "null"):
            response = await client.get("/api/v1/videos", headers={"Origin": origin})
            assert response.status == 200
            assert no_cors_headers(response)
            assert "Vary" not in response.headers
            preflight = await client.options("/api/v1/videos", headers=preflight_headers(origin))
            assert preflight.status == 405
            assert no_cors_headers(preflight)


async def test_an_allowed_origin_reads_answers_and_passes_preflights() -> None:
    async with cors_client([ALLOWED]) as client:
        response = await client.get("/api/v1/videos/abc", headers={"Origin": ALLOWED})
        assert response.status == 200
        assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
        assert response.headers["Access-Control-Expose-Headers"] == EXPOSED_HEADERS
        assert "Origin" in response.headers["Vary"]
        assert "Access-Control-Allow-Credentials" not in response.headers

        preflight = await client.options("/api/v1/videos", headers=preflight_headers(ALLOWED, headers="X-Request-Id"))
        assert preflight.status == 204
        assert preflight.headers["Access-Control-Allow-Origin"] == ALLOWED
        assert preflight.headers["Access-Control-Allow-Methods"] == "GET, HEAD"
        assert preflight.headers["Access-Control-Allow-Headers"] == "X-Request-Id"
        assert int(preflight.headers["Access-Control-Max-Age"]) > 0
        assert "Origin" in preflight.headers["Vary"]


@pytest.mark.parametrize(
    ("path", "asked", "status"),
    [
        ("/api/v1/videos", preflight_headers(FOREIGN), 405),
        ("/api/v1/videos", preflight_headers(ALLOWED + ":8443"), 405),  # another port is another origin
        ("/api/v1/videos", preflight_headers("http://dash.example.org"), 405),  # and another scheme
        ("/api/v1/videos", preflight_headers("null"), 405),
        ("/api/v1/videos", preflight_headers(ALLOWED, method="DELETE"), 405),
        ("/api/v1/videos", preflight_headers(ALLOWED, headers="Authorization"), 405),
        ("/api/v1/nothing-here", preflight_headers(ALLOWED), 404),
        ("/", preflight_headers(ALLOWED), 405),  # only the API, not the dashboard
    ],
    ids=["foreign", "other-port", "other-scheme", "null", "delete", "credentials-header", "no-endpoint", "outside"],
)
async def test_preflights_not_allowed_get_no_cors_header(path: str, asked: dict[str, str], status: int) -> None:
    async with cors_client([ALLOWED]) as client:
        response = await client.options(path, headers=asked)
        assert response.status == status
        assert no_cors_headers(response)


async def test_a_foreign_origin_gets_the_answer_but_no_permission_to_read_it() -> None:
    async with cors_client([ALLOWED]) as client:
        response = await client.get("/api/v1/videos", headers={"Origin": FOREIGN})
        assert response.status == 200
        assert no_cors_headers(response)
        assert response.headers["Vary"] == "Origin"  # cached answers are kept apart per origin
        outside = await client.get("/", headers={"Origin": ALLOWED})
        assert no_cors_headers(outside)
        assert "Vary" not in outside.headers


@pytest.mark.parametrize(
    ("text", "origin"),
    [
        ("https://Dash.Example.org", "https://dash.example.org"),
        ("https://dash.example.org:443", "https://dash.example.org"),
        ("http://localhost:80", "http://localhost"),
        ("http://127.0.0.1:5173", "http://127.0.0.1:5173"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_origins_are_normalized_as_browsers_send_them(text: str, origin: str) -> None:
    assert normalize_origin(text) == origin


@pytest.mark.parametrize(
    "text",
    [
        "*",
        "null",
        "dash.example.org",
        "https://dash.example.org/",
        "https://dash.example.org/app",
        "https://*.example.org",
        "ftp://dash.example.org",
        "https://user:pass@dash.example.org",
        "https://dash.example.org:99999",
        "https://dash..example.org",
    ],
)
def test_anything_but_an_exact_origin_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not an origin"):
        normalize_origin(text)


def test_the_setting_splits_normalizes_and_refuses_wildcards(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("API_CORS_ORIGINS", raising=False)
    assert Settings().api_cors_origins == []
    monkeypatch.setenv("API_CORS_ORIGINS", "https://Dash.Example.org, http://localhost:5173  https://dash.example.org")
    assert Settings().api_cors_origins == ["https://dash.example.org", "http://localhost:5173"]
    monkeypatch.setenv("API_CORS_ORIGINS", "*")
    with pytest.raises(ValidationError, match="not an origin"):
        Settings()
