"""Where videos are stored: MongoDB (system of record) and the Elasticsearch alias (read model).

Both the indexer (writer) and the API (reader) use these names, indexes and mappings.
"""

from __future__ import annotations

from typing import Any

from elasticsearch import AsyncElasticsearch
from pymongo import ASCENDING, DESCENDING, TEXT, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

VIDEOS_COLLECTION = "videos"
SEARCH_INDEX_VERSION = 1

MONGO_VIDEO_INDEXES = [
    IndexModel([("video_id", ASCENDING)], unique=True, name="video_id_unique"),
    IndexModel([("published_at", DESCENDING), ("video_id", DESCENDING)], name="published_at_video_id"),
    IndexModel([("channel_id", ASCENDING), ("published_at", DESCENDING)], name="channel_published_at"),
    IndexModel([("title", TEXT), ("description", TEXT)], name="title_description_text", default_language="english"),
]

SEARCH_INDEX_SETTINGS: dict[str, Any] = {
    "number_of_shards": 1,
    # One node: a replica could never be allocated and would keep the cluster yellow.
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

_TEXT_WITH_PREFIX: dict[str, Any] = {
    "type": "text",
    "analyzer": "english",
    "fields": {"prefix": {"type": "text", "analyzer": "prefix_index", "search_analyzer": "prefix_search"}},
}

SEARCH_INDEX_MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "video_id": {"type": "keyword"},
        "title": _TEXT_WITH_PREFIX,
        "description": _TEXT_WITH_PREFIX,
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
        "duration_seconds": {"type": "integer"},
        "view_count": {"type": "long"},
        "like_count": {"type": "long"},
        "tags": {"type": "keyword", "ignore_above": 256},
        "fetched_at": {"type": "date"},
        "first_seen_at": {"type": "date"},
        "indexed_at": {"type": "date"},
        "rev": {"type": "long"},
    },
}

# Fields copied from the MongoDB document into Elasticsearch.
SEARCH_DOCUMENT_FIELDS = tuple(SEARCH_INDEX_MAPPINGS["properties"])


def versioned_index_name(alias: str, version: int = SEARCH_INDEX_VERSION) -> str:
    return f"{alias}-v{version}"


async def ensure_mongo_indexes(db: AsyncDatabase[dict[str, Any]]) -> None:
    await db[VIDEOS_COLLECTION].create_indexes(MONGO_VIDEO_INDEXES)


async def ensure_search_index(es: AsyncElasticsearch, alias: str) -> str:
    """Create the versioned index behind ``alias`` when the alias does not exist yet.

    Returns the name of the index the alias points to.
    """
    if await es.indices.exists_alias(name=alias):
        current = await es.indices.get_alias(name=alias)
        return next(iter(current.body))
    index = versioned_index_name(alias)
    if not await es.indices.exists(index=index):
        await es.indices.create(
            index=index,
            settings=SEARCH_INDEX_SETTINGS,
            mappings=SEARCH_INDEX_MAPPINGS,
            aliases={alias: {"is_write_index": True}},
        )
    else:
        await es.indices.put_alias(index=index, name=alias)
    return index
