"""MongoDB: the system of record, and the fallback for listings and q while Elasticsearch is away.

Same cursor format and date order as Elasticsearch: (published_at, video_id) over the
``published_at_video_id`` index; q uses the text index (whole words of titles and channel titles,
``MONGO_TEXT_INDEX``: not descriptions, whose text index made writes collapse at scale).
"""

from __future__ import annotations

import re
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure, PyMongoError

from services.api.buckets import HistogramInterval
from services.api.pages import TOTAL_EXACT_UP_TO, Page, PageRequest
from services.common.catalogue import REMOVED_AT_FIELD, VIDEOS_COLLECTION
from services.common.errors import StoreUnavailableError
from services.common.events import FoundBySource
from services.common.timefmt import from_epoch_ms, to_epoch_ms
from services.common.video_query import Filters
from services.common.video_shape import VIDEO_SOURCE_FIELDS, public_video

_PROJECTION = {"_id": 0, **{name: 1 for name in VIDEO_SOURCE_FIELDS}}
_PHRASE = re.compile(r'"([^"]*)"')
# Characters MongoDB's $search gives a meaning to; a word keeps none of them.
_SEARCH_SYNTAX = re.compile(r'["\\]')
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MATCH_NOTHING: dict[str, Any] = {"_id": {"$exists": False}}
# Videos YouTube did not say it deleted.
_NOT_REMOVED: dict[str, Any] = {REMOVED_AT_FIELD: {"$exists": False}}
# MongoDB's IndexNotFound: a $text query on a collection without a text index (one being built).
_INDEX_NOT_FOUND = 27


def store_unavailable(exc: PyMongoError) -> StoreUnavailableError:
    """What MongoDB's failure means to the caller; a q while the text index is missing says so."""
    if isinstance(exc, OperationFailure) and exc.code == _INDEX_NOT_FOUND and "text index" in str(exc):
        return StoreUnavailableError("mongodb", "q needs MongoDB's text index, which is not built yet")
    return StoreUnavailableError("mongodb", f"{type(exc).__name__}: {exc}")


def mongo_text_search(q: str) -> str | None:
    """q as a MongoDB $search string: every word required (each quoted), "phrases" kept, -word excluded.

    MongoDB ORs bare words; quoting each one makes them all required, like Elasticsearch. None when
    nothing positive remains (MongoDB's text search cannot express "everything except").
    """
    phrases = [p.strip() for p in _PHRASE.findall(q) if p.strip()]
    rest = _PHRASE.sub(" ", q)
    required: list[str] = [f'"{_SEARCH_SYNTAX.sub(" ", p)}"' for p in phrases]
    excluded: list[str] = []
    for word in rest.split():
        if word == "|":
            continue
        clean = _SEARCH_SYNTAX.sub("", word.strip("()|+*~"))
        if clean.startswith("-"):
            if clean.strip("-"):
                excluded.append("-" + clean.strip("-"))
        elif clean:
            required.append(f'"{clean}"')
    if not required:
        return None
    return " ".join(required + excluded)


def found_by_filter(source: FoundBySource) -> dict[str, Any]:
    """Videos with at least one find of ``source``; as in Elasticsearch, a video stored before
    found_by existed (only ``queries``) counts as found by search."""
    found = {"found_by.source": source}
    if source != "search":
        return found
    return {"$or": [found, {"found_by.0": {"$exists": False}, "queries.0": {"$type": "string"}}]}


def mongo_filter(filters: Filters, snapshot_ms: int | None) -> dict[str, Any]:
    filters.require_absolute()
    query: dict[str, Any] = {}
    if filters.q is not None:
        search = mongo_text_search(filters.q)
        if search is None:
            return dict(_MATCH_NOTHING)
        query["$text"] = {"$search": search, "$language": "english"}
    if filters.channel_ids:
        query["channel_id"] = {"$in": list(filters.channel_ids)}
    published: dict[str, Any] = {}
    if filters.published_after_ms is not None:
        published["$gte"] = from_epoch_ms(filters.published_after_ms)
    if filters.published_before_ms is not None:
        published["$lte"] = from_epoch_ms(filters.published_before_ms)
    if published:
        query["published_at"] = published
    if filters.query is not None:
        query["queries"] = filters.query
        if filters.matched is not None:
            # The indexer lists a query matched by text alone in text_matched_queries (MongoDB only).
            text_only = filters.query if filters.matched == "text" else {"$ne": filters.query}
            query["text_matched_queries"] = text_only
    if filters.found_by is not None:
        query |= found_by_filter(filters.found_by)
    if snapshot_ms is not None:
        query["first_seen_at"] = {"$lte": from_epoch_ms(snapshot_ms)}
    if not filters.include_removed:
        query |= _NOT_REMOVED
    return query


class MongoStore:
    """The same answers from the videos collection, in the same order and cursor format."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._db = db
        self._videos = db[VIDEOS_COLLECTION]

    @property
    def database(self) -> AsyncDatabase[dict[str, Any]]:
        return self._db

    async def page(self, request: PageRequest) -> Page:
        if request.sort == "relevance":
            raise StoreUnavailableError("mongodb", "relevance ranking needs Elasticsearch")
        snapshot = None if request.first_page else request.snapshot_ms
        base = mongo_filter(request.filters, snapshot)
        direction = -1 if request.sort == "-published_at" else 1
        query = base
        if request.search_after is not None:
            published, video_id = from_epoch_ms(int(request.search_after[0])), str(request.search_after[1])
            beyond = "$lt" if direction < 0 else "$gt"
            after = {
                "$or": [
                    {"published_at": {beyond: published}},
                    {"published_at": published, "video_id": {beyond: video_id}},
                ]
            }
            query = {"$and": [base, after]} if base else after
        try:
            docs = await self._videos.find(
                query,
                _PROJECTION,
                sort=[("published_at", direction), ("video_id", direction)],
                limit=request.limit + 1,
            ).to_list()
            counted = await self._videos.count_documents(base, limit=TOTAL_EXACT_UP_TO + 1)
        except PyMongoError as exc:
            raise store_unavailable(exc) from exc
        page_docs = docs[: request.limit]
        items = [public_video(doc, to_epoch_ms(doc["published_at"])) for doc in page_docs]
        more = len(docs) > request.limit
        total = (
            {"value": TOTAL_EXACT_UP_TO, "relation": "gte"}
            if counted > TOTAL_EXACT_UP_TO
            else {"value": counted, "relation": "eq"}
        )
        last = page_docs[-1] if more else None
        return Page(
            items=items,
            total=total,
            next_search_after=[to_epoch_ms(last["published_at"]), last["video_id"]] if last else None,
        )

    async def get(self, video_id: str) -> dict[str, Any] | None:
        try:
            doc = await self._videos.find_one({"video_id": video_id}, _PROJECTION)
        except PyMongoError as exc:
            raise store_unavailable(exc) from exc
        return None if doc is None else public_video(doc)

    async def channels(self, q: str | None, limit: int) -> list[dict[str, Any]]:
        pipeline: list[dict[str, Any]] = [{"$match": _NOT_REMOVED}]
        if q is not None:
            words = _CONTROL.sub("", q).split()
            pattern = "".join(f"(?=.*(^|\\W){re.escape(word)})" for word in words)
            pipeline.append({"$match": {"channel_title": {"$regex": pattern, "$options": "is"}}})
        pipeline += [
            {
                "$group": {
                    "_id": "$channel_id",
                    "video_count": {"$sum": 1},
                    "channel_title": {"$last": "$channel_title"},
                }
            },
            {"$sort": {"video_count": -1, "_id": 1}},
            {"$limit": limit},
        ]
        rows = await self._aggregate(pipeline)
        return [
            {"channel_id": r["_id"], "channel_title": r.get("channel_title") or "", "video_count": r["video_count"]}
            for r in rows
            if isinstance(r.get("_id"), str)
        ]

    async def histogram(self, filters: Filters, interval: HistogramInterval) -> dict[int, int]:
        pipeline: list[dict[str, Any]] = [
            {"$match": mongo_filter(filters, None)},
            {
                "$group": {
                    "_id": {"$dateTrunc": {"date": "$published_at", "unit": interval, "timezone": "UTC"}},
                    "count": {"$sum": 1},
                }
            },
        ]
        rows = await self._aggregate(pipeline)
        return {to_epoch_ms(r["_id"]): int(r["count"]) for r in rows if r.get("_id") is not None}

    async def query_counts(self, queries: list[str]) -> dict[str, int]:
        pipeline: list[dict[str, Any]] = [
            {"$match": {"queries": {"$in": queries}} | _NOT_REMOVED},
            {"$unwind": "$queries"},
            {"$match": {"queries": {"$in": queries}}},
            {"$group": {"_id": "$queries", "count": {"$sum": 1}}},
        ]
        return {r["_id"]: int(r["count"]) for r in await self._aggregate(pipeline)}

    async def count(self) -> int:
        try:
            return int(await self._videos.estimated_document_count())
        except PyMongoError as exc:
            raise store_unavailable(exc) from exc

    async def _aggregate(self, pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
        try:
            cursor = await self._videos.aggregate(pipeline, allowDiskUse=True)
            return await cursor.to_list()
        except PyMongoError as exc:
            raise store_unavailable(exc) from exc
