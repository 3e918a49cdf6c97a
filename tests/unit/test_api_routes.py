"""The route table: a route declared once is in the router and in the OpenAPI document, enforced as documented."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import BaseModel, Field

from services.api.app import create_app
from services.api.openapi import build_openapi
from services.api.params import NoParams, Params
from services.api.routes import API_ROUTES, ROUTES, SERVICE_ROUTES
from services.api.routing import Reply, Route
from services.api.settings import Settings

Client = TestClient[Any, Any]


class ThingParams(Params):
    thing_id: str = Field(pattern=r"^[a-z]{1,8}$", description="The thing.")
    depth: int = Field(default=1, ge=1, le=3, description="How deep.")


class Thing(BaseModel):
    thing_id: str
    depth: int


class NewThing(BaseModel):
    name: str


async def get_thing(request: web.Request, params: ThingParams) -> web.Response:
    return web.json_response({"thing_id": params.thing_id, "depth": params.depth})


async def add_thing(request: web.Request, params: NoParams) -> web.Response:
    body = NewThing.model_validate(await request.json())
    return web.json_response({"thing_id": body.name, "depth": 1}, status=200)


async def thing_feed(request: web.Request, params: NoParams) -> web.Response:
    return web.Response(text="<feed/>", content_type="application/atom+xml")


EXTRA_ROUTES: tuple[Route[Any], ...] = (
    Route(
        "GET",
        "/api/v1/things/{thing_id}",
        get_thing,
        "One thing",
        Reply(Thing),
        ThingParams,
        errors=(400, 500),
        tags=("things",),
    ),
    Route("POST", "/api/v1/things", add_thing, "Add a thing", Reply(Thing), NoParams, body=NewThing),
    Route(
        "GET",
        "/api/v1/things.atom",
        thing_feed,
        "New things as an Atom feed",
        Reply(schema={"type": "string"}, content_type="application/atom+xml", description="The feed"),
        NoParams,
    ),
)


def _settings() -> Settings:
    return Settings(
        mongodb_url="mongodb://127.0.0.1:1",
        elasticsearch_url="http://127.0.0.1:1",
        cursor_secret="unit-test-cursor-secret-" + "x" * 32,
    )


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    app = create_app(_settings(), routes=ROUTES + EXTRA_ROUTES)
    async with TestClient(TestServer(app)) as client:
        yield client


def _routed(app: web.Application) -> set[tuple[str, str]]:
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }


async def test_a_route_added_to_the_table_is_in_the_router_and_the_document(client: Client) -> None:
    routed = _routed(client.app)
    assert {("GET", "/api/v1/things/{thing_id}"), ("POST", "/api/v1/things"), ("GET", "/api/v1/things.atom")} <= routed
    document = await (await client.get("/api/openapi.json")).json()
    one = document["paths"]["/api/v1/things/{thing_id}"]["get"]
    assert one["summary"] == "One thing"
    assert one["tags"] == ["things"]
    assert [(p["name"], p["in"], p["required"]) for p in one["parameters"]] == [
        ("thing_id", "path", True),
        ("depth", "query", False),
    ]
    assert one["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Thing"}
    assert set(one["responses"]) == {"200", "400", "500"}
    added = document["paths"]["/api/v1/things"]["post"]
    assert added["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/NewThing"}
    assert {"Thing", "NewThing", "ErrorResponse"} <= set(document["components"]["schemas"])
    feed = document["paths"]["/api/v1/things.atom"]["get"]["responses"]["200"]
    assert feed["description"] == "The feed"
    assert feed["content"] == {"application/atom+xml": {"schema": {"type": "string"}}}
    # The API's own endpoints are all still there, unchanged.
    assert build_openapi(ROUTES)["paths"].items() <= document["paths"].items()


async def test_the_added_route_enforces_its_parameter_model(client: Client) -> None:
    ok = await client.get("/api/v1/things/abc?depth=2")
    assert ok.status == 200
    assert await ok.json() == {"thing_id": "abc", "depth": 2}
    assert ok.headers["X-Request-Id"]  # the middleware saw it
    for url, parameter in (
        ("/api/v1/things/abc?depth=9", "depth"),
        ("/api/v1/things/ABC", "thing_id"),
        ("/api/v1/things/abc?thing_id=x", "thing_id"),  # a path parameter is not a query parameter
        ("/api/v1/things/abc?nope=1", "nope"),
    ):
        refused = await client.get(url)
        assert refused.status == 400, url
        assert (await refused.json())["error"]["parameter"] == parameter, url
    posted = await client.post("/api/v1/things", json={"name": "new"})
    assert posted.status == 200
    assert (await posted.json())["thing_id"] == "new"
    feed = await client.get("/api/v1/things.atom")
    assert feed.content_type == "application/atom+xml"
    assert await feed.text() == "<feed/>"


def test_every_documented_operation_is_routed_and_every_api_route_documented() -> None:
    app = create_app(_settings())
    routed = _routed(app)
    documented = {
        (method.upper(), path) for path, operations in build_openapi()["paths"].items() for method in operations
    }
    assert documented <= routed
    assert {(method, path) for method, path in routed if path.startswith("/api/v1/")} <= documented
    assert {(r.method, r.path) for r in ROUTES} == documented
    assert all(r.handler is not None for r in API_ROUTES)
    assert all(r.handler is None for r in SERVICE_ROUTES)  # added by services/common/service_app.py


def test_a_handler_without_a_parameter_model_is_refused() -> None:
    route: Route[Any] = Route("GET", "/api/v1/loose", thing_feed, "Loose", Reply(schema={"type": "string"}))
    with pytest.raises(ValueError, match="parameter model"):
        create_app(_settings(), routes=(*ROUTES, route))
