"""Error bodies and statuses exactly as YouTube sends them, byte for byte where an answer was captured."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from services.youtube_emulator.testing import emulator_client, quiet_settings

Client = TestClient[web.Request, web.Application]

NOW = "2026-11-24T12:00:00Z"

# Verbatim as YouTube sends it.
BODY_A = (
    '{"error":{"code":403,"message":"The request cannot be completed because you have exceeded your '
    '\\u003ca href=\\"/youtube/v3/getting-started#quota\\"\\u003equota\\u003c/a\\u003e.","errors":[{"message":'
    '"The request cannot be completed because you have exceeded your \\u003ca href=\\"/youtube/v3/getting-started'
    '#quota\\"\\u003equota\\u003c/a\\u003e.","domain":"youtube.quota","reason":"quotaExceeded"}]}}'
)
BODY_B_TEMPLATE = (
    '{"error":{"code":429,"message":"Quota exceeded for quota metric \'Search Queries\' and limit \'Search '
    "Queries per day' of service 'youtube.googleapis.com' for consumer 'project_number:NUMBER'.\",\"errors\":"
    "[{\"message\":\"Quota exceeded for quota metric 'Search Queries' and limit 'Search Queries per day' of "
    'service \'youtube.googleapis.com\' for consumer \'project_number:NUMBER\'.","domain":"global","reason":'
    '"rateLimitExceeded"}],"status":"RESOURCE_EXHAUSTED"}}'
)
BODY_D = (
    '{"error":{"code":429,"message":"Rate Limit Exceeded","errors":[{"message":"Rate Limit Exceeded",'
    '"domain":"usageLimits","reason":"rateLimitExceeded"}]}}'
)
BODY_E = (
    '{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","errors":[{"message":'
    '"API key not valid. Please pass a valid API key.","domain":"global","reason":"badRequest"}],"status":'
    '"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":'
    '"API_KEY_INVALID","domain":"googleapis.com","metadata":{"service":"youtube.googleapis.com"}},{"@type":'
    '"type.googleapis.com/google.rpc.LocalizedMessage","locale":"en-US","message":"API key not valid. Please '
    'pass a valid API key."}]}}'
)
BODY_H = (
    '{"error":{"code":400,"message":"Invalid value at \'published_before\' '
    "(type.googleapis.com/google.protobuf.Timestamp), Field 'published_before', Illegal timestamp format; "
    'timestamps must end with \'Z\' or have a valid timezone offset.","errors":[{"message":"Invalid value '
    "at 'published_before' (type.googleapis.com/google.protobuf.Timestamp), Field 'published_before', Illegal "
    'timestamp format; timestamps must end with \'Z\' or have a valid timezone offset.","reason":"invalid"}],'
    '"status":"INVALID_ARGUMENT"}}'
)
BODY_K = (
    '{"error":{"code":400,"message":"The request specifies an invalid page token.","errors":[{"message":'
    '"The request specifies an invalid page token.","domain":"youtube.parameter","reason":"invalidPageToken",'
    '"location":"pageToken","locationType":"parameter"}]}}'
)
BODY_M = (
    '{"error":{"errors":[{"domain":"global","reason":"backendError","message":"Backend Error"}],"code":503,'
    '"message":"Backend Error"}}'
)


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    settings = quiet_settings(emulator_invalid_keys=["revoked"], emulator_key_budgets={"tiny": 1})
    async with emulator_client(settings, now=NOW) as c:
        yield c


async def call(client: Client, path: str = "/youtube/v3/search", **params: str) -> tuple[int, str, Any]:
    """(status, compact body text as Google sends it with prettyPrint=false, parsed body)."""
    query = {"part": "snippet", "q": "cricket", "key": "k", "prettyPrint": "false", **params}
    query = {k: v for k, v in query.items() if v is not None}
    response = await client.get(path, params=query)
    assert response.headers["Content-Type"] == "application/json; charset=UTF-8"
    text = await response.text()
    return response.status, text, json.loads(text)


async def test_quota_exceeded_units_model_is_body_a() -> None:
    settings = quiet_settings(emulator_quota_model="units", emulator_units_per_day=100)
    async with emulator_client(settings, now=NOW) as client:
        assert (await call(client))[0] == 200
        status, text, _ = await call(client)
        assert status == 403
        assert text == BODY_A


async def test_search_bucket_exhausted_is_body_b(client: Client) -> None:
    assert (await call(client, key="tiny"))[0] == 200
    status, text, body = await call(client, key="tiny")
    assert status == 429
    spend = await (await client.get("/admin/spend")).json()
    number = spend["projects"]["tiny"]["project_number"]
    assert len(number) == 12
    assert text == BODY_B_TEMPLATE.replace("NUMBER", number)
    assert "per day" in body["error"]["message"]


async def test_invalid_key_is_body_e(client: Client) -> None:
    status, text, _ = await call(client, key="revoked")
    assert status == 400
    assert text == BODY_E


async def test_missing_key_is_403_permission_denied(client: Client) -> None:
    status, _, body = await call(client, key="")
    assert status == 403
    assert body == {
        "error": {
            "code": 403,
            "message": "Method doesn't allow unregistered callers (callers without established identity). "
            "Please use API Key or other form of API consumer identity to call this API.",
            "errors": [
                {
                    "message": "Method doesn't allow unregistered callers (callers without established identity). "
                    "Please use API Key or other form of API consumer identity to call this API.",
                    "domain": "global",
                    "reason": "forbidden",
                }
            ],
            "status": "PERMISSION_DENIED",
        }
    }


async def test_key_in_header_is_accepted(client: Client) -> None:
    response = await client.get(
        "/youtube/v3/search", params={"part": "snippet", "q": "cricket"}, headers={"X-Goog-Api-Key": "k"}
    )
    assert response.status == 200


@pytest.mark.parametrize(
    "value", ["2024-01-01T00:00:00", "garbage", "2024-13-01T00:00:00Z", "2024-01-01", "2024-01-01T00:00:00.1234567890Z"]
)
async def test_malformed_timestamp_is_body_h(client: Client, value: str) -> None:
    status, text, _ = await call(client, publishedBefore=value)
    assert status == 400
    assert text == BODY_H
    status, _, body = await call(client, publishedAfter=value)
    assert status == 400
    assert "'published_after'" in body["error"]["message"]


@pytest.mark.parametrize("value", ["51", "100", "-1"])
async def test_max_results_out_of_range(client: Client, value: str) -> None:
    status, _, body = await call(client, maxResults=value)
    assert status == 400
    message = f"Invalid value '{value}'. Values must be within the range: [0, 50]"
    assert body == {
        "error": {
            "code": 400,
            "message": message,
            "errors": [
                {
                    "message": message,
                    "domain": "youtube.parameter",
                    "reason": "invalidParameter",
                    "location": "maxResults",
                    "locationType": "parameter",
                }
            ],
        }
    }


async def test_max_results_not_a_number(client: Client) -> None:
    status, _, body = await call(client, maxResults="ten")
    assert status == 400
    assert body["error"]["status"] == "INVALID_ARGUMENT"
    assert body["error"]["errors"][0]["reason"] == "invalid"


async def test_max_results_bounds_are_accepted(client: Client) -> None:
    status, _, body = await call(client, maxResults="0")
    assert status == 200
    assert body["items"] == []
    assert body["pageInfo"]["totalResults"] == 360
    assert "nextPageToken" not in body
    assert (await call(client, maxResults="50"))[0] == 200


@pytest.mark.parametrize("token", ["garbage!", "CAEQAA==x", "AAAA", "CAEQAg", "CAEYAA", "CPQDEA", "Zm9vYmFy", "C"])
async def test_bad_page_token_is_body_k(client: Client, token: str) -> None:
    status, text, _ = await call(client, pageToken=token)
    assert status == 400
    assert text == BODY_K


async def test_missing_part(client: Client) -> None:
    status, _, body = await call(client, part="")
    assert status == 400
    error = body["error"]["errors"][0]
    assert error["reason"] == "missingRequiredParameter"
    assert error["location"] == "part"


async def test_unknown_part(client: Client) -> None:
    status, _, body = await call(client, part="snippet,statistics")
    assert status == 400
    assert body["error"]["message"] == "statistics"
    assert body["error"]["errors"][0]["reason"] == "unknownPart"


async def test_bad_order(client: Client) -> None:
    status, _, body = await call(client, order="views")
    assert status == 400
    assert body["error"]["message"].startswith("Invalid value 'views'. Values must be one of: ")
    assert body["error"]["errors"][0]["location"] == "order"


async def test_event_type_needs_type_video(client: Client) -> None:
    status, text, body = await call(client, eventType="live")
    assert status == 400
    assert body["error"]["message"].startswith(
        "The request contains an invalid combination of search filters and/or restrictions. Note that you must "
        "set the <code>type</code> parameter to <code>video</code> if you set"
    )
    assert "\\u003ccode\\u003etype\\u003c/code\\u003e" in text
    assert (await call(client, eventType="live", type="video"))[0] == 200
    assert (await call(client, videoDuration="short", type="video,channel"))[0] == 400


async def test_type_without_video_is_empty(client: Client) -> None:
    status, _, body = await call(client, type="channel")
    assert status == 200
    assert body["items"] == []


async def test_server_error_is_body_m() -> None:
    settings = quiet_settings(emulator_fault_5xx=1.0)
    async with emulator_client(settings, now=NOW) as client:
        seen: dict[int, str] = {}
        for _ in range(20):
            status, text, _ = await call(client)
            seen[status] = text
        assert set(seen) == {500, 503}
        assert seen[503] == BODY_M
        assert seen[500] == BODY_M.replace("503", "500")


async def test_rate_limit_fault_is_body_d() -> None:
    settings = quiet_settings(emulator_fault_rate_limit=1.0)
    async with emulator_client(settings, now=NOW) as client:
        seen: dict[tuple[int, str], str] = {}
        for _ in range(30):
            status, text, body = await call(client)
            seen[(status, body["error"]["errors"][0]["reason"])] = text
            assert "per day" not in body["error"]["message"]
        assert set(seen) == {(429, "rateLimitExceeded"), (403, "rateLimitExceeded"), (403, "userRateLimitExceeded")}
        assert seen[(429, "rateLimitExceeded")] == BODY_D
        assert json.loads(seen[(403, "userRateLimitExceeded")])["error"]["message"] == "User Rate Limit Exceeded"


async def test_errors_are_pretty_printed_by_default(client: Client) -> None:
    response = await client.get("/youtube/v3/search", params={"part": "snippet", "key": "k", "pageToken": "x!"})
    text = await response.text()
    assert text.startswith('{\n  "error": {\n    "code": 400,')
    assert json.loads(text) == json.loads(BODY_K)
