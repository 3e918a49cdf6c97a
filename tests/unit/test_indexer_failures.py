"""Which store failures are outages (hold and retry) and which are a document's fault (count an attempt).

Elasticsearch answers come from a stand-in HTTP server, so the real client meets statuses a healthy
local node will not produce on demand (429, 503, timeouts); MongoDB's come as the driver reports them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from elasticsearch import AsyncElasticsearch
from pymongo.errors import BulkWriteError

from services.common.errors import StoreUnavailableError
from services.indexer.__main__ import parse_args
from services.indexer.es_bulk import MAX_BULK_BYTES, bulk_bodies, bulk_index
from services.indexer.mongo_errors import sort_write_errors

Answer = Callable[[list[dict[str, Any]]], tuple[int, dict[str, Any]]]
DOCS = [{"video_id": f"video{n:06d}", "rev": 1, "title": "t"} for n in range(3)]


@pytest.fixture
async def fake_es() -> AsyncIterator[tuple[AsyncElasticsearch, list[Answer]]]:
    """An AsyncElasticsearch talking to a server whose next bulk answer the test decides."""
    answers: list[Answer] = []

    async def bulk(request: web.Request) -> web.Response:
        lines = [json.loads(line) for line in (await request.read()).splitlines() if line]
        actions = lines[::2]
        answer = answers.pop(0)
        if answer is _slow:
            await asyncio.sleep(2)
        status, body = answer(actions)
        return web.json_response(body, status=status, headers={"X-Elastic-Product": "Elasticsearch"})

    app = web.Application()
    app.router.add_route("*", "/_bulk", bulk)
    async with TestServer(app) as server:
        client = AsyncElasticsearch(f"http://127.0.0.1:{server.port}", request_timeout=0.5, max_retries=0)
        yield client, answers
        await client.close()


def _items(status: int, error: dict[str, Any] | None = None) -> Answer:
    def answer(actions: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        items = [{"index": {"_id": a["index"]["_id"], "status": 201}} for a in actions]
        items[1] = {
            "index": {"_id": actions[1]["index"]["_id"], "status": status} | ({"error": error} if error else {})
        }
        return 200, {"errors": status >= 300, "items": items}

    return answer


def _request(status: int, error_type: str) -> Answer:
    def answer(actions: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        return status, {"error": {"type": error_type, "reason": "whole request refused"}, "status": status}

    return answer


def _slow(actions: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    return 200, {"errors": False, "items": []}


@pytest.mark.parametrize(
    "answer",
    [
        _items(429, {"type": "es_rejected_execution_exception", "reason": "queue full"}),
        _items(503, {"type": "unavailable_shards_exception", "reason": "primary not active"}),
        _items(403, {"type": "cluster_block_exception", "reason": "index read-only / allow delete"}),
        _items(404, {"type": "index_not_found_exception", "reason": "no such index and require_alias"}),
        _items(400, {"type": "index_closed_exception", "reason": "closed"}),
        _request(429, "circuit_breaking_exception"),
        _request(503, "master_not_discovered_exception"),
        _request(400, "illegal_argument_exception"),  # the whole request: never one document's fault
        _slow,  # a timeout
    ],
    ids=[
        "item 429",
        "item 503",
        "read-only block",
        "alias missing",
        "closed index",
        "request 429",
        "request 503",
        "request 400",
        "timeout",
    ],
)
async def test_overload_unavailability_and_timeouts_are_outages(
    fake_es: tuple[AsyncElasticsearch, list[Answer]], answer: Answer
) -> None:
    es, answers = fake_es
    answers.append(answer)
    with pytest.raises(StoreUnavailableError) as raised:
        await bulk_index(es, "videos", DOCS)
    assert raised.value.store == "elasticsearch"


async def test_a_mapping_error_rejects_that_document_only(fake_es: tuple[AsyncElasticsearch, list[Answer]]) -> None:
    es, answers = fake_es
    error = {
        "type": "document_parsing_exception",
        "reason": "[1:10] failed to parse field [duration_seconds]",
        "caused_by": {"type": "input_coercion_exception", "reason": "Numeric value (3600) out of range of Java byte"},
    }
    answers.append(_items(400, error))
    rejected = await bulk_index(es, "videos", DOCS)
    assert list(rejected) == ["video000001"]
    assert rejected["video000001"].startswith("elasticsearch 400: document_parsing_exception: [1:10] failed")
    assert "caused by input_coercion_exception" in rejected["video000001"]


async def test_a_newer_revision_already_indexed_counts_as_stored(
    fake_es: tuple[AsyncElasticsearch, list[Answer]],
) -> None:
    es, answers = fake_es
    answers.append(_items(409, {"type": "version_conflict_engine_exception", "reason": "current version is higher"}))
    assert await bulk_index(es, "videos", DOCS) == {}


def test_bulk_bodies_stay_under_the_size_limit_and_carry_every_document_with_its_version() -> None:
    docs = [
        {
            "video_id": f"video{n:06d}",
            "rev": n + 1,
            "title": "x" * 3000,
            "published_at": datetime(2026, 1, 1, tzinfo=UTC),
        }
        for n in range(1000)
    ]
    bodies = list(bulk_bodies("videos", docs, max_bytes=MAX_BULK_BYTES))
    assert len(bodies) > 1
    assert all(len(body) <= MAX_BULK_BYTES for body in bodies)
    lines = [json.loads(line) for body in bodies for line in body.splitlines()]
    actions, sources = lines[::2], lines[1::2]
    assert [a["index"]["_id"] for a in actions] == [d["video_id"] for d in docs]
    assert [a["index"]["version"] for a in actions] == list(range(1, 1001))
    assert {a["index"]["version_type"] for a in actions} == {"external_gte"}
    assert sources[0]["published_at"] == "2026-01-01T00:00:00Z"


def _bulk_error(
    write_errors: list[dict[str, Any]], concern_errors: list[dict[str, Any]] | None = None
) -> BulkWriteError:
    return BulkWriteError({"writeErrors": write_errors, "writeConcernErrors": concern_errors or []})


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (10107, "NotWritablePrimary"),
        (11602, "InterruptedDueToReplStateChange"),
        (91, "ShutdownInProgress"),
        (112, "WriteConflict"),
    ],
)
def test_mongodb_not_primary_shutting_down_or_conflicting_is_an_outage(code: int, name: str) -> None:
    with pytest.raises(StoreUnavailableError):
        sort_write_errors(_bulk_error([{"index": 0, "code": code, "errmsg": name}]), [7], {})


def test_a_write_concern_failure_is_an_outage() -> None:
    error = _bulk_error([], [{"code": 64, "errmsg": "waiting for replication timed out"}])
    with pytest.raises(StoreUnavailableError):
        sort_write_errors(error, [0], {})


def test_duplicates_are_retried_as_merges_and_validation_failures_rejected() -> None:
    rejected: dict[int, str] = {}
    error = _bulk_error(
        [
            {"index": 0, "code": 11000, "errmsg": "E11000 duplicate key"},
            {"index": 2, "code": 121, "errmsg": "Document failed validation"},
        ]
    )
    assert sort_write_errors(error, [10, 11, 12], rejected) == [10]
    assert rejected == {12: "mongodb 121: Document failed validation"}


def test_the_command_line() -> None:
    assert parse_args([]).command is None  # serve
    assert parse_args(["reindex"]).command == "reindex"
    replay = parse_args(["replay-dead", "--dry-run", "--limit", "3"])
    assert (replay.command, replay.dry_run, replay.limit) == ("replay-dead", True, 3)
    with pytest.raises(SystemExit):
        parse_args(["replay-dead", "--limit", "0"])
