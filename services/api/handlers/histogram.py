"""/api/v1/histogram: upload counts per UTC hour or day, with the filters of the video list."""

from __future__ import annotations

from aiohttp import web

from services.api.appkeys import STORES
from services.api.buckets import TOO_MANY_BUCKETS, HistogramTooLargeError, fill_buckets
from services.api.errors import invalid, unavailable
from services.api.params import HistogramParams
from services.api.responses import json_response
from services.common.errors import StoreUnavailableError
from services.common.timefmt import to_epoch_ms, utc_now


async def histogram(request: web.Request, params: HistogramParams) -> web.Response:
    filters = params.filters().at(to_epoch_ms(utc_now()))
    try:
        counts, served_by = await request.app[STORES].with_fallback(
            "histogram",
            lambda es: es.histogram(filters, params.interval),
            lambda mongo: mongo.histogram(filters, params.interval),
        )
        buckets = fill_buckets(counts, params.interval, filters.published_after_ms, filters.published_before_ms)
    except HistogramTooLargeError:
        # Open bounds: only the data shows how many buckets there would be.
        raise invalid("interval", TOO_MANY_BUCKETS) from None
    except StoreUnavailableError:
        raise unavailable("neither Elasticsearch nor MongoDB is reachable") from None
    return json_response({"interval": params.interval, "buckets": buckets}, served_by)
