"""/api/v1/queries and /api/v1/status: the configured queries' progress and the pipeline at a glance.

The configured queries are the sources in MongoDB (the set the fetcher searches, added and removed through the
admin API), active and paused; only until the environment has seeded them are they SEARCH_QUERIES.
"""

from __future__ import annotations

import logging

from aiohttp import web
from pymongo.errors import PyMongoError

from services.api.appkeys import QUEUE_PROBE, SETTINGS, STORES
from services.api.params import NoParams
from services.api.pipeline_status import pipeline_status, query_statuses
from services.api.responses import json_response
from services.common.sources import load_sources
from services.common.topology import QueueNames

logger = logging.getLogger(__name__)


async def _configured(request: web.Request) -> dict[str, bool]:
    """Each configured query's text and whether it is paused, in the order they were added."""
    environment = dict.fromkeys(request.app[SETTINGS].search_queries, False)
    try:
        sources = await load_sources(request.app[STORES].mongo.database)
    except PyMongoError as exc:
        # The statistics below degrade the same way; the environment is the best guess of what is followed.
        logger.warning("queries: sources unavailable", extra={"error": f"{type(exc).__name__}: {exc}"})
        return environment
    if sources.marker is None and not sources.queries:
        return environment  # not seeded yet: the environment is what will be
    return {q.text: q.paused for q in sources.queries}


async def list_queries(request: web.Request, params: NoParams) -> web.Response:
    configured = await _configured(request)
    answer = await query_statuses(request.app[STORES], list(configured))
    for item in answer["items"]:
        item["paused"] = configured[item["query"]]
    return json_response(answer)


async def status(request: web.Request, params: NoParams) -> web.Response:
    settings = request.app[SETTINGS]
    names = QueueNames(exchange=settings.amqp_exchange, queue=settings.amqp_queue)
    return json_response(await pipeline_status(request.app[STORES], request.app[QUEUE_PROBE], names))
