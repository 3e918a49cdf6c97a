"""The request middleware: request ids, refused bodies, errors as the JSON error shape, request metrics."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from services.api.errors import ApiError, ErrorCode
from services.api.metrics import ApiMetrics
from services.api.responses import JSON

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Methods that never take a body here: one sent with them is refused unread.
BODILESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def request_middleware(metrics: ApiMetrics) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        given = request.headers.get("X-Request-Id", "")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        started = time.perf_counter()
        response: web.StreamResponse
        try:
            failure = request.match_info.http_exception
            if failure is not None and request.body_exists:
                raise failure  # no such endpoint or method: that, before anything about the body
            if request.body_exists and request.method in BODILESS_METHODS:
                raise ApiError(400, "invalid_request", f"{request.method} takes no request body")
            response = await handler(request)
        except ApiError as exc:
            response = error_response(exc)
        except web.HTTPException as exc:
            response = http_error_response(exc)
        except Exception:
            logger.exception(
                "unexpected error answering a request",
                extra={"request_id": request_id, "method": request.method, "path": request.path},
            )
            response = web.Response(
                status=500,
                body=ApiError(500, "internal", f"internal error; quote request id {request_id}").body(request_id),
                content_type=JSON,
            )
        response.headers["X-Request-Id"] = request_id
        if request.body_exists:
            response.force_close()  # the body stays unread: never parse it as the next request
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        metrics.observe_request(request.method, route, response.status, time.perf_counter() - started)
        return response

    return middleware


def error_response(exc: ApiError) -> web.Response:
    return web.Response(status=exc.status, body=exc.body(), content_type=JSON)


def http_error_response(exc: web.HTTPException) -> web.Response:
    """The router's own refusals (no such endpoint, wrong method) in the API's error shape."""
    if exc.status == 404:
        error = ApiError(404, "not_found", "no such endpoint; see /api/openapi.json")
    elif exc.status == 405:
        error = ApiError(405, "method_not_allowed", f"method not allowed; use {exc.headers.get('Allow', 'GET')}")
    elif exc.status in _HTTP_ERRORS:
        code, message = _HTTP_ERRORS[exc.status]
        error = ApiError(exc.status, code, message)
    else:
        error = ApiError(exc.status, "invalid_parameter" if exc.status < 500 else "internal", exc.reason)
    response = error_response(error)
    for name in _KEPT_HEADERS:
        if name in exc.headers:
            response.headers[name] = exc.headers[name]
    return response


# Refusals raised as aiohttp's exceptions (the admin gate, aiohttp's body limit), in the error shape.
_HTTP_ERRORS: dict[int, tuple[ErrorCode, str]] = {
    401: ("unauthorized", "an admin token is needed: send Authorization: Bearer <token>"),
    413: ("payload_too_large", "the request body is too large"),
    429: ("too_many_requests", "too many failed authentications; wait for Retry-After seconds"),
}
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")
