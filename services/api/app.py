"""The public API: listing, search and filters over the catalogue, with signed search_after cursors."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pydantic_core
from aiohttp import web
from elasticsearch import AsyncElasticsearch
from pymongo import AsyncMongoClient

from services.api.backend import Stores
from services.api.cors import add_cors
from services.api.cursors import (
    SECRET_FILE_NAME,
    Cursor,
    CursorCodec,
    InvalidCursorError,
    load_or_create_secret,
    query_fingerprint,
)
from services.api.dashboard import add_dashboard_routes
from services.api.errors import ApiError, invalid, unavailable
from services.api.es_store import ElasticsearchStore, FastJsonSerializer
from services.api.metrics import ApiMetrics
from services.api.mongo_store import MongoStore
from services.api.openapi import add_openapi_routes
from services.api.page_cache import PageCache
from services.api.params import (
    ChannelListParams,
    FilterParams,
    HistogramParams,
    NoParams,
    VideoListParams,
    VideoPathParams,
    parse_query_string,
    validate_params,
)
from services.api.pipeline_status import QueueProbe, pipeline_status, query_statuses
from services.api.search import (
    INTERVAL_MS,
    MAX_HISTOGRAM_BUCKETS,
    Filters,
    HistogramTooLargeError,
    Page,
    PageRequest,
    PitExpiredError,
    StoreUnavailableError,
    fill_buckets,
    to_ms,
)
from services.api.security import add_security_headers
from services.api.settings import Settings
from services.common.service_app import add_readiness_check, add_service_routes
from services.common.timefmt import utc_now
from services.common.topology import QueueNames

logger = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", ApiMetrics)
CURSORS = web.AppKey("cursors", CursorCodec)
STORES = web.AppKey("stores", Stores)
QUEUE_PROBE = web.AppKey("queue_probe", QueueProbe)
PAGE_CACHE = web.AppKey("page_cache", PageCache)

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_JSON = "application/json"


# Limits on what a client may send, enforced by aiohttp's HTTP parser with its plain 400 (before
# any handler runs) whichever way the app is served: `python -m services.api` (one process or
# API_WORKERS), tests, the benchmark. Request lines up to 64 KiB: the longest valid query (q,
# query, cursor, 50 channel_ids, all percent-encoded) fits, so a valid request never meets the
# parser's bare 400; a 1 MB query string does.
MAX_REQUEST_LINE_BYTES = 65536
MAX_HEADER_FIELD_BYTES = 16384
MAX_HEADERS = 64
# Every endpoint is a GET: a request body is refused (see _request_middleware) and never read.
MAX_BODY_BYTES = 4096
# After refusing a request with an unread body, read and drop at most this long before closing.
LINGERING_SECONDS = 2.0
_BODILESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def create_app(settings: Settings) -> web.Application:
    metrics = ApiMetrics()
    app = web.Application(
        middlewares=[_request_middleware(metrics)],
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
    app.cleanup_ctx.append(_stores_ctx)
    add_readiness_check(app, "mongodb", lambda: _ping_mongo(app))
    add_readiness_check(app, "elasticsearch", lambda: _es_readiness(app))
    app.router.add_get("/api/v1/videos", list_videos)
    app.router.add_get("/api/v1/videos/{video_id}", get_video)
    app.router.add_get("/api/v1/channels", list_channels)
    app.router.add_get("/api/v1/histogram", histogram)
    app.router.add_get("/api/v1/queries", list_queries)
    app.router.add_get("/api/v1/status", status)
    add_openapi_routes(app)
    add_dashboard_routes(app)  # GET / and the dashboard's assets (issue 7)
    return app


async def _stores_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    es_client = AsyncElasticsearch(
        settings.elasticsearch_url,
        request_timeout=5,
        max_retries=0,
        retry_on_timeout=False,
        connections_per_node=64,
        serializer=FastJsonSerializer(),
        # One node: after an outage, try it again within seconds rather than the default 30 s.
        dead_node_backoff_factor=0.5,
        max_dead_node_backoff=2.0,
    )
    mongo_client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        settings.mongodb_url, tz_aware=True, serverSelectionTimeoutMS=3000, connectTimeoutMS=3000
    )
    stores = Stores(
        ElasticsearchStore(es_client, settings.elasticsearch_index, settings.api_pit_keep_alive_seconds),
        MongoStore(mongo_client[settings.mongodb_database]),
        app[METRICS],
    )
    app[STORES] = stores
    probe = QueueProbe(settings.amqp_url, QueueNames(exchange=settings.amqp_exchange, queue=settings.amqp_queue))
    app[QUEUE_PROBE] = probe
    es_watch = asyncio.create_task(stores.probe_forever(), name="elasticsearch-probe")
    yield
    es_watch.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await es_watch
    await probe.close()
    await es_client.close()
    await mongo_client.close()


async def _es_readiness(app: web.Application) -> tuple[bool, str]:
    return await app[STORES].readiness()


async def _ping_mongo(app: web.Application) -> tuple[bool, str]:
    await app[STORES].mongo.database.client.admin.command("ping")
    return True, "ok"


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _request_middleware(metrics: ApiMetrics) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        given = request.headers.get("X-Request-Id", "")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        started = time.perf_counter()
        response: web.StreamResponse
        try:
            if request.body_exists and request.method in _BODILESS_METHODS:
                raise ApiError(400, "invalid_request", f"{request.method} takes no request body")
            response = await handler(request)
        except ApiError as exc:
            response = _error_response(exc)
        except web.HTTPException as exc:
            response = _http_error_response(exc)
        except Exception:
            logger.exception(
                "unexpected error answering a request",
                extra={"request_id": request_id, "method": request.method, "path": request.path},
            )
            response = web.Response(
                status=500,
                body=ApiError(500, "internal", f"internal error; quote request id {request_id}").body(request_id),
                content_type=_JSON,
            )
        response.headers["X-Request-Id"] = request_id
        if request.body_exists:
            response.force_close()  # the body stays unread: never parse it as the next request
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        metrics.observe_request(request.method, route, response.status, time.perf_counter() - started)
        return response

    return middleware


def _error_response(exc: ApiError) -> web.Response:
    return web.Response(status=exc.status, body=exc.body(), content_type=_JSON)


def _http_error_response(exc: web.HTTPException) -> web.Response:
    if exc.status == 404:
        error = ApiError(404, "not_found", "no such endpoint; see /api/openapi.json")
    elif exc.status == 405:
        error = ApiError(405, "method_not_allowed", f"method not allowed; use {exc.headers.get('Allow', 'GET')}")
    else:
        error = ApiError(exc.status, "invalid_parameter" if exc.status < 500 else "internal", exc.reason)
    response = _error_response(error)
    if "Allow" in exc.headers:
        response.headers["Allow"] = exc.headers["Allow"]
    return response


def _dumps(body: dict[str, Any]) -> bytes:
    return pydantic_core.to_json(body)


def _raw_json_response(body: bytes, served_by: str | None = None) -> web.Response:
    response = web.Response(body=body, content_type=_JSON)
    if served_by is not None:
        response.headers["X-Served-By"] = served_by
    return response


def _json_response(body: dict[str, Any], served_by: str | None = None) -> web.Response:
    return _raw_json_response(_dumps(body), served_by)


def _filters(params: FilterParams) -> Filters:
    after = None if params.published_after is None else to_ms(params.published_after)
    before = None if params.published_before is None else to_ms(params.published_before)
    if after is not None and before is not None and after > before:
        raise invalid("published_after", "published_after is later than published_before")
    return Filters(
        q=params.q,
        channel_ids=tuple(params.channel_id),
        published_after_ms=after,
        published_before_ms=before,
        query=params.query,
    )


async def list_videos(request: web.Request) -> web.Response:
    params = parse_query_string(request.rel_url.raw_query_string, VideoListParams)
    filters = _filters(params)
    if params.sort == "relevance" and filters.q is None:
        raise invalid("sort", "sort=relevance needs q")
    codec = request.app[CURSORS]
    fingerprint = _fingerprint(filters, params.sort)
    cache = request.app[PAGE_CACHE]
    cache_key = (fingerprint, params.cursor, params.limit)
    if cache.enabled and params.sort != "relevance":
        cached = cache.get(cache_key)
        if cached is not None:
            request.app[METRICS].served.labels(cached.served_by).inc()
            return _raw_json_response(cached.body, cached.served_by)
    if params.cursor is not None:
        cursor = _decode_cursor(codec, params.cursor, fingerprint, params.sort)
        page_request = PageRequest(
            filters, params.sort, params.limit, cursor.snapshot_ms, cursor.search_after, cursor.pit_id
        )
    else:
        page_request = PageRequest(filters, params.sort, params.limit, to_ms(utc_now()))
    stores = request.app[STORES]
    try:
        if params.sort == "relevance":
            page, served_by = await _relevance_page(stores, page_request), "elasticsearch"
        else:
            page, served_by = await stores.with_fallback(
                "list", lambda es: es.page(page_request), lambda mongo: mongo.page(page_request)
            )
    except StoreUnavailableError as exc:
        raise unavailable(f"no store can serve this request now ({exc})") from None
    request.app[METRICS].served.labels(served_by).inc()
    next_cursor = None
    if page.next_search_after is not None:
        next_cursor = codec.encode(
            Cursor(fingerprint, page_request.snapshot_ms, tuple(page.next_search_after), page.pit_id)
        )
    body = _dumps({"items": page.items, "next_cursor": next_cursor, "total": page.total})
    if cache.enabled and served_by == "elasticsearch" and params.sort != "relevance":
        cache.put(cache_key, body, served_by)
    return _raw_json_response(body, served_by)


async def _relevance_page(stores: Stores, page_request: PageRequest) -> Page:
    if not stores.es_available:
        raise unavailable("sort=relevance needs Elasticsearch, which is unavailable; sort by date meanwhile")
    try:
        return await stores.timed("elasticsearch", "relevance", stores.es.page(page_request))
    except PitExpiredError:
        raise ApiError(
            410, "cursor_expired", "this relevance walk expired (kept too long between pages); start it again"
        ) from None
    except StoreUnavailableError as exc:
        stores.mark_es_down(str(exc))
        raise unavailable("sort=relevance needs Elasticsearch, which is unavailable; sort by date meanwhile") from None


def _fingerprint(filters: Filters, sort: str) -> str:
    return query_fingerprint({"filters": filters.canonical(), "sort": sort})


def _decode_cursor(codec: CursorCodec, text: str, fingerprint: str, sort: str) -> Cursor:
    try:
        cursor = codec.decode(text, fingerprint)
    except InvalidCursorError as exc:
        raise ApiError(400, "invalid_cursor", str(exc), "cursor") from None
    values = cursor.search_after
    date_shape = len(values) == 2 and isinstance(values[0], int) and isinstance(values[1], str)
    relevance_shape = cursor.pit_id is not None and len(values) >= 3
    if not (relevance_shape if sort == "relevance" else date_shape):
        raise ApiError(400, "invalid_cursor", "cursor is not one this API issued", "cursor")
    return cursor


async def get_video(request: web.Request) -> web.Response:
    parse_query_string(request.rel_url.raw_query_string, NoParams)
    video_id = validate_params(VideoPathParams, {"video_id": request.match_info["video_id"]}).video_id
    stores = request.app[STORES]
    served_by = "mongodb"
    try:
        video = await stores.timed("mongodb", "get", stores.mongo.get(video_id))
    except StoreUnavailableError:
        # The system of record is away: the search index has the same public fields.
        if not stores.es_available:
            raise unavailable("neither MongoDB nor Elasticsearch is reachable") from None
        try:
            video = await stores.timed("elasticsearch", "get", stores.es.get(video_id))
        except StoreUnavailableError:
            raise unavailable("neither MongoDB nor Elasticsearch is reachable") from None
        served_by = "elasticsearch"
    if video is None:
        raise ApiError(404, "not_found", f"no video {video_id} in the catalogue")
    return _json_response(video, served_by)


async def list_channels(request: web.Request) -> web.Response:
    params = parse_query_string(request.rel_url.raw_query_string, ChannelListParams)
    q = params.q.strip() if params.q is not None else None
    try:
        items, served_by = await request.app[STORES].with_fallback(
            "channels", lambda es: es.channels(q, params.limit), lambda mongo: mongo.channels(q, params.limit)
        )
    except StoreUnavailableError:
        raise unavailable("neither Elasticsearch nor MongoDB is reachable") from None
    return _json_response({"items": items}, served_by)


async def histogram(request: web.Request) -> web.Response:
    params = parse_query_string(request.rel_url.raw_query_string, HistogramParams)
    filters = _filters(params)
    too_many = invalid(
        "interval",
        f"more than {MAX_HISTOGRAM_BUCKETS} buckets: narrow published_after/published_before or use a wider interval",
    )
    after, before = filters.published_after_ms, filters.published_before_ms
    if (
        after is not None
        and before is not None
        and (before - after) // INTERVAL_MS[params.interval] >= MAX_HISTOGRAM_BUCKETS
    ):
        raise too_many
    try:
        counts, served_by = await request.app[STORES].with_fallback(
            "histogram",
            lambda es: es.histogram(filters, params.interval),
            lambda mongo: mongo.histogram(filters, params.interval),
        )
        buckets = fill_buckets(counts, params.interval, after, before)
    except HistogramTooLargeError:
        raise too_many from None
    except StoreUnavailableError:
        raise unavailable("neither Elasticsearch nor MongoDB is reachable") from None
    return _json_response({"interval": params.interval, "buckets": buckets}, served_by)


async def list_queries(request: web.Request) -> web.Response:
    parse_query_string(request.rel_url.raw_query_string, NoParams)
    return _json_response(await query_statuses(request.app[STORES], request.app[SETTINGS].search_queries))


async def status(request: web.Request) -> web.Response:
    parse_query_string(request.rel_url.raw_query_string, NoParams)
    settings = request.app[SETTINGS]
    names = QueueNames(exchange=settings.amqp_exchange, queue=settings.amqp_queue)
    return _json_response(await pipeline_status(request.app[STORES], request.app[QUEUE_PROBE], names))
