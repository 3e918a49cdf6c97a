"""Every error of the reference (§5) maps to the fetcher's action; the status alone never decides."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.fetcher.youtube_client import ErrorKind, classify
from services.youtube_emulator import errors as emulator_errors

# Bodies exactly as the reference captures them (ids as in its §5 table).
A = (
    '{"error":{"code":403,"message":"The request cannot be completed because you have exceeded your '
    '\\u003ca href=\\"/youtube/v3/getting-started#quota\\"\\u003equota\\u003c/a\\u003e.","errors":[{"message":'
    '"The request cannot be completed because you have exceeded your \\u003ca href=\\"/youtube/v3/getting-started'
    '#quota\\"\\u003equota\\u003c/a\\u003e.","domain":"youtube.quota","reason":"quotaExceeded"}]}}'
)
B = (
    '{"error":{"code":429,"message":"Quota exceeded for quota metric \'Search Queries\' and limit \'Search Queries '
    "per day' of service 'youtube.googleapis.com' for consumer 'project_number:123456789012'.\",\"errors\":[{"
    "\"message\":\"Quota exceeded for quota metric 'Search Queries' and limit 'Search Queries per day' of service "
    '\'youtube.googleapis.com\' for consumer \'project_number:123456789012\'.","domain":"global","reason":'
    '"rateLimitExceeded"}],"status":"RESOURCE_EXHAUSTED"}}'
)
C = (
    '{"error":{"errors":[{"domain":"usageLimits","reason":"dailyLimitExceeded","message":"Daily Limit Exceeded. '
    'The quota will be reset at midnight Pacific Time (PT)."}],"code":403,"message":"Daily Limit Exceeded. The '
    'quota will be reset at midnight Pacific Time (PT)."}}'
)
D = (
    '{"error":{"code":429,"message":"Rate Limit Exceeded","errors":[{"message":"Rate Limit Exceeded",'
    '"domain":"usageLimits","reason":"rateLimitExceeded"}]}}'
)
E_MODERN = (
    '{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","errors":[{"message":'
    '"API key not valid. Please pass a valid API key.","domain":"global","reason":"badRequest"}],"status":'
    '"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID",'
    '"domain":"googleapis.com","metadata":{"service":"youtube.googleapis.com"}}]}}'
)
E_LEGACY = (
    '{"error":{"errors":[{"domain":"usageLimits","reason":"keyInvalid","message":"Bad Request"}],"code":400,'
    '"message":"Bad Request"}}'
)
F = (
    '{"error":{"code":403,"message":"YouTube Data API v3 has not been used in project 1080266325902 before or it '
    'is disabled.","errors":[{"message":"YouTube Data API v3 has not been used in project 1080266325902 before or '
    'it is disabled.","domain":"usageLimits","reason":"accessNotConfigured","extendedHelp":'
    '"https://console.developers.google.com"}],"status":"PERMISSION_DENIED","details":[{"@type":'
    '"type.googleapis.com/google.rpc.ErrorInfo","reason":"SERVICE_DISABLED","domain":"googleapis.com"}]}}'
)
H = (
    '{"error":{"code":400,"message":"Invalid value at \'published_before\' (type.googleapis.com/google.protobuf.'
    "Timestamp), Field 'published_before', Illegal timestamp format; timestamps must end with 'Z' or have a valid "
    'timezone offset.","errors":[{"message":"Invalid value at \'published_before\'","reason":"invalid"}],'
    '"status":"INVALID_ARGUMENT"}}'
)
K = (
    '{"error":{"code":400,"message":"The request specifies an invalid page token.","errors":[{"message":"The '
    'request specifies an invalid page token.","domain":"youtube.parameter","reason":"invalidPageToken",'
    '"location":"pageToken","locationType":"parameter"}]}}'
)
M = (
    '{"error":{"errors":[{"domain":"global","reason":"backendError","message":"Backend Error"}],"code":503,'
    '"message":"Backend Error"}}'
)


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (403, A, ErrorKind.DAILY_QUOTA),
        (429, B, ErrorKind.DAILY_QUOTA),
        (403, C, ErrorKind.DAILY_QUOTA),
        (429, D, ErrorKind.RATE_LIMITED),
        (400, E_MODERN, ErrorKind.KEY_INVALID),
        (400, E_LEGACY, ErrorKind.KEY_INVALID),
        (403, F, ErrorKind.KEY_FORBIDDEN),
        (400, H, ErrorKind.BAD_REQUEST),
        (400, K, ErrorKind.INVALID_PAGE_TOKEN),
        (503, M, ErrorKind.TRANSIENT),
    ],
    ids=[
        "A-quotaExceeded",
        "B-search-per-day-429",
        "C-dailyLimit",
        "D-short-term-429",
        "E",
        "E-legacy",
        "F",
        "H",
        "K",
        "M",
    ],
)
def test_reference_errors(status: int, body: str, kind: ErrorKind) -> None:
    assert classify(status, json.loads(body)).kind is kind


def test_the_daily_search_limit_is_told_from_a_short_term_limit_by_its_words_not_its_status() -> None:
    # Same status, same reason, same domain: only "per day" separates "park until midnight" from "back off".
    daily, short = json.loads(B), json.loads(D)
    assert daily["error"]["errors"][0]["reason"] == short["error"]["errors"][0]["reason"] == "rateLimitExceeded"
    assert classify(429, daily).kind is ErrorKind.DAILY_QUOTA
    assert classify(429, short).kind is ErrorKind.RATE_LIMITED
    # a per-day limit named only in the details' metadata counts too
    in_details: dict[str, Any] = {
        "error": {
            "code": 429,
            "message": "Resource has been exhausted",
            "errors": [{"reason": "rateLimitExceeded"}],
            "details": [
                {"reason": "RATE_LIMIT_EXCEEDED", "metadata": {"quota_limit": "SearchQueriesPerDayPerProject"}}
            ],
        }
    }
    assert classify(429, in_details).kind is ErrorKind.DAILY_QUOTA


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (emulator_errors.quota_exceeded(), ErrorKind.DAILY_QUOTA),
        (emulator_errors.search_quota_exceeded("123456789012"), ErrorKind.DAILY_QUOTA),
        (emulator_errors.rate_limited(429, "rateLimitExceeded"), ErrorKind.RATE_LIMITED),
        (emulator_errors.rate_limited(403, "rateLimitExceeded"), ErrorKind.RATE_LIMITED),
        (emulator_errors.rate_limited(403, "userRateLimitExceeded"), ErrorKind.RATE_LIMITED),
        (emulator_errors.backend_error(500), ErrorKind.TRANSIENT),
        (emulator_errors.api_key_invalid(), ErrorKind.KEY_INVALID),
        (emulator_errors.missing_key(), ErrorKind.KEY_FORBIDDEN),
        (emulator_errors.invalid_timestamp("published_after"), ErrorKind.BAD_REQUEST),
        (emulator_errors.out_of_range("maxResults", "51", 0, 50), ErrorKind.BAD_REQUEST),
        (emulator_errors.invalid_page_token(), ErrorKind.INVALID_PAGE_TOKEN),
    ],
)
def test_the_emulators_errors(error: emulator_errors.ApiError, kind: ErrorKind) -> None:
    # Through JSON, as the fetcher receives them.
    body = json.loads(emulator_errors.render_json(error.body))
    assert classify(error.status, body).kind is kind


def test_the_deciding_reason_comes_first() -> None:
    error = classify(400, json.loads(E_MODERN))
    assert error.reason == "API_KEY_INVALID"
    assert "badRequest" in error.reasons
    assert str(error).startswith("YouTube API error 400 API_KEY_INVALID (key_invalid)")
