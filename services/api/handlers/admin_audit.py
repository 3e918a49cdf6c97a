"""/api/v1/admin/audit: every change of the sources, newest first, a page at a time."""

from __future__ import annotations

from aiohttp import web

from services.api.admin_models import AuditParams
from services.api.appkeys import SOURCES_ADMIN
from services.api.responses import json_response
from services.common.fetcher_state import as_utc
from services.common.timefmt import format_rfc3339


async def list_audit(request: web.Request, params: AuditParams) -> web.Response:
    docs, next_cursor = await request.app[SOURCES_ADMIN].audit_page(params.cursor, params.limit)
    items = [
        {
            "id": str(doc["_id"]),
            "at": format_rfc3339(as_utc(doc["at"])),
            "actor": doc["actor"],
            "action": doc["action"],
            "kind": doc["kind"],
            "target": doc["target"],
            "before": doc.get("before"),
            "after": doc.get("after"),
        }
        for doc in docs
    ]
    return json_response({"items": items, "next_cursor": next_cursor})
