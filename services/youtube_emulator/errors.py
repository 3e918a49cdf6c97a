"""YouTube's error bodies, byte for byte where a captured answer exists.

Key order follows the captured answers (legacy bodies put ``errors`` first). Where no capture
exists, a body uses the closest documented reason and domain.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from aiohttp import web

JSON_CONTENT_TYPE = "application/json; charset=UTF-8"

Outcome = Literal[
    "quota_exceeded", "rate_limited", "server_error", "invalid_key", "missing_key", "bad_request", "not_found"
]

QUOTA_MESSAGE = (
    "The request cannot be completed because you have exceeded your "
    '<a href="/youtube/v3/getting-started#quota">quota</a>.'
)
KEY_INVALID_MESSAGE = "API key not valid. Please pass a valid API key."
UNREGISTERED_MESSAGE = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
BAD_PAGE_MESSAGE = "The request specifies an invalid page token."
SEARCH_FILTER_MESSAGE = (
    "The request contains an invalid combination of search filters and/or restrictions. Note that you must "
    "set the <code>type</code> parameter to <code>video</code> if you set either the forContentOwner, "
    "forDeveloper, or forMine parameters to true. You must also set the <code>type</code> parameter to "
    "<code>video</code> if you set a value for the eventType, videoCaption, videoCategoryId, "
    "videoDefinition, videoDimension, videoDuration, videoEmbeddable, videoLicense, videoSyndicated, or "
    "videoType parameters."
)


class ApiError(Exception):
    """An error answer: HTTP status, the JSON body, and the outcome label for metrics."""

    def __init__(self, status: int, body: dict[str, Any], outcome: Outcome) -> None:
        super().__init__(body["error"]["message"])
        self.status = status
        self.body = body
        self.outcome = outcome


def render_json(payload: object, *, pretty: bool = True) -> bytes:
    if pretty:
        text = json.dumps(payload, indent=2, ensure_ascii=False)
    else:
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    # Google escapes < and > as \u003c/\u003e; in this JSON they can only occur inside strings.
    return text.replace("<", "\\u003c").replace(">", "\\u003e").encode("utf-8")


def json_response(payload: object, *, status: int = 200, pretty: bool = True) -> web.Response:
    return web.Response(
        body=render_json(payload, pretty=pretty), status=status, headers={"Content-Type": JSON_CONTENT_TYPE}
    )


def error_response(error: ApiError, *, pretty: bool = True) -> web.Response:
    return json_response(error.body, status=error.status, pretty=pretty)


def _modern(code: int, message: str, item: dict[str, str], outcome: Outcome, *, status: str | None = None) -> ApiError:
    body: dict[str, Any] = {"code": code, "message": message, "errors": [{"message": message, **item}]}
    if status is not None:
        body["status"] = status
    return ApiError(code, {"error": body}, outcome)


def _parameter(location: str) -> dict[str, str]:
    return {"location": location, "locationType": "parameter"}


# Quota ----------------------------------------------------------------------------------------


def quota_exceeded() -> ApiError:
    """A: the legacy unit pool is spent (403 quotaExceeded)."""
    item = {"domain": "youtube.quota", "reason": "quotaExceeded"}
    return _modern(403, QUOTA_MESSAGE, item, "quota_exceeded")


def search_quota_exceeded(project_number: str) -> ApiError:
    """B: the per-project search.list bucket is spent (429, "per day")."""
    message = (
        "Quota exceeded for quota metric 'Search Queries' and limit 'Search Queries per day' of service "
        f"'youtube.googleapis.com' for consumer 'project_number:{project_number}'."
    )
    item = {"domain": "global", "reason": "rateLimitExceeded"}
    return _modern(429, message, item, "quota_exceeded", status="RESOURCE_EXHAUSTED")


# Short-term and server faults -------------------------------------------------------------------


def rate_limited(code: Literal[403, 429], reason: Literal["rateLimitExceeded", "userRateLimitExceeded"]) -> ApiError:
    """D: a short-term limit; never mentions "per day"."""
    message = "Rate Limit Exceeded" if reason == "rateLimitExceeded" else "User Rate Limit Exceeded"
    return _modern(code, message, {"domain": "usageLimits", "reason": reason}, "rate_limited")


def backend_error(code: Literal[500, 503]) -> ApiError:
    """M: a transient backend failure (legacy key order)."""
    body = {
        "errors": [{"domain": "global", "reason": "backendError", "message": "Backend Error"}],
        "code": code,
        "message": "Backend Error",
    }
    return ApiError(code, {"error": body}, "server_error")


# Keys -----------------------------------------------------------------------------------------


def api_key_invalid() -> ApiError:
    """E, modern form."""
    body = {
        "code": 400,
        "message": KEY_INVALID_MESSAGE,
        "errors": [{"message": KEY_INVALID_MESSAGE, "domain": "global", "reason": "badRequest"}],
        "status": "INVALID_ARGUMENT",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "youtube.googleapis.com"},
            },
            {
                "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                "locale": "en-US",
                "message": KEY_INVALID_MESSAGE,
            },
        ],
    }
    return ApiError(400, {"error": body}, "invalid_key")


def missing_key() -> ApiError:
    """G: no key at all."""
    item = {"domain": "global", "reason": "forbidden"}
    return _modern(403, UNREGISTERED_MESSAGE, item, "missing_key", status="PERMISSION_DENIED")


# Request bugs ---------------------------------------------------------------------------------


def invalid_timestamp(field: str) -> ApiError:
    """H: ``field`` is the snake_case name (``published_after``); no domain, as captured."""
    message = (
        f"Invalid value at '{field}' (type.googleapis.com/google.protobuf.Timestamp), Field '{field}', "
        "Illegal timestamp format; timestamps must end with 'Z' or have a valid timezone offset."
    )
    return _modern(400, message, {"reason": "invalid"}, "bad_request", status="INVALID_ARGUMENT")


def invalid_unsigned(field: str, raw: str) -> ApiError:
    """A non-numeric integer parameter, in the same transcoding style as H (UNCONFIRMED)."""
    message = f"Invalid value at '{field}' (TYPE_UINT32), \"{raw}\""
    return _modern(400, message, {"reason": "invalid"}, "bad_request", status="INVALID_ARGUMENT")


def out_of_range(location: str, raw: str, low: int, high: int) -> ApiError:
    """I: ``maxResults`` outside [0, 50] (body UNCONFIRMED, message captured)."""
    message = f"Invalid value '{raw}'. Values must be within the range: [{low}, {high}]"
    item = {"domain": "youtube.parameter", "reason": "invalidParameter", **_parameter(location)}
    return _modern(400, message, item, "bad_request")


def invalid_choice(location: str, raw: str, allowed: tuple[str, ...]) -> ApiError:
    """J: an enum parameter with an unknown value (UNCONFIRMED)."""
    message = f"Invalid value '{raw}'. Values must be one of: {', '.join(allowed)}"
    item = {"domain": "youtube.parameter", "reason": "invalidParameter", **_parameter(location)}
    return _modern(400, message, item, "bad_request")


def invalid_search_filter() -> ApiError:
    """L: eventType or a video* filter without ``type=video`` (reason and domain UNCONFIRMED)."""
    item = {"domain": "youtube.search", "reason": "invalidSearchFilter"}
    return _modern(400, SEARCH_FILTER_MESSAGE, item, "bad_request")


def invalid_page_token() -> ApiError:
    """K."""
    item = {"domain": "youtube.parameter", "reason": "invalidPageToken", **_parameter("pageToken")}
    return _modern(400, BAD_PAGE_MESSAGE, item, "bad_request")


def missing_parameter(name: str) -> ApiError:
    """A required parameter is absent (body UNCONFIRMED)."""
    item = {"domain": "youtube.parameter", "reason": "missingRequiredParameter", **_parameter(name)}
    return _modern(400, f"Required parameter: {name}", item, "bad_request")


def unknown_part(part: str) -> ApiError:
    """An unsupported ``part`` value; the message is the part itself, as captured (claudiob/yt#90)."""
    item = {"domain": "youtube.part", "reason": "unknownPart", **_parameter("part")}
    return _modern(400, part, item, "bad_request")


def too_many_ids() -> ApiError:
    """videos.list with more than 50 ids (body UNCONFIRMED; the documented invalidFilters error)."""
    item = {"domain": "youtube.parameter", "reason": "invalidFilters", **_parameter("id")}
    return _modern(400, "The request specifies an invalid filter parameter.", item, "bad_request")


def no_filter(expected: str = "chart, id, myRating", location: str = "id") -> ApiError:
    """A list call without its filter: the documented missingRequiredParameter.

    videos.list expects one of ``chart, id, myRating``; channels.list (here) ``id``;
    playlistItems.list (here) ``playlistId``; the message lists what the method accepts.
    """
    item = {"domain": "youtube.parameter", "reason": "missingRequiredParameter", **_parameter(location)}
    return _modern(400, f"No filter selected. Expected one of: {expected}", item, "bad_request")


# Not found ------------------------------------------------------------------------------------

PLAYLIST_NOT_FOUND_MESSAGE = (
    "The playlist identified with the request's <code>playlistId</code> parameter cannot be found."
)


def playlist_not_found() -> ApiError:
    """playlistItems.list of a playlist that does not exist: 404 playlistNotFound [DOC: errors page]."""
    item = {
        "domain": "youtube.playlistItem",
        "reason": "playlistNotFound",
        **_parameter("playlistId"),
    }
    return _modern(404, PLAYLIST_NOT_FOUND_MESSAGE, item, "not_found")
