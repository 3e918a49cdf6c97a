"""``SavedSearchPercolator``: the percolator index of the saved searches, and percolating stored videos.

The index (``<alias>-saved-searches-<fingerprint>`` behind the alias ``<alias>-saved-searches``) holds
one stored query per saved search with a webhook that is not paused: the query the API builds for its
filters (``services.common.video_query.build_query``) with whole words, so "cat" matches a video about
cats and never one about a "category", its words searched where ``services.common.percolated_text``
puts a percolated video's text for this catalogue (one field for the three: a cheaper percolate).
Beside the query it keeps what the query cannot say: the saved search's ``created_at`` (only videos
first seen from then on are delivered) and ``published_within`` (a span back from the moment a video
is matched), which ``percolate``'s caller checks per video.

Settings (analysis) and the mappings of the fields the filters read are copied from the catalogue's
live write index, and the index is named by a fingerprint of them and of a built query: a catalogue
reindexed with another analyser or mapping, or a changed query builder, gives a new fingerprint, so
``sync`` builds a fresh index with every saved search, swaps the alias in one request and deletes the
old one. Documents are keyed by the saved search's id with its ``rev`` as external version: two
notifiers syncing at once write the same documents, and an older revision never replaces a newer one.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from elasticsearch import AsyncElasticsearch, BadRequestError

from services.common.catalogue import alias_indexes, set_replicas, whole_word_mappings
from services.common.percolated_text import PercolatedText
from services.common.saved_searches import SavedSearch
from services.common.timefmt import format_rfc3339, parse_rfc3339
from services.common.video_filters import VideoFilters
from services.common.video_query import build_query

logger = logging.getLogger(__name__)

SAVED_SEARCHES_SUFFIX = "-saved-searches"
QUERY_FIELD = "query"
# Saved searches one percolator index (and one percolate answer) holds at most: its max_result_window.
MAX_SAVED_SEARCHES = 100_000
# What a percolated video holds beside its text (PercolatedText): the fields a saved search's filters
# read, as the catalogue maps them.
PERCOLATED_VIDEO_FIELDS = (
    "channel_id",
    "published_at",
    "queries",
    "found_by",
)
_SAVED_SEARCH_PROPERTIES: dict[str, Any] = {
    QUERY_FIELD: {"type": "percolator"},
    "saved_search_id": {"type": "keyword"},
    "created_at": {"type": "date"},
    "published_within_ms": {"type": "long"},
}
_HIT_SOURCE = ["saved_search_id", "created_at", "published_within_ms"]
# Filters whose built query goes into the fingerprint: a change of the builder changes it.
_FINGERPRINT_SAMPLE = VideoFilters.model_validate(
    {"q": 'cricket "test match" -highlights bowl', "channel_id": ["UCaaaaaaaaaaaaaaaaaaaaaa"], "found_by": "search"}
)


def saved_searches_alias(catalogue_alias: str) -> str:
    return catalogue_alias + SAVED_SEARCHES_SUFFIX


def is_percolated(search: SavedSearch) -> bool:
    """Only saved searches whose webhook takes deliveries are matched."""
    return search.webhook is not None and not search.webhook.paused


def stored_query(filters: VideoFilters, layout: PercolatedText) -> dict[str, Any]:
    """The filters' query as the API builds it for a list, whole words, without ``published_within``
    (relative to the moment of matching, it is checked per video) and without the clause that leaves
    out removed videos: the matcher never percolates one, and a query of terms alone is one the
    percolator selects by its terms and runs on fewer videos (a third less time per percolate). Its
    words search the videos' text where ``layout`` puts it."""
    matched = replace(filters.filters(), published_within_ms=None, include_removed=True)
    return build_query(matched, None, scored=False, whole_words=True, text_fields=layout.query_fields)


def stored_document(search: SavedSearch, layout: PercolatedText) -> dict[str, Any]:
    within = search.filters.filters().published_within_ms
    return {
        QUERY_FIELD: stored_query(search.filters, layout),
        "saved_search_id": search.id,
        "created_at": format_rfc3339(search.created_at),
        "published_within_ms": within,
    }


def percolated_video(doc: Mapping[str, Any], layout: PercolatedText) -> dict[str, Any]:
    """A stored video (a MongoDB document) as the percolator reads it."""
    video = layout.of(doc)
    for name in PERCOLATED_VIDEO_FIELDS:
        value = doc.get(name)
        if value is None:
            continue
        video[name] = format_rfc3339(value) if isinstance(value, datetime) else value
    if isinstance(video.get("found_by"), list):
        video["found_by"] = [
            {key: entry[key] for key in ("source", "query", "channel_id", "via") if entry.get(key) is not None}
            for entry in video["found_by"]
            if isinstance(entry, dict)
        ]
    return video


def index_body(catalogue_index: Mapping[str, Any], layout: PercolatedText) -> tuple[dict[str, Any], dict[str, Any]]:
    """(settings, mappings) of the percolator index for the catalogue index described by
    ``catalogue_index`` (one entry of ``indices.get``): its analysis, the filtered fields' mappings and
    the text fields of ``layout``."""
    settings: dict[str, Any] = {
        "number_of_shards": 1,
        "number_of_replicas": 0,
        "max_result_window": MAX_SAVED_SEARCHES,
    }
    analysis = catalogue_index["settings"]["index"].get("analysis")
    if analysis:
        settings["analysis"] = analysis
    mappings = {
        "dynamic": "strict",
        "properties": {
            **layout.mappings,
            **whole_word_mappings(catalogue_index, PERCOLATED_VIDEO_FIELDS),
            **_SAVED_SEARCH_PROPERTIES,
        },
    }
    return settings, mappings


def fingerprint(settings: Mapping[str, Any], mappings: Mapping[str, Any], layout: PercolatedText) -> str:
    body = {"settings": settings, "mappings": mappings, "sample": stored_query(_FINGERPRINT_SAMPLE, layout)}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class SearchHit:
    """A saved search whose query matched some of the percolated videos (``slots``: their positions)."""

    saved_search_id: str
    created_at: datetime
    published_within_ms: int | None
    slots: tuple[int, ...]


class SavedSearchPercolator:
    def __init__(self, es: AsyncElasticsearch, catalogue_alias: str, replicas: int = 0) -> None:
        self._es = es
        self._catalogue_alias = catalogue_alias
        self.alias = saved_searches_alias(catalogue_alias)
        # ELASTICSEARCH_REPLICAS: given at creation, and once per process to an existing index.
        self._replicas = replicas
        self._replicas_set = False
        # What the current index holds (id -> rev), known since this process last read or built it.
        self._index: str | None = None
        self._held: dict[str, int] = {}
        self._layout: PercolatedText | None = None

    @property
    def held(self) -> int:
        return len(self._held)

    async def sync(self, searches: Sequence[SavedSearch]) -> tuple[int, int]:
        """Make the index current and hold exactly the percolated ``searches`` at their revisions;
        returns (written, deleted). What it wrote is searchable when it returns (refreshed)."""
        wanted = {search.id: search for search in searches if is_percolated(search)}
        if len(wanted) > MAX_SAVED_SEARCHES:
            raise ValueError(f"more than {MAX_SAVED_SEARCHES} saved searches with a webhook")
        index, settings, mappings, layout = await self._current_index()
        previous = await alias_indexes(self._es, self.alias)
        rebuilt = previous != [index]
        if rebuilt:
            await self._create(index, settings, mappings)
        elif not self._replicas_set:
            await set_replicas(self._es, index, self._replicas)
        self._replicas_set = True
        if rebuilt or self._index != index:
            self._held = await self._read_held(index)
        self._index = index
        self._layout = layout
        written = [search for search in wanted.values() if self._held.get(search.id) != search.rev]
        deleted = sorted(set(self._held) - set(wanted))
        await self._write(index, layout, written, deleted)
        if rebuilt:
            # Only now that the new index holds every saved search does the alias move to it.
            await self._point_alias(index, previous)
        return len(written), len(deleted)

    async def percolate(self, docs: Sequence[Mapping[str, Any]]) -> list[SearchHit]:
        """The saved searches the stored videos ``docs`` match, with the positions of the videos each
        matches: one percolate request for them all (a second only if more matched than expected)."""
        if not docs:
            return []
        layout = self._layout or (await self._current_index())[3]
        query = {
            "bool": {
                "filter": [
                    {"percolate": {"field": QUERY_FIELD, "documents": [percolated_video(d, layout) for d in docs]}}
                ]
            }
        }
        size = min(MAX_SAVED_SEARCHES, len(self._held) + 100)
        while True:
            response = await self._es.search(
                index=self.alias, query=query, size=size, source_includes=_HIT_SOURCE, track_total_hits=True
            )
            found = response["hits"]["hits"]
            total = int(response["hits"]["total"]["value"])
            if total <= len(found) or size >= MAX_SAVED_SEARCHES:
                break
            size = min(MAX_SAVED_SEARCHES, total)  # another notifier holds saved searches this one has not seen
        return [
            SearchHit(
                saved_search_id=hit["_source"]["saved_search_id"],
                created_at=parse_rfc3339(hit["_source"]["created_at"]),
                published_within_ms=hit["_source"].get("published_within_ms"),
                slots=tuple(hit.get("fields", {}).get("_percolator_document_slot", [])),
            )
            for hit in found
        ]

    async def _current_index(self) -> tuple[str, dict[str, Any], dict[str, Any], PercolatedText]:
        """The name, settings, mappings and text layout the index must have for the catalogue as it is."""
        catalogue = (await alias_indexes(self._es, self._catalogue_alias))[0]
        info = (await self._es.indices.get(index=catalogue)).body[catalogue]
        layout = PercolatedText.for_catalogue(info)
        settings, mappings = index_body(info, layout)
        return f"{self.alias}-{fingerprint(settings, mappings, layout)}", settings, mappings, layout

    async def _create(self, index: str, settings: dict[str, Any], mappings: dict[str, Any]) -> None:
        # With ELASTICSEARCH_REPLICAS, not the body's 0: the fingerprint reads the body, and the
        # replica count decides no match, so a changed count rebuilds nothing.
        try:
            await self._es.indices.create(
                index=index, settings=settings | {"number_of_replicas": self._replicas}, mappings=mappings
            )
        except BadRequestError as exc:
            if exc.error != "resource_already_exists_exception":
                raise  # else: created by a notifier starting at the same time

    async def _point_alias(self, index: str, previous: Sequence[str]) -> None:
        old = [name for name in previous if name != index]
        actions: list[Mapping[str, Any]] = [
            {"remove": {"index": name, "alias": self.alias, "must_exist": False}} for name in old
        ]
        actions.append({"add": {"index": index, "alias": self.alias, "is_write_index": True}})
        await self._es.indices.update_aliases(actions=actions)
        if old:
            await self._es.options(ignore_status=404).indices.delete(index=",".join(old), ignore_unavailable=True)
        logger.info(
            "saved searches index built", extra={"alias": self.alias, "index": index, "previous": ",".join(old)}
        )

    async def _write(
        self, index: str, layout: PercolatedText, written: Sequence[SavedSearch], deleted: Sequence[str]
    ) -> None:
        operations: list[dict[str, Any]] = []
        for search in written:
            operations += [
                {"index": {"_id": search.id, "version": search.rev, "version_type": "external"}},
                stored_document(search, layout),
            ]
        for saved_search_id in deleted:
            operations.append({"delete": {"_id": saved_search_id}})
        if not operations:
            return
        response = await self._es.bulk(index=index, operations=operations, refresh=True)
        refused = [
            item
            for item in response["items"]
            # 409: this revision or a newer one is held already (another notifier wrote it); 404: gone already.
            if next(iter(item.values())).get("status", 200) not in (200, 201, 404, 409)
        ]
        if refused:
            raise RuntimeError(f"percolator index {index} refused saved searches: {refused[:3]}")
        for search in written:
            self._held[search.id] = search.rev
        for saved_search_id in deleted:
            self._held.pop(saved_search_id, None)
        logger.info("saved searches synced", extra={"index": index, "written": len(written), "deleted": len(deleted)})

    async def _read_held(self, index: str) -> dict[str, int]:
        response = await self._es.search(
            index=index,
            query={"match_all": {}},
            size=MAX_SAVED_SEARCHES,
            source=False,
            version=True,
            track_total_hits=False,
        )
        return {hit["_id"]: int(hit["_version"]) for hit in response["hits"]["hits"]}
