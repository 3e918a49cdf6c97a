"""/api/v1/channels: channels with their video counts, most videos first."""

from __future__ import annotations

from aiohttp import web

from services.api.appkeys import STORES
from services.api.errors import unavailable
from services.api.params import ChannelListParams
from services.api.responses import json_response
from services.common.errors import StoreUnavailableError


async def list_channels(request: web.Request, params: ChannelListParams) -> web.Response:
    q = params.q.strip() if params.q is not None else None
    try:
        items, served_by = await request.app[STORES].with_fallback(
            "channels", lambda es: es.channels(q, params.limit), lambda mongo: mongo.channels(q, params.limit)
        )
    except StoreUnavailableError:
        raise unavailable("neither Elasticsearch nor MongoDB is reachable") from None
    return json_response({"items": items}, served_by)
