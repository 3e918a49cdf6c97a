"""/api/v1/videos (list and search, page by page with cursors) and /api/v1/videos/{video_id}."""

from __future__ import annotations

from aiohttp import web

from services.api.appkeys import CURSORS, METRICS, PAGE_CACHE, STORES
from services.api.cursors import Cursor, CursorCodec, InvalidCursorError, query_fingerprint
from services.api.errors import ApiError, unavailable
from services.api.pages import Page, PageRequest, PitExpiredError
from services.api.params import VideoListParams, VideoPathParams
from services.api.responses import dumps, json_response, raw_json_response
from services.api.stores import Stores
from services.common.errors import StoreUnavailableError
from services.common.timefmt import to_epoch_ms, utc_now
from services.common.video_query import Filters, SortOrder

_RELEVANCE_UNAVAILABLE = "sort=relevance needs Elasticsearch, which is unavailable; sort by date meanwhile"


async def list_videos(request: web.Request, params: VideoListParams) -> web.Response:
    filters = params.filters()
    fingerprint = _fingerprint(filters, params.sort)
    cache = request.app[PAGE_CACHE]
    cache_key = (fingerprint, params.cursor, params.limit)
    cached = cache.lookup(cache_key, params.sort)
    if cached is not None:
        request.app[METRICS].served.labels(cached.served_by).inc()
        return raw_json_response(cached.body, cached.served_by)
    codec = request.app[CURSORS]
    page_request = _page_request(codec, params, filters, fingerprint)
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
    body = dumps({"items": page.items, "next_cursor": next_cursor, "total": page.total})
    cache.offer(cache_key, body, served_by, params.sort)
    return raw_json_response(body, served_by)


def _page_request(codec: CursorCodec, params: VideoListParams, filters: Filters, fingerprint: str) -> PageRequest:
    """The first page of a walk fixes its snapshot time; a later page continues from its cursor.

    published_within counts back from the snapshot time, so every page of a walk has the same bound.
    """
    if params.cursor is None:
        snapshot_ms = to_epoch_ms(utc_now())
        return PageRequest(filters.at(snapshot_ms), params.sort, params.limit, snapshot_ms)
    try:
        cursor = codec.decode(params.cursor, fingerprint, params.sort)
    except InvalidCursorError as exc:
        raise ApiError(400, "invalid_cursor", str(exc), "cursor") from None
    return PageRequest(
        filters.at(cursor.snapshot_ms),
        params.sort,
        params.limit,
        cursor.snapshot_ms,
        cursor.search_after,
        cursor.pit_id,
    )


async def _relevance_page(stores: Stores, page_request: PageRequest) -> Page:
    if not stores.es_available:
        raise unavailable(_RELEVANCE_UNAVAILABLE)
    try:
        return await stores.timed("elasticsearch", "relevance", stores.es.page(page_request))
    except PitExpiredError:
        raise ApiError(
            410, "cursor_expired", "this relevance walk expired (kept too long between pages); start it again"
        ) from None
    except StoreUnavailableError as exc:
        stores.mark_es_down(str(exc))
        raise unavailable(_RELEVANCE_UNAVAILABLE) from None


def _fingerprint(filters: Filters, sort: SortOrder) -> str:
    return query_fingerprint({"filters": filters.canonical(), "sort": sort})


async def get_video(request: web.Request, params: VideoPathParams) -> web.Response:
    video_id = params.video_id
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
    return json_response(video, served_by)
