"""What a route carries, and how a table of routes becomes router entries.

A route is declared once: its method, path, handler, parameter model (enforced on every request
and documented), what a success answers (a response model or an inline schema, in any content
type), its error statuses and tags. services/api/openapi.py writes the document from the same
routes, so the router and the document cannot disagree.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from aiohttp import web
from pydantic import BaseModel

from services.api.params import Params, parse_query_string

P = TypeVar("P", bound=Params)
RouteHandler = Callable[[web.Request, P], Awaitable[web.StreamResponse]]

_PATH_VARIABLE = re.compile(r"\{(\w+)(?::[^{}]*)?\}")


@dataclass(frozen=True)
class Reply:
    """One documented answer: a response model (its schema becomes a component) or an inline schema."""

    model: type[BaseModel] | None = None
    schema: Mapping[str, Any] | None = None
    content_type: str = "application/json"
    description: str = "OK"
    served_by: bool = False  # the answer says which store served it (X-Served-By)
    headers: Mapping[str, str] = field(default_factory=dict)  # other headers it always has: name -> meaning
    status: int = 200  # 201 for a creation; 204 answers no body


@dataclass(frozen=True)
class Route(Generic[P]):
    """One endpoint. ``handler`` gets the request and its parameters, already validated by ``params``.

    ``params`` None: the route reads no parameters and none are checked or documented. ``handler``
    None: the route is one every service has (/healthz, /readyz, /metrics), added to the router by
    services/common/service_app.py and only documented from here. ``body`` is the model of a JSON
    request body, for methods that take one: documented here, read by the handler.
    """

    method: str
    path: str
    handler: RouteHandler[P] | None
    summary: str
    reply: Reply
    params: type[P] | None = None
    body: type[BaseModel] | None = None
    errors: tuple[int, ...] = (400, 500)
    other_replies: Mapping[int, Reply] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    admin: bool = False  # under /api/v1/admin/: a bearer token is needed (services/api/admin_auth.py)

    @property
    def path_variables(self) -> list[str]:
        return _PATH_VARIABLE.findall(self.path)

    @property
    def openapi_path(self) -> str:
        """The path as OpenAPI writes it: ``{name}`` without aiohttp's ``:regex``."""
        return _PATH_VARIABLE.sub(r"{\1}", self.path)


def _endpoint(
    handler: RouteHandler[P], model: type[P], variables: list[str]
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def endpoint(request: web.Request) -> web.StreamResponse:
        path_values = {name: request.match_info[name] for name in variables}
        params = parse_query_string(request.rel_url.raw_query_string, model, path_values)
        return await handler(request, params)

    return endpoint


def add_routes(app: web.Application, routes: Iterable[Route[Any]]) -> None:
    """Add every route that has a handler to the app's router (GET also answers HEAD)."""
    for route in routes:
        if route.handler is None:
            continue
        if route.params is None:
            raise ValueError(
                f"route {route.method} {route.path}: a handler needs a parameter model (NoParams for none)"
            )
        endpoint = _endpoint(route.handler, route.params, route.path_variables)
        if route.method == "GET":
            app.router.add_get(route.path, endpoint)
        else:
            app.router.add_route(route.method, route.path, endpoint)
