from __future__ import annotations

from typing import Any

from services.api.openapi import build_openapi
from services.api.params import VideoListParams


def _parameters(spec: dict[str, Any], path: str) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in spec["paths"][path]["get"]["parameters"]}


def test_the_document_is_openapi_3_1_with_every_endpoint() -> None:
    spec = build_openapi()
    assert spec["openapi"] == "3.1.0"
    assert set(spec["paths"]) >= {
        "/api/v1/videos",
        "/api/v1/videos/{video_id}",
        "/api/v1/channels",
        "/api/v1/histogram",
        "/api/v1/queries",
        "/api/v1/status",
    }
    for path in spec["paths"].values():
        for operation in path.values():
            for response in operation["responses"].values():
                assert "X-Request-Id" in response["headers"]


def test_list_parameters_come_from_the_validating_model() -> None:
    parameters = _parameters(build_openapi(), "/api/v1/videos")
    assert set(parameters) == set(VideoListParams.model_fields)
    assert parameters["limit"]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 100,
        "default": 20,
    }
    assert parameters["channel_id"]["schema"]["type"] == "array"
    assert parameters["channel_id"]["explode"] is True
    assert parameters["q"]["schema"]["maxLength"] == 200
    assert parameters["sort"]["schema"]["enum"] == ["-published_at", "published_at", "relevance"]
    assert "anyOf" not in parameters["cursor"]["schema"]


def test_error_codes_are_documented() -> None:
    spec = build_openapi()
    codes = spec["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["enum"]
    assert {"invalid_parameter", "invalid_cursor", "not_found", "cursor_expired", "unavailable", "internal"} <= set(
        codes
    )
    assert set(spec["paths"]["/api/v1/videos"]["get"]["responses"]) == {"200", "400", "410", "500", "503"}
