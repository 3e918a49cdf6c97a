"""Every error the API answers: status, JSON code and the parameter at fault; request ids everywhere."""

from __future__ import annotations

import base64
import json
import logging
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from elasticsearch import AsyncElasticsearch
from pymongo.asynchronous.database import AsyncDatabase

from services.api.app import create_app
from services.api.cursors import Cursor, CursorCodec, query_fingerprint
from services.api.es_store import ElasticsearchStore
from services.api.models import ErrorResponse
from services.common.settings import StackSettings
from tests.integration.api_support import Client, api_settings, get_page, prepare_stores, spread_events, write


@pytest.fixture
async def seeded(mongo_db: AsyncDatabase[dict[str, Any]], es: AsyncElasticsearch, es_alias: str) -> list[str]:
    events = spread_events(random.Random(3), 30)
    await write(await prepare_stores(mongo_db, es, es_alias), es, es_alias, events)
    return [e.video_id for e in events]


async def _client(stack: StackSettings, database: str, alias: str) -> AsyncIterator[TestClient[Any, Any]]:
    settings = api_settings(
        mongodb_url=stack.mongodb_url,
        mongodb_database=database,
        elasticsearch_url=stack.elasticsearch_url,
        elasticsearch_index=alias,
    )
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client


@pytest.fixture
async def api(
    stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es_alias: str
) -> AsyncIterator[TestClient[Any, Any]]:
    async for client in _client(stack, mongo_db.name, es_alias):
        yield client


async def _error(response: Any, status: int, code: str, parameter: str | None = None) -> dict[str, Any]:
    text = await response.text()
    assert response.status == status, text
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers["X-Request-Id"]
    error = ErrorResponse.model_validate_json(text).error
    assert error.code == code, text
    assert error.parameter == parameter, text
    return dict(json.loads(text)["error"])


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("limit=1.5", "limit"),
        ("limit=%2B5", "limit"),
        ("limit=", "limit"),
        ("limit=5&limit=6", "limit"),
        ("colour=red", "colour"),
        ("sort=views", "sort"),
        ("sort=relevance", "sort"),
        ("published_after=2026-02-30", "published_after"),
        ("published_after=2026-11-24T25:00:00Z", "published_after"),
        ("published_after=2026-11-24T12:00:00", "published_after"),
        ("published_before=yesterday", "published_before"),
        ("published_after=2026-11-25&published_before=2026-11-24", "published_after"),
        ("q=" + "a" * 201, "q"),
        ("q=", "q"),
        ("q=%20%20", "q"),
        ("channel_id=bad%20id", "channel_id"),
        ("query=", "query"),
        ("cursor=", "cursor"),
    ],
)
async def test_invalid_list_parameters_name_the_parameter(api: Client, query: str, parameter: str) -> None:
    error = await _error(await api.get(f"/api/v1/videos?{query}"), 400, "invalid_parameter", parameter)
    assert parameter in error["message"]


async def test_invalid_utf8_is_refused(api: Client) -> None:
    await _error(await api.get("/api/v1/videos?q=%FF%FE"), 400, "invalid_parameter")


async def test_over_long_q_is_refused_but_200_characters_are_fine(api: Client, seeded: list[str]) -> None:
    assert (await api.get("/api/v1/videos", params={"q": "é" * 200})).status == 200


@pytest.mark.parametrize(
    ("path", "status", "code", "parameter"),
    [
        ("/api/v1/histogram?interval=week", 400, "invalid_parameter", "interval"),
        (
            "/api/v1/histogram?interval=hour&published_after=2000-01-01&published_before=2026-01-01",
            400,
            "invalid_parameter",
            "interval",
        ),
        ("/api/v1/channels?limit=1000", 400, "invalid_parameter", "limit"),
        ("/api/v1/channels?channel=x", 400, "invalid_parameter", "channel"),
        ("/api/v1/status?verbose=1", 400, "invalid_parameter", "verbose"),
        ("/api/v1/queries?x=1", 400, "invalid_parameter", "x"),
        ("/api/v1/videos/not-an-id", 400, "invalid_parameter", "video_id"),
        ("/api/v1/videos/AAAAAAAAAAA", 404, "not_found", None),
        ("/api/v1/nothing", 404, "not_found", None),
    ],
)
async def test_other_endpoints_answer_precise_errors(
    api: Client, seeded: list[str], path: str, status: int, code: str, parameter: str | None
) -> None:
    await _error(await api.get(path), status, code, parameter)


async def test_histogram_refuses_too_many_buckets_found_from_the_data(api: Client, seeded: list[str]) -> None:
    await _error(
        await api.get("/api/v1/histogram", params={"interval": "hour", "published_after": "1900-01-01"}),
        400,
        "invalid_parameter",
        "interval",
    )


async def test_wrong_method_is_405_with_allow(api: Client) -> None:
    response = await api.post("/api/v1/videos")
    await _error(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


def _tamper(cursor: str) -> str:
    payload, mac = cursor.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["s"] += 3_600_000  # move the snapshot an hour later
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    return f"{forged}.{mac}"


async def test_tampered_and_foreign_cursors_are_invalid_cursor(api: Client, seeded: list[str]) -> None:
    body, _ = await get_page(api, {"limit": "5", "q": "cricket"})
    cursor = body["next_cursor"]
    assert (await api.get("/api/v1/videos", params={"limit": "5", "q": "cricket", "cursor": cursor})).status == 200
    foreign_secret = CursorCodec(b"another-secret-" * 4)
    fingerprint = query_fingerprint({"filters": {}, "sort": "-published_at"})
    bad = {
        "tampered": _tamper(cursor),
        "flipped": cursor[:-3] + ("A" if cursor[-3] != "A" else "B") + cursor[-2:],
        "garbage": "not a cursor",
        "other secret": foreign_secret.encode(Cursor(fingerprint, 0, (1, "x"))),
    }
    for name, text in bad.items():
        response = await api.get("/api/v1/videos", params={"limit": "5", "q": "cricket", "cursor": text})
        error = await _error(response, 400, "invalid_cursor", "cursor")
        assert "issued" in error["message"], name
    for other in ({"q": "highlights"}, {"q": "cricket", "sort": "published_at"}, {"q": "cricket", "query": "cricket"}):
        response = await api.get("/api/v1/videos", params={"limit": "5", "cursor": cursor} | other)
        error = await _error(response, 400, "invalid_cursor", "cursor")
        assert "different query" in error["message"]
    # A date cursor is no relevance cursor even for the same q.
    response = await api.get("/api/v1/videos", params={"q": "cricket", "sort": "relevance", "cursor": cursor})
    await _error(response, 400, "invalid_cursor", "cursor")


async def test_an_expired_point_in_time_is_410_cursor_expired(
    api: Client, seeded: list[str], es: AsyncElasticsearch
) -> None:
    body, _ = await get_page(api, {"limit": "5", "q": "cricket", "sort": "relevance"})
    cursor = body["next_cursor"]
    payload = cursor.split(".")[0]
    pit_id = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["p"]
    await es.close_point_in_time(id=pit_id)  # what keep-alive expiry does
    response = await api.get(
        "/api/v1/videos", params={"limit": "5", "q": "cricket", "sort": "relevance", "cursor": cursor}
    )
    error = await _error(response, 410, "cursor_expired")
    assert "start it again" in error["message"]


async def test_relevance_without_elasticsearch_is_503_unavailable(
    stack: StackSettings, mongo_db: AsyncDatabase[dict[str, Any]], es_alias: str, seeded: list[str]
) -> None:
    async for client in _client(stack, mongo_db.name, f"{es_alias}-absent"):
        response = await client.get("/api/v1/videos", params={"q": "cricket", "sort": "relevance"})
        await _error(response, 503, "unavailable")
        # The date-ordered list still works, from MongoDB.
        body, served_by = await get_page(client, {"q": "cricket"})
        assert served_by == "mongodb"
        assert len(body["items"]) == 20


async def test_an_unexpected_exception_is_500_with_the_request_id_and_no_traceback(
    api: Client, seeded: list[str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def explode(self: ElasticsearchStore, request: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(ElasticsearchStore, "page", explode)
    with caplog.at_level(logging.ERROR, logger="services.api.middleware"):
        response = await api.get("/api/v1/videos", headers={"X-Request-Id": "req-12345"})
    text = await response.text()
    error = await _error(response, 500, "internal")
    assert response.headers["X-Request-Id"] == "req-12345"
    assert error["request_id"] == "req-12345"
    assert "secret internals" not in text
    assert "Traceback" not in text
    logged = [r for r in caplog.records if getattr(r, "request_id", None) == "req-12345"]
    assert logged
    assert logged[0].exc_info is not None


async def test_every_response_carries_a_request_id(api: Client, seeded: list[str]) -> None:
    ids = set()
    for path in ("/api/v1/videos", "/healthz", "/metrics", "/api/openapi.json", "/nope", "/api/v1/videos?limit=0"):
        response = await api.get(path)
        ids.add(response.headers["X-Request-Id"])
    assert len(ids) == 6
    # An unusable incoming id is replaced, not echoed.
    response = await api.get("/healthz", headers={"X-Request-Id": "bad id\twith spaces"})
    assert response.headers["X-Request-Id"] != "bad id\twith spaces"
