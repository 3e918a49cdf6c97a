"""GET / and the dashboard's assets: content types, caching, conditional requests, no way out of the folder."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from services.api.dashboard import (
    ASSETS_PREFIX,
    IMMUTABLE,
    REVALIDATE,
    VERSION_PLACEHOLDER,
    add_dashboard_routes,
    load_assets,
)
from services.api.security import add_security_headers


@pytest.fixture
async def client() -> AsyncIterator[TestClient[Any, Any]]:
    app = web.Application()
    add_dashboard_routes(app)
    app.on_response_prepare.append(add_security_headers)  # as create_app does for every answer
    async with TestClient(TestServer(app)) as running:
        yield running


def asset_urls(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="(/assets/[^"]+)"', html)


async def test_the_page_is_html_revalidated_with_a_strict_content_security_policy(
    client: TestClient[Any, Any],
) -> None:
    response = await client.get("/")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Cache-Control"] == REVALIDATE
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    html = await response.text()
    assert VERSION_PLACEHOLDER not in html
    # Nothing inline: every script is a file of ours, no handler attributes, no style attributes.
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) is None
    assert re.search(r"\son[a-z]+=", html) is None
    assert re.search(r"\sstyle=", html) is None


async def test_every_asset_the_page_names_is_served_with_its_type_and_a_year_of_caching(
    client: TestClient[Any, Any],
) -> None:
    html = await (await client.get("/")).text()
    urls = asset_urls(html)
    assert {url.rsplit("/", 1)[-1] for url in urls} >= {"app.css", "main.js", "icon.svg"}
    expected_types = {
        ".css": "text/css; charset=utf-8",
        ".js": "text/javascript; charset=utf-8",
        ".svg": "image/svg+xml",
    }
    for url in urls:
        response = await client.get(url)
        assert response.status == 200, url
        assert response.headers["Content-Type"] == expected_types[Path(url).suffix]
        assert response.headers["Cache-Control"] == IMMUTABLE


async def test_modules_imported_by_main_resolve_under_the_same_version(client: TestClient[Any, Any]) -> None:
    main_url = next(url for url in asset_urls(await (await client.get("/")).text()) if url.endswith("main.js"))
    source = await (await client.get(main_url)).text()
    imports = re.findall(r'from "\./([^"]+)"', source)
    assert imports
    for module in imports:
        response = await client.get(main_url.rsplit("/", 1)[0] + "/" + module)
        assert response.status == 200, module
        assert response.headers["Cache-Control"] == IMMUTABLE


async def test_a_conditional_request_gets_304_without_a_body(client: TestClient[Any, Any]) -> None:
    first = await client.get("/")
    etag = first.headers["ETag"]
    again = await client.get("/", headers={"If-None-Match": etag})
    assert again.status == 304
    assert await again.read() == b""
    changed = await client.get("/", headers={"If-None-Match": '"something-else"'})
    assert changed.status == 200


async def test_an_old_version_still_gets_the_file_but_not_pinned_for_a_year(client: TestClient[Any, Any]) -> None:
    response = await client.get(f"{ASSETS_PREFIX}/0123456789ab/app.css")
    assert response.status == 200
    assert response.headers["Cache-Control"] == REVALIDATE


@pytest.mark.parametrize(
    "path",
    [
        "/assets/v/missing.js",
        "/assets/v/../dashboard.py",
        "/assets/v/%2e%2e/dashboard.py",
        "/assets/v/..%2f..%2fapp.py",
        "/assets/v/index.html",
        "/assets/v//etc/passwd",
    ],
)
async def test_nothing_outside_the_assets_is_served(client: TestClient[Any, Any], path: str) -> None:
    response = await client.get(path)
    assert response.status == 404
    assert b"import" not in await response.read()


async def test_compressible_assets_are_compressed_when_the_browser_asks(client: TestClient[Any, Any]) -> None:
    main_url = next(url for url in asset_urls(await (await client.get("/")).text()) if url.endswith("main.js"))
    # main.js is a few lines (too small to be worth compressing); app.js, which it imports, is not.
    app_url = main_url.removesuffix("main.js") + "app.js"
    response = await client.get(app_url, headers={"Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] == "gzip"
    assert "import" in await response.text()  # the client decompresses


def test_the_version_changes_when_any_asset_changes(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text(f'<script type="module" src="/assets/{VERSION_PLACEHOLDER}/a.js"></script>')
    (tmp_path / "a.js").write_text("export const a = 1;\n")
    page, assets, version = load_assets(tmp_path)
    assert set(assets) == {"a.js"}
    assert f"/assets/{version}/a.js".encode() in page.body
    (tmp_path / "a.js").write_text("export const a = 2;\n")
    assert load_assets(tmp_path)[2] != version
