"""The API's one error shape: ``{"error": {"code", "message", "parameter"?}}``."""

from __future__ import annotations

import json
from typing import Literal

ErrorCode = Literal[
    "invalid_request",
    "invalid_parameter",
    "invalid_cursor",
    "not_found",
    "unauthorized",
    "conflict",
    "payload_too_large",
    "unsupported_media_type",
    "too_many_requests",
    "method_not_allowed",
    "cursor_expired",
    "unavailable",
    "internal",
]


class ApiError(Exception):
    """Raised anywhere in a handler; the error middleware turns it into the JSON error response."""

    def __init__(self, status: int, code: ErrorCode, message: str, parameter: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.parameter = parameter

    def body(self, request_id: str | None = None) -> bytes:
        error: dict[str, str] = {"code": self.code, "message": self.message}
        if self.parameter is not None:
            error["parameter"] = self.parameter
        if request_id is not None:
            error["request_id"] = request_id
        return json.dumps({"error": error}).encode()


def invalid(parameter: str, message: str) -> ApiError:
    return ApiError(400, "invalid_parameter", message, parameter)


def unavailable(message: str) -> ApiError:
    return ApiError(503, "unavailable", message)
