"""The dashboard: ``GET /`` and its assets (plain ES modules and CSS from services/api/static).

Assets are read into memory once, at startup, and only those files are ever served: a request
for any other path is a 404, so no path can reach outside the folder. Asset URLs carry a version
(a hash of every asset) so browsers may cache them for a year; the page itself is revalidated on
every load (``no-cache`` with an ETag), so a new version is picked up by the next reload.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from services.api.security import content_security_policy

STATIC_DIR = Path(__file__).with_name("static")
# Not "/static": that prefix may be claimed by a plain static route; these URLs are versioned.
ASSETS_PREFIX = "/assets"
# index.html names its assets as "/assets/__ASSET_VERSION__/<path>"; the placeholder becomes the version.
VERSION_PLACEHOLDER = "__ASSET_VERSION__"
# sources.html says whether the admin API is on (ADMIN_TOKENS set) where it names this placeholder.
ADMIN_PLACEHOLDER = b"__ADMIN_STATE__"

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
}
_COMPRESSIBLE = frozenset({".html", ".js", ".css", ".svg", ".json", ".webmanifest"})
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"

# The page runs no inline script or style: everything comes from our own origin, thumbnails from
# YouTube's image hosts. nosniff and Referrer-Policy come with every answer (services/api/security.py).
CONTENT_SECURITY_POLICY = content_security_policy(img_src="'self' data: https://i.ytimg.com https://*.ytimg.com")


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str
    compressible: bool


def _asset(body: bytes, suffix: str) -> Asset:
    content_type = _CONTENT_TYPES.get(suffix) or mimetypes.guess_type(f"x{suffix}")[0] or "application/octet-stream"
    return Asset(body, content_type, f'"{hashlib.sha256(body).hexdigest()[:20]}"', suffix in _COMPRESSIBLE)


# The dashboard's other pages: path -> its HTML file under STATIC_DIR (served like index.html).
PAGES = {"/sources": "sources.html"}


def load_assets(static_dir: Path = STATIC_DIR) -> tuple[Asset, dict[str, Asset], str]:
    """The page, every other asset by its path under ``static_dir``, and the assets' version.

    The other pages (PAGES) are among the assets with their version filled in."""
    files = {
        path.relative_to(static_dir).as_posix(): path.read_bytes()
        for path in sorted(static_dir.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    }
    if "index.html" not in files:
        raise RuntimeError(f"dashboard: {static_dir / 'index.html'} is missing")
    digest = hashlib.sha256()
    for name, body in files.items():
        digest.update(name.encode() + b"\0" + body + b"\0")
    version = digest.hexdigest()[:12]
    page = _asset(files.pop("index.html").replace(VERSION_PLACEHOLDER.encode(), version.encode()), ".html")
    for name in (n for n in PAGES.values() if n in files):
        files[name] = files[name].replace(VERSION_PLACEHOLDER.encode(), version.encode())
    assets = {name: _asset(body, Path(name).suffix) for name, body in files.items()}
    return page, assets, version


def _respond(request: web.Request, asset: Asset, cache_control: str) -> web.StreamResponse:
    headers = {"Cache-Control": cache_control, "ETag": asset.etag, "Content-Security-Policy": CONTENT_SECURITY_POLICY}
    if asset.etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    response = web.Response(body=asset.body, headers=headers | {"Content-Type": asset.content_type})
    if asset.compressible and len(asset.body) > 1024:
        response.enable_compression()
    return response


def add_dashboard_routes(app: web.Application, *, admin_enabled: bool = False) -> None:
    """Serve the dashboard at ``/``, its other pages, and its assets at ``/assets/<version>/<path>``;
    ``admin_enabled``: ADMIN_TOKENS is set (the Sources page says so)."""
    page, assets, version = load_assets()

    async def index(request: web.Request) -> web.StreamResponse:
        return _respond(request, page, REVALIDATE)

    async def static_asset(request: web.Request) -> web.StreamResponse:
        asset = assets.get(request.match_info["path"])
        if asset is None:
            raise web.HTTPNotFound(text="no such dashboard asset")
        # An old page asking for an old version gets today's file, revalidated rather than pinned.
        cache_control = IMMUTABLE if request.match_info["version"] == version else REVALIDATE
        return _respond(request, asset, cache_control)

    app.router.add_get("/", index, name="dashboard")
    # The Sources page says whether the admin API is on without asking it (a refused request would
    # be a console error), so it can tell how to turn it on before any token is typed.
    admin_state = b"on" if admin_enabled else b"off"
    for path, name in PAGES.items():
        # A page missing from STATIC_DIR stops the API at start.
        other = _asset(assets[name].body.replace(ADMIN_PLACEHOLDER, admin_state), Path(name).suffix)

        async def other_page(request: web.Request, other: Asset = other) -> web.StreamResponse:
            return _respond(request, other, REVALIDATE)

        app.router.add_get(path, other_page)
    app.router.add_get(ASSETS_PREFIX + "/{version}/{path:.+}", static_asset, name="dashboard_asset")
