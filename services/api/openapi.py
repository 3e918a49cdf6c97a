"""The OpenAPI 3.1 document, generated from the parameter and response models, and its viewer.

The viewer is swagger-ui-dist from the npm registry, installed at a pinned version by the Makefile
(`make api-viewer`, part of `make install`) into the git-ignored .local/api-viewer; nothing is
copied into the repository and nothing comes from a CDN.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from services.api import models
from services.api.errors import ApiError
from services.api.params import ChannelListParams, HistogramParams, VideoListParams, VideoPathParams
from services.api.security import content_security_policy
from services.common.settings import PROJECT_ROOT

VIEWER_DIR = PROJECT_ROOT / ".local" / "api-viewer" / "node_modules" / "swagger-ui-dist"
OPENAPI_PATH = "/api/openapi.json"
DOCS_PATH = "/api/docs"
_REF = "#/components/schemas/{model}"

_RESPONSE_MODELS: list[type[BaseModel]] = [
    models.VideoPage,
    models.Video,
    models.ChannelList,
    models.Histogram,
    models.QueryList,
    models.PipelineStatus,
    models.ErrorResponse,
]
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
    404: "not_found: no such video.",
    410: "cursor_expired: the point-in-time of this relevance walk expired; start the walk again.",
    503: "unavailable: the store this request needs is down.",
    500: "internal: an unexpected error; error.request_id is in the server log.",
}


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


def _parameters(model: type[BaseModel], location: str = "query") -> list[dict[str, Any]]:
    schema = model.model_json_schema(mode="validation")
    required = set(schema.get("required", []))
    parameters = []
    for name, field_schema in schema["properties"].items():
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


def _json(ref: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": _REF.format(model=ref)}}}


def _operation(
    summary: str,
    ok: str,
    *,
    parameters: list[dict[str, Any]] | None = None,
    errors: tuple[int, ...] = (400, 500),
    served_by: bool = False,
) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {
            "description": "OK",
            "headers": _REQUEST_ID_HEADER | (_SERVED_BY_HEADER if served_by else {}),
            "content": _json(ok),
        }
    }
    for status in errors:
        responses[str(status)] = {
            "description": _ERROR_TEXT[status],
            "headers": _REQUEST_ID_HEADER,
            "content": _json("ErrorResponse"),
        }
    return {"summary": summary, "parameters": parameters or [], "responses": responses}


def build_openapi() -> dict[str, Any]:
    _, definitions = models_json_schema([(m, "serialization") for m in _RESPONSE_MODELS], ref_template=_REF)
    plain_200 = {"description": "OK", "headers": _REQUEST_ID_HEADER}
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
        "paths": {
            "/api/v1/videos": {
                "get": _operation(
                    "List and search videos",
                    "VideoPage",
                    parameters=_parameters(VideoListParams),
                    errors=(400, 410, 500, 503),
                    served_by=True,
                )
            },
            "/api/v1/videos/{video_id}": {
                "get": _operation(
                    "One video, from the system of record",
                    "Video",
                    parameters=_parameters(VideoPathParams, "path"),
                    errors=(400, 404, 500, 503),
                    served_by=True,
                )
            },
            "/api/v1/channels": {
                "get": _operation(
                    "Channels with their video counts, most videos first",
                    "ChannelList",
                    parameters=_parameters(ChannelListParams),
                    errors=(400, 500, 503),
                    served_by=True,
                )
            },
            "/api/v1/histogram": {
                "get": _operation(
                    "Upload counts per UTC hour or day, with the filters of the video list",
                    "Histogram",
                    parameters=_parameters(HistogramParams),
                    errors=(400, 500, 503),
                    served_by=True,
                )
            },
            "/api/v1/queries": {"get": _operation("The configured search queries and their progress", "QueryList")},
            "/api/v1/status": {"get": _operation("The pipeline at a glance", "PipelineStatus")},
            "/healthz": {
                "get": {
                    "summary": "Liveness",
                    "responses": {
                        "200": plain_200
                        | {
                            "content": {
                                "application/json": {
                                    "schema": {"type": "object", "properties": {"status": {"const": "ok"}}}
                                }
                            }
                        }
                    },
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness, per dependency (Elasticsearch down only degrades)",
                    "responses": {
                        "200": plain_200 | {"content": {"application/json": {"schema": {"type": "object"}}}},
                        "503": plain_200
                        | {"description": "Not ready", "content": {"application/json": {"schema": {"type": "object"}}}},
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {"200": plain_200 | {"content": {"text/plain": {"schema": {"type": "string"}}}}},
                }
            },
        },
        "components": {"schemas": definitions["$defs"]},
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


def add_openapi_routes(app: web.Application, viewer_dir: Path = VIEWER_DIR) -> None:
    document = json.dumps(build_openapi()).encode()

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
