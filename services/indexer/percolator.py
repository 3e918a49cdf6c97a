"""``QueryPercolator``: the percolator index of the configured search queries, and percolating videos.

The index (``<alias>-queries-<fingerprint>`` behind the alias ``<alias>-queries``) holds one stored
query per configured query text, built by ``services.common.video_query.text_query`` with whole words
(the API's prefix on the last word is for someone typing, not for deciding what a video is about),
so a video matches a stored query exactly when the API's ``q`` of the same text, typed out, finds it.
Videos hold their text as ``services.common.percolated_text`` lays it out for the catalogue (one field
for the three texts, a cheaper percolate), and the stored queries search it there.

Its settings and text-field mappings are copied from the catalogue's live write index
(``catalogue.percolator_index_body``) and named by a fingerprint of them and of a built query: a
catalogue reindexed with another analyser or mapping, or a changed query builder, gives a new
fingerprint, so ``sync`` builds a fresh percolator index, swaps the alias in one request and deletes
the old one. Stored query ids are a hash of the text: two indexers syncing at once write the same
documents.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from elasticsearch import AsyncElasticsearch, BadRequestError

from services.common.catalogue import (
    PERCOLATOR_QUERY_FIELD,
    PERCOLATOR_TEXT_FIELD,
    alias_indexes,
    percolator_alias,
    percolator_index_body,
    set_replicas,
)
from services.common.percolated_text import PercolatedText
from services.common.video_query import text_query
from services.indexer.reindex import swap_alias

logger = logging.getLogger(__name__)

# More configured queries than this are not supported by one percolate page (index.max_result_window).
MAX_QUERIES = 10_000
# A sample text whose built query goes into the fingerprint: a change of the builder changes it.
_FINGERPRINT_SAMPLE = 'cricket "test match" -highlights bowl'


def stored_query(text: str, layout: PercolatedText) -> dict[str, Any]:
    """The percolator document of a configured query: the API's q for ``text``, whole words only,
    searching the videos' text where ``layout`` puts it."""
    query = text_query(text, whole_words=True, fields=layout.query_fields)
    return {PERCOLATOR_QUERY_FIELD: query, PERCOLATOR_TEXT_FIELD: text}


def query_id(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def percolator_fingerprint(settings: Mapping[str, Any], mappings: Mapping[str, Any], layout: PercolatedText) -> str:
    body = {"settings": settings, "mappings": mappings, "sample": stored_query(_FINGERPRINT_SAMPLE, layout)}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:12]


class QueryPercolator:
    def __init__(self, es: AsyncElasticsearch, catalogue_alias: str, replicas: int = 0) -> None:
        self._es = es
        self._catalogue_alias = catalogue_alias
        self.alias = percolator_alias(catalogue_alias)
        # ELASTICSEARCH_REPLICAS: given at creation, and once per process to an existing index.
        self._replicas = replicas
        self._replicas_set = False
        self._layout: PercolatedText | None = None  # the current index's, known since the last sync

    async def sync(self, queries: Sequence[str]) -> list[str]:
        """Make the percolator index current and hold exactly ``queries``; returns those it did not
        hold before (new, or all of them when there was no percolator index), in ``queries`` order."""
        previous = await alias_indexes(self._es, self.alias)
        held_before = await self._held(previous[0]) if previous else set()
        index, settings, mappings, layout = await self._current_index()
        if previous != [index]:
            await self._create(index, settings, mappings)
            await swap_alias(self._es, self.alias, index)
            old = [name for name in previous if name != index]
            if old:
                await self._es.options(ignore_status=404).indices.delete(index=",".join(old), ignore_unavailable=True)
            logger.info(
                "percolator index built", extra={"alias": self.alias, "index": index, "previous": ",".join(old)}
            )
        elif not self._replicas_set:
            await set_replicas(self._es, index, self._replicas)
        self._replicas_set = True
        self._layout = layout
        held = await self._held(index)
        wanted = list(dict.fromkeys(queries))
        operations: list[dict[str, Any]] = []
        added = [text for text in wanted if text not in held]
        removed = sorted(held - set(wanted))
        for text in added:
            operations += [{"index": {"_id": query_id(text)}}, stored_query(text, layout)]
        for text in removed:
            operations.append({"delete": {"_id": query_id(text)}})
        if operations:
            # refresh: the next batch percolates against the new queries.
            response = await self._es.bulk(index=index, operations=operations, refresh=True)
            if response.get("errors"):
                raise RuntimeError(f"percolator index {index} refused stored queries: {response['items'][:3]}")
            logger.info(
                "percolator queries synced",
                extra={"index": index, "added": len(added), "removed": len(removed)},
            )
        return [text for text in wanted if text not in held_before]

    async def matches(self, docs: Sequence[Mapping[str, Any]], only: Sequence[str] | None = None) -> list[set[str]]:
        """Per document (title, channel title, description), the configured queries it matches; one
        percolate request for them all. ``only`` restricts to those query texts."""
        if not docs:
            return []
        if self._layout is None:
            self._layout = (await self._current_index())[3]
        documents = [self._layout.of(doc) for doc in docs]
        clauses: list[dict[str, Any]] = [{"percolate": {"field": PERCOLATOR_QUERY_FIELD, "documents": documents}}]
        if only is not None:
            clauses.append({"terms": {PERCOLATOR_TEXT_FIELD: list(only)}})
        response = await self._es.search(
            index=self.alias,
            query={"bool": {"filter": clauses}},
            size=MAX_QUERIES,
            source_includes=[PERCOLATOR_TEXT_FIELD],
        )
        found: list[set[str]] = [set() for _ in docs]
        for hit in response["hits"]["hits"]:
            text = hit["_source"][PERCOLATOR_TEXT_FIELD]
            for slot in hit.get("fields", {}).get("_percolator_document_slot", []):
                found[slot].add(text)
        return found

    async def _current_index(self) -> tuple[str, dict[str, Any], dict[str, Any], PercolatedText]:
        """The name, settings, mappings and text layout the percolator index must have for the
        catalogue as it is."""
        catalogue = (await alias_indexes(self._es, self._catalogue_alias))[0]
        info = (await self._es.indices.get(index=catalogue)).body[catalogue]
        layout = PercolatedText.for_catalogue(info)
        settings, mappings = percolator_index_body(info, layout.mappings)
        return f"{self.alias}-{percolator_fingerprint(settings, mappings, layout)}", settings, mappings, layout

    async def _create(self, index: str, settings: dict[str, Any], mappings: dict[str, Any]) -> None:
        # With ELASTICSEARCH_REPLICAS, not the body's 0: the fingerprint reads the body, and the
        # replica count decides no match, so a changed count rebuilds nothing.
        try:
            await self._es.indices.create(
                index=index, settings=settings | {"number_of_replicas": self._replicas}, mappings=mappings
            )
        except BadRequestError as exc:
            if exc.error != "resource_already_exists_exception":
                raise  # else: created by an indexer starting at the same time

    async def _held(self, index: str) -> set[str]:
        response = await self._es.search(
            index=index, query={"match_all": {}}, size=MAX_QUERIES, source_includes=[PERCOLATOR_TEXT_FIELD]
        )
        return {hit["_source"][PERCOLATOR_TEXT_FIELD] for hit in response["hits"]["hits"]}
