"""/api/v1/admin/queries: the followed search queries, added, paused, reweighted and removed at run time.

Each answer is the query's source document with the statistics /api/v1/queries shows for its
text (videos stored, last poll, planned interval, freshness), so the Sources page needs one call.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from services.api.admin_auth import ADMIN_ACTOR
from services.api.admin_body import read_body, read_merge_patch
from services.api.admin_models import QueryCreate, QueryPatch, QueryPathParams
from services.api.appkeys import SOURCES_ADMIN, STORES
from services.api.params import NoParams
from services.api.pipeline_status import query_statuses
from services.api.responses import JSON, dumps, json_response
from services.api.stores import Stores
from services.common.sources import QuerySource
from services.common.timefmt import format_rfc3339, utc_now


def _next_poll(status: dict[str, Any]) -> str | None:
    last, interval = status.get("last_poll_at"), status.get("planned_interval_seconds")
    if last is None or interval is None:
        return None
    return format_rfc3339(datetime.fromisoformat(last) + timedelta(seconds=interval))


async def with_stats(stores: Stores, queries: list[QuerySource]) -> list[dict[str, Any]]:
    """Each query's answer: its source fields and its statistics."""
    statuses = {s["query"]: s for s in (await query_statuses(stores, [q.text for q in queries]))["items"]}
    return [
        statuses[q.text]
        | {
            "id": q.id,
            "text": q.text,
            "weight": q.weight,
            "paused": q.paused,
            "created_at": format_rfc3339(q.created_at),
            "updated_at": format_rfc3339(q.updated_at),
            "next_poll_at": None if q.paused else _next_poll(statuses[q.text]),
        }
        for q in queries
    ]


async def _one(request: web.Request, query: QuerySource, status: int = 200) -> web.Response:
    [answer] = await with_stats(request.app[STORES], [query])
    return web.Response(status=status, body=dumps(answer), content_type=JSON)


async def list_admin_queries(request: web.Request, params: NoParams) -> web.Response:
    admin = request.app[SOURCES_ADMIN]
    items = await with_stats(request.app[STORES], await admin.queries())
    return json_response({"items": items, "managed_by_environment": await admin.managed_by_environment()})


async def get_admin_query(request: web.Request, params: QueryPathParams) -> web.Response:
    return await _one(request, await request.app[SOURCES_ADMIN].query(params.query_id))


async def add_admin_query(request: web.Request, params: NoParams) -> web.Response:
    body = await read_body(request, QueryCreate)
    query = await request.app[SOURCES_ADMIN].add_query(request[ADMIN_ACTOR], body.text, body.weight, utc_now())
    return await _one(request, query, status=201)


async def patch_admin_query(request: web.Request, params: QueryPathParams) -> web.Response:
    patch = await read_merge_patch(request, QueryPatch)
    query = await request.app[SOURCES_ADMIN].patch_query(request[ADMIN_ACTOR], params.query_id, patch, utc_now())
    return await _one(request, query)


async def remove_admin_query(request: web.Request, params: QueryPathParams) -> web.Response:
    await request.app[SOURCES_ADMIN].remove_query(request[ADMIN_ACTOR], params.query_id, utc_now())
    return web.Response(status=204)
