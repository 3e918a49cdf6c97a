"""A catalogue as indexers before ``found_by`` left it: version 1 documents and an alias on a version 1 index.

Built here from the old definitions (the mapping without ``found_by``, documents with ``queries``
only), not from today's code, so an upgrade test starts where a real deployment would.
"""

from __future__ import annotations

import asyncio
import copy
import json
import random
from collections.abc import Sequence
from typing import Any

from elasticsearch import AsyncElasticsearch
from elasticsearch.helpers import async_bulk, async_scan
from pymongo.asynchronous.database import AsyncDatabase

from services.common.catalogue import (
    MONGO_VIDEO_INDEXES,
    SEARCH_INDEX_MAPPINGS,
    SEARCH_INDEX_SETTINGS,
    VIDEOS_COLLECTION,
    versioned_index_name,
)
from services.common.timefmt import truncate_to_ms, utc_now
from services.indexer.es_bulk import search_source
from services.indexer.mongo_documents import new_document
from tests.factories import make_event

VERSION_1_MAPPINGS: dict[str, Any] = copy.deepcopy(SEARCH_INDEX_MAPPINGS)
del VERSION_1_MAPPINGS["properties"]["found_by"]
QUERIES = ("cricket", "golf", "tennis")


def version_1_document(rng: random.Random, queries: Sequence[str]) -> dict[str, Any]:
    """A MongoDB video as a version 1 indexer wrote it: the queries that found it, no found_by."""
    doc = new_document(make_event(rng, query=queries[0]), truncate_to_ms(utc_now()))
    del doc["found_by"]
    doc["queries"] = list(queries)
    return doc


def version_1_documents(count: int, seed: int = 1) -> list[dict[str, Any]]:
    """``count`` videos, one in three found by two queries."""
    rng = random.Random(seed)
    return [version_1_document(rng, QUERIES[:2] if i % 3 == 0 else QUERIES[i % 3 :][:1]) for i in range(count)]


async def index_version_1(es: AsyncElasticsearch, alias: str, docs: Sequence[dict[str, Any]]) -> None:
    """Index ``docs`` through ``alias`` as a version 1 indexer did (no found_by in the source)."""

    def actions() -> Any:
        for doc in docs:
            source = search_source(doc)
            del source["found_by"]
            yield {
                "_index": alias,
                "_id": doc["video_id"],
                "_source": source,
                "version": doc["rev"],
                "version_type": "external_gte",
            }

    # Under 1 MiB a request: aiohttp warns about larger raw bodies (and the tests make warnings errors).
    _, errors = await async_bulk(es, actions(), chunk_size=1000, max_chunk_bytes=900_000, raise_on_error=False)
    # A version conflict means a newer revision is stored already (a new indexer's upgrade may have
    # written it meanwhile): done, as for every indexer. Anything else is a failure, shown whole.
    assert isinstance(errors, list)  # raise_on_error=False: the failed items, not their count
    failed = [item for item in errors if any(result.get("status") != 409 for result in item.values())]
    assert not failed, f"a version 1 write failed: {failed}"


async def build_version_1_catalogue(
    db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, alias: str, count: int
) -> list[dict[str, Any]]:
    """MongoDB with ``count`` version 1 videos, and ``alias`` on ``<alias>-v1`` (old mapping) holding them."""
    # The old indexes (without found_by_source): a version 1 deployment had no such index.
    await db[VIDEOS_COLLECTION].create_indexes(
        [i for i in MONGO_VIDEO_INDEXES if i.document["name"] != "found_by_source"]
    )
    docs = version_1_documents(count)
    for start in range(0, count, 5000):
        await db[VIDEOS_COLLECTION].insert_many([dict(doc) for doc in docs[start : start + 5000]])
    await es.indices.create(
        index=versioned_index_name(alias, 1),
        settings=SEARCH_INDEX_SETTINGS,
        mappings=VERSION_1_MAPPINGS,
        aliases={alias: {"is_write_index": True}},
    )
    await index_version_1(es, alias, docs)
    await es.indices.refresh(index=alias)
    return docs


def search_entries(queries: Sequence[str]) -> list[dict[str, str]]:
    return sorted(({"source": "search", "query": q} for q in queries), key=lambda e: e["query"])


async def assert_every_video_has_found_by(
    db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, alias: str, expected_count: int, *, complete: bool = True
) -> None:
    """Both stores hold ``expected_count`` videos, each with the same found_by in both.

    Its search entries are those of its queries (``complete``) or some of them (a query an older
    indexer added after the video got found_by is completed by the next reindex or write).
    """
    stored = {doc["video_id"]: doc async for doc in db[VIDEOS_COLLECTION].find({}, {"_id": 0})}
    assert len(stored) == expected_count
    lacking = [vid for vid, doc in stored.items() if "found_by" not in doc]
    assert not lacking, f"{len(lacking)} videos without found_by in MongoDB, e.g. {lacking[:3]}"
    for vid, doc in stored.items():
        searches = sorted((e for e in doc["found_by"] if e["source"] == "search"), key=lambda e: e["query"])
        # A query a channel video's text matched is in its queries but no search find (yet).
        searched = [q for q in doc["queries"] if q not in doc.get("text_matched_queries", [])]
        assert searches == search_entries(searched) if complete else searches, vid
        assert {e["query"] for e in searches} <= set(doc["queries"]), vid
    await es.indices.refresh(index=alias)
    indexed = {hit["_id"]: hit["_source"] async for hit in async_scan(es, index=alias)}
    assert indexed.keys() == stored.keys()
    for vid, source in indexed.items():
        assert sorted(source.get("found_by") or [], key=json.dumps) == sorted(
            stored[vid]["found_by"], key=json.dumps
        ), vid


class Reader:
    """Reads through the alias as the API does, nonstop, keeping every failure and the counts seen."""

    def __init__(self, es: AsyncElasticsearch, alias: str) -> None:
        self._es = es
        self._alias = alias
        self.failures: list[str] = []
        self.counts: list[int] = []
        self.reads = 0
        self._stop = asyncio.Event()

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.counts.append(int((await self._es.count(index=self._alias))["count"]))
                page = await self._es.search(index=self._alias, size=20, sort=[{"published_at": "desc"}])
                if len(page["hits"]["hits"]) != 20:
                    self.failures.append(f"a page of {len(page['hits']['hits'])}")
                self.reads += 1
            except Exception as exc:
                self.failures.append(repr(exc)[:300])
            await asyncio.sleep(0.01)  # a client's pace, not a condition to wait for

    def stop(self) -> None:
        self._stop.set()
