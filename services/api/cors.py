"""CORS for the read-only API: closed unless ``API_CORS_ORIGINS`` names the origins allowed in.

Closed (the default) means no ``Access-Control-*`` header on any response and no preflight
answered: a browser page of another origin can neither read an answer nor pass a preflight.
With origins configured, a request under ``/api/v1/`` whose ``Origin`` is one of them exactly
gets ``Access-Control-Allow-Origin: <that origin>`` (never ``*``) and ``Access-Control-Expose-Headers``,
and a preflight for GET or HEAD of an existing endpoint is answered 204. Every answer under
``/api/v1/`` then carries ``Vary: Origin``, so a cache never hands one origin's answer to another.
Credentials are never allowed: the API has no cookies or authentication to share.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

CORS_PATH_PREFIX = "/api/v1/"
# The admin API stays closed to every other origin whatever API_CORS_ORIGINS says: only pages of
# the API's own origin (the dashboard) may call it.
ADMIN_PATH_PREFIX = "/api/v1/admin/"
ALLOWED_METHODS = ("GET", "HEAD")
# The only request header a page may set beyond the CORS-safelisted ones.
ALLOWED_REQUEST_HEADERS = frozenset({"x-request-id"})
EXPOSED_HEADERS = "X-Request-Id, X-Served-By"
PREFLIGHT_MAX_AGE_SECONDS = 600

_ORIGIN = re.compile(r"(?P<scheme>https?)://(?P<host>[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::(?P<port>[0-9]{1,5}))?")
_DEFAULT_PORTS = {"http": 80, "https": 443}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def normalize_origin(text: str) -> str:
    """An origin as browsers send it (``scheme://host[:port]``, lower case, no default port).

    ValueError for anything else: a path, a wildcard, ``null``, credentials, another scheme.
    """
    match = _ORIGIN.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(f"{text!r} is not an origin: write scheme://host[:port] (http or https, no path, no wildcard)")
    scheme, host, port = match["scheme"], match["host"], match["port"]
    if host.startswith(".") or host.endswith(".") or ".." in host:
        raise ValueError(f"{text!r} is not an origin: bad host name")
    if port is not None:
        number = int(port)
        if not 0 < number < 65536:
            raise ValueError(f"{text!r} is not an origin: bad port")
        if number != _DEFAULT_PORTS[scheme]:
            return f"{scheme}://{host}:{number}"
    return f"{scheme}://{host}"


def add_cors(app: web.Application, origins: Iterable[str]) -> None:
    """Answer preflights and label answers for ``origins``; with none, add nothing (CORS closed)."""
    allowed = frozenset(normalize_origin(origin) for origin in origins)
    if not allowed:
        return

    @web.middleware
    async def preflight(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "OPTIONS" and _preflight_allowed(request, allowed):
            return web.Response(
                status=204,
                headers={
                    "Access-Control-Allow-Origin": request.headers["Origin"],
                    "Access-Control-Allow-Methods": ", ".join(ALLOWED_METHODS),
                    "Access-Control-Allow-Headers": "X-Request-Id",
                    "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_SECONDS),
                    "Vary": "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
                },
            )
        # Not ours to allow: the router answers (405 for OPTIONS) without any CORS header.
        return await handler(request)

    async def label(request: web.Request, response: web.StreamResponse) -> None:
        if not request.path.startswith(CORS_PATH_PREFIX) or request.path.startswith(ADMIN_PATH_PREFIX):
            return
        _add_vary(response, "Origin")
        origin = request.headers.get("Origin")
        # A preflight this module answered is labelled already; one it refused stays bare.
        if origin in allowed and request.method in ALLOWED_METHODS:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS

    app.middlewares.append(preflight)
    app.on_response_prepare.append(label)


def _preflight_allowed(request: web.Request, allowed: frozenset[str]) -> bool:
    if not request.path.startswith(CORS_PATH_PREFIX) or request.headers.get("Origin") not in allowed:
        return False
    if request.path.startswith(ADMIN_PATH_PREFIX):
        return False
    if request.headers.get("Access-Control-Request-Method") not in ALLOWED_METHODS:
        return False
    asked = request.headers.get("Access-Control-Request-Headers", "")
    if not {h.strip().lower() for h in asked.split(",") if h.strip()} <= ALLOWED_REQUEST_HEADERS:
        return False
    # Only for an endpoint that exists and takes GET: the router saw OPTIONS as a 405 of it.
    failure = request.match_info.http_exception
    return isinstance(failure, web.HTTPMethodNotAllowed) and "GET" in failure.allowed_methods


def _add_vary(response: web.StreamResponse, name: str) -> None:
    present = [v.strip() for v in response.headers.get("Vary", "").split(",") if v.strip()]
    if name.lower() not in {v.lower() for v in present}:
        response.headers["Vary"] = ", ".join([*present, name])
