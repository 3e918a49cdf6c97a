"""/api/v1/queries and /api/v1/status: the configured queries' progress and the pipeline at a glance."""

from __future__ import annotations

from aiohttp import web

from services.api.appkeys import QUEUE_PROBE, SETTINGS, STORES
from services.api.params import NoParams
from services.api.pipeline_status import pipeline_status, query_statuses
from services.api.responses import json_response
from services.common.topology import QueueNames


async def list_queries(request: web.Request, params: NoParams) -> web.Response:
    return json_response(await query_statuses(request.app[STORES], request.app[SETTINGS].search_queries))


async def status(request: web.Request, params: NoParams) -> web.Response:
    settings = request.app[SETTINGS]
    names = QueueNames(exchange=settings.amqp_exchange, queue=settings.amqp_queue)
    return json_response(await pipeline_status(request.app[STORES], request.app[QUEUE_PROBE], names))
