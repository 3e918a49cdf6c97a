"""The public API: newest-first video listing with search_after cursors."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from elasticsearch import AsyncElasticsearch
from prometheus_client import CollectorRegistry

from services.api.cursors import Cursor, InvalidCursorError
from services.api.settings import Settings
from services.api.videos import public_video
from services.common.service_app import add_readiness_check, add_service_routes

logger = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
ELASTICSEARCH = web.AppKey("elasticsearch", AsyncElasticsearch)

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
_LIST_PARAMETERS = frozenset({"limit", "cursor"})
_SORT = [{"published_at": {"order": "desc"}}, {"video_id": {"order": "desc"}}]


def create_app(settings: Settings) -> web.Application:
    app = web.Application()
    app[SETTINGS] = settings
    add_service_routes(app, CollectorRegistry())
    app.cleanup_ctx.append(_elasticsearch_ctx)
    app.router.add_get("/api/v1/videos", list_videos)
    add_readiness_check(app, "elasticsearch", lambda: _ping_elasticsearch(app))
    return app


async def _elasticsearch_ctx(app: web.Application) -> AsyncIterator[None]:
    client = AsyncElasticsearch(app[SETTINGS].elasticsearch_url, request_timeout=10)
    app[ELASTICSEARCH] = client
    yield
    await client.close()


async def _ping_elasticsearch(app: web.Application) -> tuple[bool, str]:
    ok = bool(await app[ELASTICSEARCH].ping())
    return ok, "ok" if ok else "no answer"


def api_error(status: int, code: str, message: str, parameter: str | None = None) -> web.HTTPException:
    body: dict[str, Any] = {"code": code, "message": message}
    if parameter is not None:
        body["parameter"] = parameter
    exc_class = {400: web.HTTPBadRequest, 404: web.HTTPNotFound, 503: web.HTTPServiceUnavailable}[status]
    return exc_class(text=web.json_response({"error": body}).text, content_type="application/json")


def _parse_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise api_error(400, "invalid_parameter", "limit must be an integer", "limit") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise api_error(400, "invalid_parameter", f"limit must be between 1 and {MAX_LIMIT}", "limit")
    return limit


async def list_videos(request: web.Request) -> web.Response:
    unknown = sorted(set(request.query) - _LIST_PARAMETERS)
    if unknown:
        raise api_error(400, "invalid_parameter", f"unknown parameter(s): {', '.join(unknown)}", unknown[0])
    limit = _parse_limit(request.query.get("limit"))
    search_after: list[Any] | None = None
    if "cursor" in request.query:
        try:
            search_after = list(Cursor.decode(request.query["cursor"]).search_after)
        except InvalidCursorError as exc:
            raise api_error(400, "invalid_cursor", str(exc), "cursor") from None
    settings = request.app[SETTINGS]
    response = await request.app[ELASTICSEARCH].search(
        index=settings.elasticsearch_index,
        size=limit + 1,  # one extra tells whether another page exists
        sort=_SORT,
        search_after=search_after,
        track_total_hits=False,
        source_excludes=["queries", "tags", "rev"],
    )
    hits = response["hits"]["hits"]
    page = hits[:limit]
    next_cursor = None
    if len(hits) > limit:
        last_sort = page[-1]["sort"]
        next_cursor = Cursor((int(last_sort[0]), str(last_sort[1]))).encode()
    return web.json_response({"items": [public_video(hit["_source"]) for hit in page], "next_cursor": next_cursor})
