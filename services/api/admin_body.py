"""Request bodies of the admin API: JSON only, at most 64 KiB, validated into a model.

A body over MAX_ADMIN_BODY_BYTES answers 413 (by its Content-Length before reading a byte, or
as soon as a chunked body passes the limit); a content type other than JSON answers 415; a body
that is not JSON, or not an object, answers 400 ``invalid_request``; a field that fails its model
answers 400 ``invalid_parameter`` naming the field (a nested one by its path:
``filters.published_after``). PATCH bodies are JSON merge patches (RFC 7396,
``application/merge-patch+json`` or ``application/json``): a member set to null goes back to its
default.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from services.api.errors import ApiError, invalid
from services.common.video_filters import rule_parameter

MAX_ADMIN_BODY_BYTES = 65536
JSON_TYPES = frozenset({"application/json"})
MERGE_PATCH_TYPES = frozenset({"application/json", "application/merge-patch+json"})

ModelT = TypeVar("ModelT", bound=BaseModel)


def _too_large() -> ApiError:
    return ApiError(413, "payload_too_large", f"the request body is over {MAX_ADMIN_BODY_BYTES} bytes")


async def read_json_object(request: web.Request, content_types: frozenset[str] = JSON_TYPES) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_ADMIN_BODY_BYTES:
        raise _too_large()
    if request.content_type not in content_types:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send the body as {' or '.join(sorted(content_types))}, not {request.content_type or 'nothing'}",
        )
    raw = await request.content.read(MAX_ADMIN_BODY_BYTES + 1)
    if len(raw) > MAX_ADMIN_BODY_BYTES:
        raise _too_large()
    try:
        body = json.loads(raw.decode(request.charset or "utf-8"))
    except (UnicodeDecodeError, LookupError, json.JSONDecodeError, RecursionError):
        raise ApiError(400, "invalid_request", "the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request", "the request body must be a JSON object")
    return body


def validated(model: type[ModelT], body: dict[str, Any]) -> ModelT:
    """``body`` as ``model``; 400 naming the first field at fault, a nested one by its path (filters.q)."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        path = [str(part) for part in error["loc"]]
        rule = rule_parameter(error)
        if rule is not None:  # a rule of filters that tie together names the filter at fault
            name = ".".join([*path, rule])
            raise invalid(name, f"{name}: {error['msg']}") from None
        name = ".".join(path) if path else "body"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = f"unknown field; allowed: {', '.join(model.model_fields)}" if len(path) == 1 else "unknown field"
        raise invalid(name, f"{name}: {message}") from None


async def read_body(request: web.Request, model: type[ModelT]) -> ModelT:
    return validated(model, await read_json_object(request))


async def read_merge_patch(request: web.Request, model: type[ModelT]) -> dict[str, Any]:
    """The members of a merge patch, validated by ``model`` (every field optional); null kept as None."""
    body = await read_json_object(request, MERGE_PATCH_TYPES)
    patch = validated(model, body)
    return {name: getattr(patch, name) for name in body}
