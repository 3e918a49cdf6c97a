"""The API's app, assembled: the HTTP parser's limits, middleware, CORS, headers, stores, routes.

What each part does lives in its own module: the route table (routes.py), the handlers
(handlers/), the middleware (middleware.py), the stores' lifecycle (lifecycle.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web

from services.api.admin_body import MAX_ADMIN_BODY_BYTES
from services.api.admin_setup import add_admin
from services.api.appkeys import CURSORS, METRICS, PAGE_CACHE, SETTINGS
from services.api.cors import add_cors
from services.api.cursors import SECRET_FILE_NAME, CursorCodec, load_or_create_secret
from services.api.dashboard import add_dashboard_routes
from services.api.lifecycle import add_stores
from services.api.metrics import ApiMetrics
from services.api.middleware import request_middleware
from services.api.openapi import add_openapi_routes
from services.api.page_cache import PageCache
from services.api.routes import ROUTES
from services.api.routing import Route, add_routes
from services.api.security import add_security_headers
from services.api.settings import Settings
from services.common.service_app import add_service_routes

# Limits on what a client may send, enforced by aiohttp's HTTP parser with its plain 400 (before
# any handler runs) whichever way the app is served: `python -m services.api` (one process or
# API_WORKERS), tests, the benchmark. Request lines up to 64 KiB: the longest valid query (q,
# query, cursor, 50 channel_ids, all percent-encoded) fits, so a valid request never meets the
# parser's bare 400; a 1 MB query string does.
MAX_REQUEST_LINE_BYTES = 65536
MAX_HEADER_FIELD_BYTES = 16384
MAX_HEADERS = 64
# Only the admin API's POST and PATCH take a body (services/api/admin_body.py, 413 above it); one
# sent with GET, HEAD or OPTIONS is refused unread (services/api/middleware.py).
MAX_BODY_BYTES = MAX_ADMIN_BODY_BYTES
# After refusing a request with an unread body, read and drop at most this long before closing.
LINGERING_SECONDS = 2.0


def create_app(settings: Settings, routes: Sequence[Route[Any]] = ROUTES) -> web.Application:
    """The API serving ``routes`` (by default its own table) with ``settings``."""
    metrics = ApiMetrics()
    app = web.Application(
        middlewares=[request_middleware(metrics)],
        client_max_size=MAX_BODY_BYTES,
        handler_args={
            "max_line_size": MAX_REQUEST_LINE_BYTES,
            "max_field_size": MAX_HEADER_FIELD_BYTES,
            "max_headers": MAX_HEADERS,
            # aiohttp closes a connection that has not delivered a complete request this long
            # after it opened or after its last answer: one timer for idle keep-alive and for
            # slow clients dribbling a request line or headers.
            "keepalive_timeout": settings.api_idle_timeout_seconds,
            "lingering_time": LINGERING_SECONDS,
        },
    )
    add_cors(app, settings.api_cors_origins)  # after the request middleware: preflights get an id and metrics
    app.on_response_prepare.append(add_security_headers)
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[PAGE_CACHE] = PageCache(settings.api_page_cache_seconds)
    secret = settings.cursor_secret
    app[CURSORS] = CursorCodec(
        secret.get_secret_value().encode()
        if secret is not None
        else load_or_create_secret(settings.state_dir / SECRET_FILE_NAME)
    )
    add_service_routes(app, metrics.exposition)
    add_stores(app)
    add_admin(app)  # the gate on /api/v1/admin/ (a middleware after CORS) and the sources
    add_routes(app, routes)
    add_openapi_routes(app, routes)
    add_dashboard_routes(app, admin_enabled=bool(settings.admin_token_list))  # GET /, /sources, the assets
    return app
