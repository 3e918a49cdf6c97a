"""Where videos are stored: MongoDB (system of record) and the Elasticsearch alias (read model).

Both the indexer (writer) and the API (reader) use these names, indexes and mappings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from elasticsearch import AsyncElasticsearch, BadRequestError, NotFoundError
from pymongo import ASCENDING, DESCENDING, TEXT, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

VIDEOS_COLLECTION = "videos"
# MongoDB's IndexNotFound: dropping an index another process dropped first.
_INDEX_NOT_FOUND = 27
# 2: found_by (how each video was found). The mapping is strict, so every new field that existing
# documents must hold is a new version, filled by the zero-downtime reindex (an upgraded indexer runs it
# at start, see services/indexer/upgrade.py). A field no existing document needs (FIELDS_ADDED_IN_PLACE)
# is added to the live index's mapping instead.
# 3: the index sorted newest first (INDEX_SORT), a setting fixed when an index is created.
SEARCH_INDEX_VERSION = 3
# When YouTube said the video was deleted; absent while it is not (services/indexer/removal.py).
REMOVED_AT_FIELD = "removed_at"

MONGO_VIDEO_INDEXES = [
    IndexModel([("video_id", ASCENDING)], unique=True, name="video_id_unique"),
    IndexModel([("published_at", DESCENDING), ("video_id", DESCENDING)], name="published_at_video_id"),
    IndexModel([("channel_id", ASCENDING), ("published_at", DESCENDING)], name="channel_published_at"),
    # Filters by how videos were found, and finds the videos stored before found_by existed (their key
    # is null) without a collection scan, so an indexer can look for them at every start.
    IndexModel([("found_by.source", ASCENDING)], name="found_by_source"),
]

# Degraded-mode q (the API's MongoDB fallback): whole words of titles and channel titles. Not the
# description: a text index keeps one key per distinct word of each document, and description words
# made inserts collapse once the index outgrew the cache (README "Indexer", *MongoDB's text index*).
# MongoDB allows one text index per collection and refuses an index of the same name with other
# keys, so a collection holding an older text index has it dropped first (ensure_text_index).
TEXT_INDEX_WEIGHTS = {"title": 1, "channel_title": 1}
TEXT_INDEX_LANGUAGE = "english"
MONGO_TEXT_INDEX = IndexModel(
    [(field, TEXT) for field in TEXT_INDEX_WEIGHTS],
    name="title_channel_title_text",
    default_language=TEXT_INDEX_LANGUAGE,
)

# Segments stored in the order of the default listing (newest first, video_id breaking ties), so a
# newest-first search stops once it has its page and the bounded total instead of visiting every
# match (README "API", *The levers, each alone*).
INDEX_SORT: dict[str, Any] = {"sort.field": ["published_at", "video_id"], "sort.order": ["desc", "desc"]}

SEARCH_INDEX_SETTINGS: dict[str, Any] = {
    **INDEX_SORT,
    "number_of_shards": 1,
    # What an index gets without a replica count (create_search_index's ``replicas``, from
    # ELASTICSEARCH_REPLICAS): on one node a replica could never be allocated and would keep the
    # cluster yellow.
    "number_of_replicas": 0,
    "analysis": {
        "filter": {
            "prefix_edge": {"type": "edge_ngram", "min_gram": 2, "max_gram": 20},
        },
        "analyzer": {
            "prefix_index": {
                "type": "custom",
                "tokenizer": "standard",
                "filter": ["lowercase", "asciifolding", "prefix_edge"],
            },
            "prefix_search": {"type": "custom", "tokenizer": "standard", "filter": ["lowercase", "asciifolding"]},
        },
    },
}

# Only while a reindex fills a fresh index nobody reads yet.
_BULK_LOADING_SETTINGS: dict[str, Any] = {"refresh_interval": "-1", "translog.durability": "async"}

# Prefix matching of the word being typed ("crick" finds "cricket"), one sub-field per text field:
# - title.prefix holds edge n-grams (2..20 characters) of each title word: a prefix is a plain term
#   lookup, the fastest query, for the field users type against most.
# - description.prefix holds the plain words (lowercased, accents folded), no n-grams: a prefix is
#   expanded against the term dictionary at query time. Edge n-grams of descriptions made indexing
#   about 35% more expensive in Elasticsearch and the index about 40% larger (measured on this
#   machine, see README "Indexer"), for the longest and least searched text.
# Query both with {"multi_match": {"type": "bool_prefix", "query": ..., "fields": SEARCH_PREFIX_FIELDS}}:
# it analyses with each field's search analyzer and makes the last word a prefix query, which matches
# on either kind of sub-field (a plain "match" on description.prefix would match whole words only).
SEARCH_PREFIX_FIELDS = ("title.prefix", "description.prefix")

# No positions in the prefix sub-fields (index_options "freqs"): bool_prefix never needs them, and
# positions of every n-gram are a good part of what n-grams cost to index. (So no phrase queries there:
# phrases go to the main fields.)
_TITLE_WITH_PREFIX: dict[str, Any] = {
    "type": "text",
    "analyzer": "english",
    "fields": {
        "prefix": {
            "type": "text",
            "analyzer": "prefix_index",
            "search_analyzer": "prefix_search",
            "index_options": "freqs",
        }
    },
}
_DESCRIPTION_WITH_PREFIX: dict[str, Any] = {
    "type": "text",
    "analyzer": "english",
    "fields": {"prefix": {"type": "text", "analyzer": "prefix_search", "index_options": "freqs"}},
}

SEARCH_INDEX_MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "video_id": {"type": "keyword"},
        "title": _TITLE_WITH_PREFIX,
        "description": _DESCRIPTION_WITH_PREFIX,
        "published_at": {"type": "date"},
        "channel_id": {"type": "keyword"},
        "channel_title": {
            "type": "text",
            "analyzer": "english",
            "fields": {"keyword": {"type": "keyword", "ignore_above": 512}},
        },
        "thumbnails": {"type": "object", "enabled": False},
        "live_broadcast_content": {"type": "keyword"},
        "queries": {"type": "keyword"},
        # A plain object, not nested: the filters ask "at least one entry with source X" (one field of
        # an entry), which a flattened object answers exactly; nested would only matter for matching
        # two fields of the same entry, and costs a hidden document per entry.
        "found_by": {
            "type": "object",
            "properties": {
                "source": {"type": "keyword"},
                "query": {"type": "keyword"},
                "channel_id": {"type": "keyword"},
                "via": {"type": "keyword"},
            },
        },
        "duration_seconds": {"type": "integer"},
        "view_count": {"type": "long"},
        "like_count": {"type": "long"},
        "tags": {"type": "keyword", "ignore_above": 256},
        "fetched_at": {"type": "date"},
        "first_seen_at": {"type": "date"},
        "indexed_at": {"type": "date"},
        "rev": {"type": "long"},
        REMOVED_AT_FIELD: {"type": "date"},
    },
}

# Fields added to the mapping after an index of SEARCH_INDEX_VERSION may have been created, which no
# stored document needs until a write sets them: an indexer puts them into the live index's mapping at
# start (put_mapping only adds, and the same field again changes nothing), so no reindex is needed.
FIELDS_ADDED_IN_PLACE = (REMOVED_AT_FIELD,)

# Fields copied from the MongoDB document into Elasticsearch.
SEARCH_DOCUMENT_FIELDS = tuple(SEARCH_INDEX_MAPPINGS["properties"])


def versioned_index_name(alias: str, version: int = SEARCH_INDEX_VERSION) -> str:
    return f"{alias}-v{version}"


def index_version(alias: str, index: str) -> int | None:
    """The N of ``<alias>-vN``, or None when ``index`` is not one of the alias's versioned indexes."""
    match = re.fullmatch(re.escape(alias) + r"-v(\d+)", index)
    return int(match.group(1)) if match else None


async def ensure_mongo_indexes(db: AsyncDatabase[dict[str, Any]], *, text_index: bool = True) -> None:
    """Create the videos collection's indexes when missing.

    ``text_index=False`` leaves out ``MONGO_TEXT_INDEX``, whose build on a large collection takes a
    while (an indexer builds it in the background: ``ensure_text_index``).
    """
    await db[VIDEOS_COLLECTION].create_indexes(MONGO_VIDEO_INDEXES)
    if text_index:
        await ensure_text_index(db)


def is_current_text_index(index: Mapping[str, Any]) -> bool:
    """True when ``index`` (an entry of ``list_indexes``) is a text index of ``MONGO_TEXT_INDEX``'s fields."""
    return index.get("weights") == TEXT_INDEX_WEIGHTS and index.get("default_language") == TEXT_INDEX_LANGUAGE


async def outdated_text_indexes(db: AsyncDatabase[dict[str, Any]]) -> tuple[list[str], bool]:
    """(names of the videos' text indexes that are not ``MONGO_TEXT_INDEX``, whether a current one exists)."""
    outdated: list[str] = []
    current = False
    async for index in await db[VIDEOS_COLLECTION].list_indexes():
        # Every text index has the key {"_fts": "text", "_ftsx": 1}; its fields are in "weights".
        if index["key"].get("_fts") != "text":
            continue
        if is_current_text_index(index):
            current = True
        else:
            outdated.append(str(index["name"]))
    return outdated, current


async def ensure_text_index(db: AsyncDatabase[dict[str, Any]]) -> bool:
    """Drop an older text index (title and description, say) and build ``MONGO_TEXT_INDEX``.

    Returns True when it built the index (False: it was there). The build reads the whole collection
    (about a minute per million videos on a 2-core machine) while writes go on: MongoDB's index builds
    lock the collection only at their start and end. Meanwhile ``$text`` queries fail (no text index).
    Safe to run from several processes at once: a drop of an index already gone is ignored, and
    MongoDB makes a second build of the same index wait for the first.
    """
    videos = db[VIDEOS_COLLECTION]
    outdated, current = await outdated_text_indexes(db)
    for name in outdated:
        try:
            await videos.drop_index(name)
        except OperationFailure as exc:
            if exc.code != _INDEX_NOT_FOUND:
                raise
    if current:
        return False
    await videos.create_indexes([MONGO_TEXT_INDEX])
    return True


async def create_search_index(
    es: AsyncElasticsearch, index: str, *, alias: str | None = None, bulk_loading: bool = False, replicas: int = 0
) -> None:
    """Create ``index`` with the catalogue's settings and mapping (and, atomically, ``alias`` on it).

    ``bulk_loading`` turns refresh off and makes the translog asynchronous: right for a reindex that
    fills the index before anyone reads it; ``finish_bulk_loading`` restores the defaults.
    ``replicas``: its number_of_replicas (ELASTICSEARCH_REPLICAS), from the start even for a bulk
    load, so the index is never held by one node only once the alias points to it.
    """
    settings = dict(SEARCH_INDEX_SETTINGS) | {"number_of_replicas": replicas}
    if bulk_loading:
        settings |= _BULK_LOADING_SETTINGS
    await es.indices.create(
        index=index,
        settings=settings,
        mappings=SEARCH_INDEX_MAPPINGS,
        aliases={alias: {"is_write_index": True}} if alias else None,
    )


async def finish_bulk_loading(es: AsyncElasticsearch, index: str) -> None:
    """Back to the default refresh interval and a durable translog, then make everything searchable."""
    await es.indices.put_settings(index=index, settings={name: None for name in _BULK_LOADING_SETTINGS})
    await es.indices.refresh(index=index)


async def alias_indexes(es: AsyncElasticsearch, alias: str) -> list[str]:
    """The indexes ``alias`` points to (normally one), write index first; empty when it does not exist."""
    try:
        found = await es.indices.get_alias(name=alias)
    except NotFoundError:
        return []
    return sorted(found.body, key=lambda index: not found.body[index]["aliases"][alias].get("is_write_index", False))


async def add_fields_in_place(es: AsyncElasticsearch, index: str) -> None:
    """Give ``index`` the ``FIELDS_ADDED_IN_PLACE`` its mapping lacks (an index created before them)."""
    properties = SEARCH_INDEX_MAPPINGS["properties"]
    await es.indices.put_mapping(index=index, properties={name: properties[name] for name in FIELDS_ADDED_IN_PLACE})


async def set_replicas(es: AsyncElasticsearch, index: str, replicas: int) -> bool:
    """Give ``index`` ``replicas`` replicas when it has another number (a dynamic setting: Elasticsearch
    allocates or drops the copies in the background); True when it changed it."""
    found = await es.indices.get_settings(index=index, name="index.number_of_replicas")
    current = {int(body["settings"]["index"]["number_of_replicas"]) for body in found.body.values()}
    if current == {replicas}:
        return False
    await es.indices.put_settings(index=index, settings={"index.number_of_replicas": replicas})
    return True


async def ensure_search_index(es: AsyncElasticsearch, alias: str, replicas: int = 0) -> str:
    """Create the versioned index behind ``alias`` when the alias does not exist yet.

    Returns the name of the index the alias writes to, whose mapping then has ``FIELDS_ADDED_IN_PLACE``
    and which has ``replicas`` replicas (an existing index is given them).
    Safe when several indexers start together: the index and its alias are created in one request, and
    the loser of that race (Elasticsearch answers ``resource_already_exists_exception``) simply uses the
    winner's index.
    """
    current = await alias_indexes(es, alias)
    if current:
        await add_fields_in_place(es, current[0])
        await set_replicas(es, current[0], replicas)
        return current[0]
    index = versioned_index_name(alias)
    try:
        await create_search_index(es, index, alias=alias, replicas=replicas)
    except BadRequestError as exc:
        if exc.error != "resource_already_exists_exception":
            raise
        # Created by a concurrent indexer (with the alias), or left without its alias by an
        # interrupted reindex: attaching the alias again is a no-op in the first case.
        await es.indices.put_alias(index=index, name=alias, is_write_index=True)
    return index


# The percolator index: one stored query per configured search query, to tell which queries a video
# found through a channel matches (services/indexer/percolator.py keeps it). Behind its own alias,
# versioned by a fingerprint of what decides a match: the catalogue's analysis and the mapping of
# the text fields the stored queries read, both taken from the catalogue's live index (so a changed
# analyser or mapping gives a new percolator index) plus the query builder's output.
PERCOLATOR_SUFFIX = "-queries"
PERCOLATOR_QUERY_FIELD = "query"
PERCOLATOR_TEXT_FIELD = "query_text"
# What a percolated document's text is made of: the fields the API's q searches (services/common/video_query.py).
PERCOLATED_FIELDS = ("title", "channel_title", "description")


def percolator_alias(alias: str) -> str:
    return alias + PERCOLATOR_SUFFIX


def whole_word_mappings(catalogue_index: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """The catalogue's mappings of the fields ``names`` without their sub-fields (prefixes, keywords).

    A percolator index holds whole-word queries, which read none of the sub-fields, and every
    percolate analyses each video into every field mapped: the prefixes' n-grams cost about a
    quarter of a percolate's time for nothing.
    """
    properties = catalogue_index["mappings"]["properties"]
    return {name: {key: value for key, value in properties[name].items() if key != "fields"} for name in names}


def percolator_index_body(
    catalogue_index: Mapping[str, Any], text_mappings: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(settings, mappings) of a percolator index for the catalogue index described by ``catalogue_index``
    (one entry of ``indices.get``): its analysis and ``text_mappings``, how it holds a video's text
    (``services.common.percolated_text``)."""
    settings: dict[str, Any] = {"number_of_shards": 1, "number_of_replicas": 0}
    analysis = catalogue_index["settings"]["index"].get("analysis")
    if analysis:
        settings["analysis"] = analysis
    mappings = {
        "dynamic": "strict",
        "properties": {
            **text_mappings,
            PERCOLATOR_QUERY_FIELD: {"type": "percolator"},
            PERCOLATOR_TEXT_FIELD: {"type": "keyword"},
        },
    }
    return settings, mappings
