"""The Elasticsearch half of a batch: a video's search document, NDJSON bulk bodies, and sending them.

Each document goes with ``_id`` = video id and ``version`` = its MongoDB ``rev`` as an external
version (``external_gte``), so a slower concurrent writer can never replace a newer document with an
older one. ``es_errors`` decides what a failure means.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, cast

import pydantic_core
from elasticsearch import ApiError, AsyncElasticsearch, TransportError

from services.common.catalogue import SEARCH_DOCUMENT_FIELDS
from services.indexer.es_errors import BULK_RESPONSE_FILTER, sort_bulk_response, unavailable

# aiohttp warns (ResourceWarning) about request bodies over 1 MiB; a bulk request is split to stay under.
MAX_BULK_BYTES = 2**20
# Characters of a failed request's error kept in the outage's detail.
_ERROR_CHARS = 300


def search_source(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The Elasticsearch document for a MongoDB video document (read with MONGO_SEARCH_PROJECTION)."""
    source = {name: doc.get(name) for name in SEARCH_DOCUMENT_FIELDS}
    source["indexed_at"] = doc.get("updated_at")
    return source


def bulk_bodies(target: str, docs: Iterable[Mapping[str, Any]], max_bytes: int = MAX_BULK_BYTES) -> Iterator[bytes]:
    """NDJSON bulk bodies indexing ``docs`` into ``target`` with ``rev`` as external version.

    Serialised by pydantic-core (Rust): several times faster than the client's json module, which
    matters at thousands of documents a second. Each body stays under ``max_bytes`` unless a single
    document is larger.
    """
    lines: list[bytes] = []
    size = 0
    for doc in docs:
        action = {
            "index": {
                "_index": target,
                "_id": doc["video_id"],
                "version": int(doc["rev"]),
                "version_type": "external_gte",
            }
        }
        pair = pydantic_core.to_json(action) + b"\n" + pydantic_core.to_json(search_source(doc)) + b"\n"
        if lines and size + len(pair) > max_bytes:
            yield b"".join(lines)
            lines, size = [], 0
        lines.append(pair)
        size += len(pair)
    if lines:
        yield b"".join(lines)


async def bulk_index(
    es: AsyncElasticsearch, target: str, docs: Sequence[Mapping[str, Any]], *, require_alias: bool = False
) -> dict[str, str]:
    """Index ``docs`` (in as few bulk requests as the size limit allows); returns rejections by video id.

    A 409 (a newer revision is already there) counts as stored. Raises StoreUnavailableError when
    a request fails as a whole or any item failed because of the cluster's state.
    ``require_alias`` stops Elasticsearch from auto-creating a concrete index named like the alias
    (with a guessed mapping) when the alias is missing.
    """
    rejected: dict[str, str] = {}
    for body in bulk_bodies(target, docs):
        rejected |= await _send_bulk(es, body, require_alias=require_alias)
    return rejected


async def _send_bulk(es: AsyncElasticsearch, body: bytes, *, require_alias: bool) -> dict[str, str]:
    try:
        response = await es.bulk(
            operations=cast(Any, body), require_alias=require_alias or None, filter_path=BULK_RESPONSE_FILTER
        )
    except (TransportError, ApiError) as exc:
        raise unavailable(exc, _ERROR_CHARS) from exc
    return sort_bulk_response(response.body)
