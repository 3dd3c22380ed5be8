"""Catalogue routes: legal bases, processing activities and cookie settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from databunker.api.v1.body import RequestBody, read_request_body
from databunker.api.v1.runtime import Access, Handler, path_route, perform
from databunker.services import legal
from databunker.services.context import Work


def _root_route(action: Callable[[Work, dict[str, Any], RequestBody], dict[str, Any]]) -> Handler:
    """A catalogue route: root only, not audited (the catalogue holds no personal data)."""

    async def handler(request: Request) -> Response:
        params = dict(request.path_params)
        body = await read_request_body(request)
        return await perform(request, Access.ROOT, lambda work: action(work, params, body))

    return handler


def _body(body: RequestBody) -> dict[str, Any]:
    return body.object() or {}


async def cookie_settings(request: Request) -> Response:
    return await perform(request, Access.PUBLIC, legal.cookie_settings)


routes = [
    Route("/v1/sys/cookiesettings", cookie_settings, methods=["GET"]),
    Route("/v1/lbasis", _root_route(lambda work, _p, _b: legal.list_bases(work)), methods=["GET"]),
    path_route(
        "/v1/lbasis/{brief}",
        {
            "POST": _root_route(lambda w, p, b: legal.save_basis(w, p["brief"], _body(b))),
            "DELETE": _root_route(lambda w, p, _b: legal.delete_basis(w, p["brief"])),
        },
    ),
    Route(
        "/v1/pactivity",
        _root_route(lambda work, _p, _b: legal.list_activities(work)),
        methods=["GET"],
    ),
    path_route(
        "/v1/pactivity/{activity}",
        {
            "POST": _root_route(lambda w, p, b: legal.save_activity(w, p["activity"], _body(b))),
            "DELETE": _root_route(lambda w, p, _b: legal.delete_activity(w, p["activity"])),
        },
    ),
    path_route(
        "/v1/pactivity/{activity}/{brief}",
        {
            "POST": _root_route(
                lambda w, p, _b: legal.link_activity(w, p["activity"], p["brief"], linked=True)
            ),
            "DELETE": _root_route(
                lambda w, p, _b: legal.link_activity(w, p["activity"], p["brief"], linked=False)
            ),
        },
    ),
]
