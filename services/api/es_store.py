"""Elasticsearch: the read model behind every list, search, histogram and count when it is up.

The queries come from services/common/video_query.py; this module runs them and shapes the answers.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pydantic_core
from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import TransportError
from elasticsearch import ApiError, AsyncElasticsearch, NotFoundError
from elasticsearch.serializer import JsonSerializer

from services.api.buckets import INTERVAL_MS, HistogramInterval, HistogramTooLargeError
from services.api.pages import TOTAL_EXACT_UP_TO, Page, PageRequest, PitExpiredError
from services.common.errors import StoreUnavailableError
from services.common.video_query import NOT_REMOVED_CLAUSE, Filters, after_bound, build_query, sort_clauses
from services.common.video_shape import VIDEO_SOURCE_FIELDS, public_video

_PAGE_FILTER_PATH = "hits.total,hits.hits._source,hits.hits.sort,pit_id"


class FastJsonSerializer(JsonSerializer):
    """JSON through pydantic-core (Rust): parsing search responses is much of a page's CPU time."""

    def json_loads(self, data: bytes) -> Any:
        return pydantic_core.from_json(data)

    def json_dumps(self, data: Any) -> bytes:
        return pydantic_core.to_json(data)


class ElasticsearchStore:
    """The read model's answers, from the videos alias."""

    def __init__(self, client: AsyncElasticsearch, alias: str, pit_keep_alive_seconds: int) -> None:
        self._es = client
        self._alias = alias
        self._keep_alive = f"{pit_keep_alive_seconds}s"

    async def page(self, request: PageRequest) -> Page:
        relevance = request.sort == "relevance"
        # The first page needs no snapshot filter (everything visible was first seen before now), which
        # keeps its request identical between calls, so Elasticsearch's request cache can answer it.
        snapshot = None if request.first_page else request.snapshot_ms
        query = build_query(request.filters, snapshot, scored=relevance)
        bound = after_bound(request.sort, request.search_after)
        body: dict[str, Any] = {
            "query": query if bound is None else {"bool": {"filter": [bound], "must": [query]}},
            "sort": sort_clauses(request.sort),
            "size": request.limit + 1,  # one extra tells whether another page exists
            "track_total_hits": TOTAL_EXACT_UP_TO,
            # The whole _source: filtering it makes Elasticsearch parse every document (measured 40%
            # fewer searches a second); the few extra fields are dropped by public_video.
        }
        if request.search_after is not None:
            body["search_after"] = list(request.search_after)
        try:
            if relevance:
                pit_id = request.pit_id or await self._open_pit()
                body["pit"] = {"id": pit_id, "keep_alive": self._keep_alive}
                response = await self._es.search(body=body, filter_path=_PAGE_FILTER_PATH)
            else:
                response = await self._es.search(
                    index=self._alias, body=body, filter_path=_PAGE_FILTER_PATH, request_cache=True
                )
        except NotFoundError as exc:
            if relevance and request.pit_id is not None and _error_type(exc) != "index_not_found_exception":
                raise PitExpiredError from exc
            raise StoreUnavailableError("elasticsearch", _describe(exc)) from exc
        except (TransportError, ApiError) as exc:
            raise _unavailable(exc) from exc
        hits = response.get("hits", {}).get("hits", [])
        page_hits = hits[: request.limit]
        date_position = 1 if relevance else 0
        items = [public_video(hit["_source"], hit["sort"][date_position]) for hit in page_hits]
        more = len(hits) > request.limit
        new_pit = response.get("pit_id") if relevance else None
        if relevance and not more and new_pit:
            await self._close_pit(new_pit)
            new_pit = None
        return Page(
            items=items,
            total=response.get("hits", {}).get("total", {"value": 0, "relation": "eq"}),
            next_search_after=list(page_hits[-1]["sort"]) if more else None,
            pit_id=new_pit,
        )

    async def _open_pit(self) -> str:
        response = await self._es.open_point_in_time(index=self._alias, keep_alive=self._keep_alive)
        return str(response["id"])

    async def _close_pit(self, pit_id: str) -> None:
        # Best effort: an unclosed point-in-time expires by itself after keep_alive.
        with contextlib.suppress(TransportError, ApiError):
            await self._es.close_point_in_time(id=pit_id)

    async def channels(self, q: str | None, limit: int) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"bool": {"filter": [NOT_REMOVED_CLAUSE]}}
        if q is not None:
            query["bool"]["must"] = [{"match_bool_prefix": {"channel_title": {"query": q, "operator": "and"}}}]
        aggs = {
            "channels": {
                "terms": {"field": "channel_id", "size": limit, "order": [{"_count": "desc"}, {"_key": "asc"}]},
                "aggs": {
                    "latest": {
                        "top_hits": {"size": 1, "_source": ["channel_title"], "sort": [{"published_at": "desc"}]}
                    }
                },
            }
        }
        response = await self._call_search(query=query, aggs=aggs, size=0, request_cache=True)
        return [
            {
                "channel_id": bucket["key"],
                "channel_title": (bucket["latest"]["hits"]["hits"] or [{"_source": {}}])[0]["_source"].get(
                    "channel_title"
                )
                or "",
                "video_count": bucket["doc_count"],
            }
            for bucket in response["aggregations"]["channels"]["buckets"]
        ]

    async def histogram(self, filters: Filters, interval: HistogramInterval) -> dict[int, int]:
        aggs: dict[str, Any] = {
            "buckets": {
                "date_histogram": {
                    "field": "published_at",
                    "fixed_interval": f"{INTERVAL_MS[interval] // 1000}s",
                    "time_zone": "UTC",
                    "min_doc_count": 1,
                }
            }
        }
        response = await self._call_search(
            query=build_query(filters, None, scored=False), aggs=aggs, size=0, request_cache=True
        )
        return {int(b["key"]): int(b["doc_count"]) for b in response["aggregations"]["buckets"]["buckets"]}

    async def query_counts(self, queries: list[str]) -> dict[str, int]:
        aggs = {"queries": {"terms": {"field": "queries", "include": queries, "size": max(len(queries), 1)}}}
        response = await self._call_search(query=NOT_REMOVED_CLAUSE, aggs=aggs, size=0, request_cache=True)
        return {b["key"]: int(b["doc_count"]) for b in response["aggregations"]["queries"]["buckets"]}

    async def count(self) -> int:
        try:
            response = await self._es.count(index=self._alias)
        except (TransportError, ApiError) as exc:
            raise _unavailable(exc) from exc
        return int(response["count"])

    async def get(self, video_id: str) -> dict[str, Any] | None:
        try:
            response = await self._es.get(index=self._alias, id=video_id, source_includes=list(VIDEO_SOURCE_FIELDS))
        except NotFoundError as exc:
            if _error_type(exc) == "index_not_found_exception":
                raise StoreUnavailableError("elasticsearch", "index missing") from exc
            return None
        except (TransportError, ApiError) as exc:
            raise _unavailable(exc) from exc
        return public_video(response["_source"])

    async def alias_ready(self) -> bool:
        try:
            return bool(await self._es.indices.exists_alias(name=self._alias))
        except (TransportError, ApiError):
            return False

    async def _call_search(self, **kwargs: Any) -> Any:
        try:
            return await self._es.search(index=self._alias, **kwargs)
        except (TransportError, ApiError) as exc:
            raise _unavailable(exc) from exc


def _error_type(exc: ApiError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error")
    return str(error.get("type")) if isinstance(error, dict) else ""


def _describe(exc: Exception) -> str:
    if isinstance(exc, ApiError):
        return f"{exc.meta.status} {_error_type(exc) or exc.message}: {exc.body}"[:500]
    if isinstance(exc, TransportConnectionError):
        return f"not reachable: {exc.message}"
    return f"{type(exc).__name__}: {exc}"[:500]


# Answers that mean "Elasticsearch cannot serve this now"; any other error is a bug of ours (a 500).
_UNAVAILABLE_STATUSES = frozenset({404, 408, 429, 500, 502, 503, 504})


def _unavailable(exc: Exception) -> Exception:
    if isinstance(exc, ApiError):
        if "too_many_buckets" in str(exc.body):
            return HistogramTooLargeError()
        if exc.meta.status not in _UNAVAILABLE_STATUSES:
            return exc
    return StoreUnavailableError("elasticsearch", _describe(exc))
