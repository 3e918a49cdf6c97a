"""The OpenAPI 3.1 document, generated from the route table and its models, and its viewer.

The viewer is swagger-ui-dist from the npm registry, installed at a pinned version by the Makefile
(`make api-viewer`, part of `make install`) into the git-ignored .local/api-viewer; nothing is
copied into the repository and nothing comes from a CDN.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from services.api.errors import ApiError
from services.api.models import ErrorResponse
from services.api.routes import ROUTES
from services.api.routing import Reply, Route
from services.api.security import content_security_policy
from services.common.settings import PROJECT_ROOT

VIEWER_DIR = PROJECT_ROOT / ".local" / "api-viewer" / "node_modules" / "swagger-ui-dist"
OPENAPI_PATH = "/api/openapi.json"
DOCS_PATH = "/api/docs"
_REF = "#/components/schemas/{model}"

_REQUEST_ID_HEADER = {
    "X-Request-Id": {
        "description": "Id of this request, also in the server's log lines about it.",
        "required": True,
        "schema": {"type": "string"},
    }
}
_SERVED_BY_HEADER = {
    "X-Served-By": {
        "description": "The store that answered: elasticsearch, or mongodb in degraded mode.",
        "required": True,
        "schema": {"type": "string", "enum": ["elasticsearch", "mongodb"]},
    }
}
_ERROR_TEXT = {
    400: (
        "Invalid input: error.code is invalid_parameter or invalid_cursor, error.parameter names the parameter;"
        " invalid_request for a request body, which no endpoint takes."
    ),
    401: "unauthorized: no admin token, or not one of ADMIN_TOKENS (Authorization: Bearer <token>).",
    404: "not_found: no such video, query or channel; under /api/v1/admin/ also while ADMIN_TOKENS is unset.",
    409: "conflict: the query is followed already, or SOURCES_FROM_ENV=always lets the environment set the sources.",
    413: "payload_too_large: a request body over 64 KiB.",
    415: "unsupported_media_type: a request body that is not JSON.",
    429: "too_many_requests: too many failed authentications in this process; wait for Retry-After seconds.",
    410: "cursor_expired: the point-in-time of this relevance walk expired; start the walk again.",
    503: "unavailable: the store this request needs is down.",
    500: "internal: an unexpected error; error.request_id is in the server log.",
}
_ERROR_REPLY = Reply(ErrorResponse)
ADMIN_SECURITY_SCHEME = "adminToken"


def _unwrap_nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is either present or absent: drop pydantic's ``anyOf [..., null]``."""
    options = schema.get("anyOf")
    if isinstance(options, list):
        non_null = [s for s in options if s.get("type") != "null"]
        if len(non_null) == 1 and len(non_null) < len(options):
            merged = {k: v for k, v in schema.items() if k != "anyOf"}
            merged.update(non_null[0])
            if merged.get("default", 0) is None:
                merged.pop("default")
            return merged
    return schema


def _parameters(model: type[BaseModel], path_variables: list[str]) -> list[dict[str, Any]]:
    """One parameter per field of ``model``: in the path when the path names it, else in the query."""
    schema = model.model_json_schema(mode="validation")
    required = set(schema.get("required", []))
    parameters = []
    for name, field_schema in schema.get("properties", {}).items():
        location = "path" if name in path_variables else "query"
        prop = _unwrap_nullable(copy.deepcopy(field_schema))
        prop.pop("title", None)
        description = prop.pop("description", None)
        parameter: dict[str, Any] = {"name": name, "in": location, "required": location == "path" or name in required}
        if description:
            parameter["description"] = description
        if prop.get("type") == "array":
            parameter["style"] = "form"
            parameter["explode"] = True
        parameter["schema"] = prop
        parameters.append(parameter)
    return parameters


def _schema(model: type[BaseModel] | None, inline: Any) -> dict[str, Any]:
    if model is not None:
        return {"$ref": _REF.format(model=model.__name__)}
    return copy.deepcopy(dict(inline or {}))


def _response(reply: Reply, description: str | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": reply.description if description is None else description,
        "headers": _REQUEST_ID_HEADER
        | (_SERVED_BY_HEADER if reply.served_by else {})
        | {
            name: {"description": meaning, "required": True, "schema": {"type": "string"}}
            for name, meaning in reply.headers.items()
        },
    }
    if reply.status != 204:
        response["content"] = {reply.content_type: {"schema": _schema(reply.model, reply.schema)}}
    return response


def _operation(route: Route[Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": route.summary}
    if route.tags:
        operation["tags"] = list(route.tags)
    if route.params is not None:
        operation["parameters"] = _parameters(route.params, route.path_variables)
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _schema(route.body, None)}},
        }
    if route.admin:
        operation["security"] = [{ADMIN_SECURITY_SCHEME: []}]
    responses = {str(route.reply.status): _response(route.reply)}
    for status, reply in route.other_replies.items():
        responses[str(status)] = _response(reply)
    for status in route.errors:
        responses[str(status)] = _response(_ERROR_REPLY, _ERROR_TEXT[status])
    operation["responses"] = responses
    return operation


def _models(routes: Sequence[Route[Any]]) -> list[type[BaseModel]]:
    """Every model the routes refer to, each once, in the order of the routes."""
    found: dict[type[BaseModel], None] = {}
    for route in routes:
        replies = [route.reply, *route.other_replies.values()] + ([_ERROR_REPLY] if route.errors else [])
        for model in [route.body, *(reply.model for reply in replies)]:
            if model is not None:
                found[model] = None
    return list(found)


def build_openapi(routes: Sequence[Route[Any]] = ROUTES) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes`` (by default the API's own)."""
    _, definitions = models_json_schema([(m, "serialization") for m in _models(routes)], ref_template=_REF)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.openapi_path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "tubewatch API",
            "version": "1",
            "description": (
                "The newest YouTube videos for the configured search queries, searchable. Pages come from "
                "search_after cursors (constant time at any depth); a walk from the first page to next_cursor "
                "null returns every video that existed when it started exactly once, even while new videos arrive."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {
                ADMIN_SECURITY_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "One of ADMIN_TOKENS (label:token), sent as Authorization: Bearer <token>.",
                }
            },
        },
    }


# No inline script: the page works under a strict Content-Security-Policy (script-src 'self').
_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tubewatch API</title>
<link rel="icon" type="image/png" href="/api/docs/assets/favicon-32x32.png">
<link rel="stylesheet" href="/api/docs/assets/swagger-ui.css"></head>
<body><div id="viewer"></div>
<script src="/api/docs/assets/swagger-ui-bundle.js"></script>
<script src="/api/docs/init.js"></script>
</body></html>
"""
_DOCS_INIT = f'window.ui = SwaggerUIBundle({{url: "{OPENAPI_PATH}", dom_id: "#viewer", deepLinking: true}});\n'
# The viewer's page: as strict as the dashboard's, data: images for Swagger UI's icons.
DOCS_CONTENT_SECURITY_POLICY = content_security_policy(img_src="'self' data:")


def add_openapi_routes(
    app: web.Application, routes: Sequence[Route[Any]] = ROUTES, viewer_dir: Path = VIEWER_DIR
) -> None:
    """Serve the document of ``routes`` at /api/openapi.json and its viewer at /api/docs."""
    document = json.dumps(build_openapi(routes)).encode()

    async def openapi_json(request: web.Request) -> web.Response:
        return web.Response(body=document, content_type="application/json")

    async def docs(request: web.Request) -> web.Response:
        if not (viewer_dir / "swagger-ui-bundle.js").is_file():
            raise ApiError(503, "unavailable", "the API viewer is not installed: run `make api-viewer`")
        return web.Response(
            text=_DOCS_PAGE, content_type="text/html", headers={"Content-Security-Policy": DOCS_CONTENT_SECURITY_POLICY}
        )

    async def docs_init(request: web.Request) -> web.Response:
        return web.Response(text=_DOCS_INIT, content_type="text/javascript")

    app.router.add_get(OPENAPI_PATH, openapi_json)
    app.router.add_get(DOCS_PATH, docs)
    app.router.add_get(f"{DOCS_PATH}/init.js", docs_init)
    if viewer_dir.is_dir():
        app.router.add_static(f"{DOCS_PATH}/assets", viewer_dir)
