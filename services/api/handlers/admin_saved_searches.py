"""/api/v1/admin/saved-searches: saved searches made, listed, changed, removed; secrets and feeds replaced.

An answer is the saved search with its feed's URL and its webhook without secrets; the answers
that make a secret (creation with a webhook, a patch adding one, rotate-secret) hold it once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from services.api.admin_auth import ADMIN_ACTOR
from services.api.admin_body import read_body, read_merge_patch
from services.api.appkeys import SAVED_SEARCHES_ADMIN, SETTINGS
from services.api.handlers.feeds import public_base
from services.api.handlers.saved_feeds import saved_feed_path
from services.api.params import NoParams
from services.api.responses import JSON, dumps, json_response
from services.api.saved_search_models import SavedSearchCreate, SavedSearchPatch, SavedSearchPathParams
from services.common.saved_searches import SavedSearch, signing_secrets
from services.common.timefmt import format_rfc3339, utc_now


def saved_search_answer(request: web.Request, search: SavedSearch, now: datetime) -> dict[str, Any]:
    """The saved search as the admin API shows it: no secret, its feed's full URL."""
    webhook = search.webhook
    return {
        "id": search.id,
        "name": search.name,
        "filters": search.filters.model_dump(mode="json", exclude_none=True),
        "webhook": None
        if webhook is None
        else {
            "url": webhook.url,
            "paused": webhook.paused,
            "paused_reason": webhook.paused_reason,
            "secrets_valid": len(signing_secrets(search, now)),
            "secret_created_at": format_rfc3339(webhook.secrets[0].created_at) if webhook.secrets else None,
        },
        "feed_id": search.feed_id,
        "feed_url": public_base(request, request.app[SETTINGS]) + saved_feed_path(search.feed_id),
        "created_at": format_rfc3339(search.created_at),
        "updated_at": format_rfc3339(search.updated_at),
        "rev": search.rev,
    }


def _with_secret(
    request: web.Request, search: SavedSearch, secret: str | None, now: datetime, status: int = 200
) -> web.Response:
    body = saved_search_answer(request, search, now) | {"secret": secret}
    return web.Response(status=status, body=dumps(body), content_type=JSON, headers={"Cache-Control": "no-store"})


async def list_saved_searches(request: web.Request, params: NoParams) -> web.Response:
    now = utc_now()
    searches = await request.app[SAVED_SEARCHES_ADMIN].saved_searches()
    return json_response({"items": [saved_search_answer(request, s, now) for s in searches]})


async def get_saved_search(request: web.Request, params: SavedSearchPathParams) -> web.Response:
    search = await request.app[SAVED_SEARCHES_ADMIN].saved_search(params.saved_search_id)
    return json_response(saved_search_answer(request, search, utc_now()))


async def add_saved_search(request: web.Request, params: NoParams) -> web.Response:
    body = await read_body(request, SavedSearchCreate)
    now = utc_now()
    search, secret = await request.app[SAVED_SEARCHES_ADMIN].create(request[ADMIN_ACTOR], body, now)
    return _with_secret(request, search, secret, now, status=201)


async def patch_saved_search(request: web.Request, params: SavedSearchPathParams) -> web.Response:
    patch = await read_merge_patch(request, SavedSearchPatch)
    now = utc_now()
    admin = request.app[SAVED_SEARCHES_ADMIN]
    search, secret = await admin.patch(request[ADMIN_ACTOR], params.saved_search_id, patch, now)
    return _with_secret(request, search, secret, now)


async def remove_saved_search(request: web.Request, params: SavedSearchPathParams) -> web.Response:
    await request.app[SAVED_SEARCHES_ADMIN].remove(request[ADMIN_ACTOR], params.saved_search_id, utc_now())
    return web.Response(status=204)


async def rotate_saved_search_secret(request: web.Request, params: SavedSearchPathParams) -> web.Response:
    now = utc_now()
    admin = request.app[SAVED_SEARCHES_ADMIN]
    search, secret = await admin.rotate_secret(request[ADMIN_ACTOR], params.saved_search_id, now)
    return _with_secret(request, search, secret, now)


async def rotate_saved_search_feed(request: web.Request, params: SavedSearchPathParams) -> web.Response:
    now = utc_now()
    search = await request.app[SAVED_SEARCHES_ADMIN].rotate_feed(request[ADMIN_ACTOR], params.saved_search_id, now)
    return json_response(saved_search_answer(request, search, now))
