"""The API's JSON answers: bodies serialised by pydantic-core, and the store that served them."""

from __future__ import annotations

from typing import Any

import pydantic_core
from aiohttp import web

JSON = "application/json"


def dumps(body: dict[str, Any]) -> bytes:
    return pydantic_core.to_json(body)


def raw_json_response(body: bytes, served_by: str | None = None) -> web.Response:
    response = web.Response(body=body, content_type=JSON)
    if served_by is not None:
        response.headers["X-Served-By"] = served_by
    return response


def json_response(body: dict[str, Any], served_by: str | None = None) -> web.Response:
    return raw_json_response(dumps(body), served_by)
