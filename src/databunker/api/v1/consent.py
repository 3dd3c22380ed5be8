"""Consent routes: a person's agreements to the legal bases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from databunker.api.v1.body import RequestBody, read_request_body
from databunker.api.v1.runtime import (
    Access,
    Handler,
    authenticated_unless_anonymous,
    path_route,
    perform,
)
from databunker.services import agreements, legal
from databunker.services.context import Work
from databunker.services.identity import MODES


def _brief_title(template: str, value: str) -> str:
    brief = value.lower()
    return template.format(brief=brief if legal.BRIEF_PATTERN.fullmatch(brief) else "unknown brief")


def _root_route(action: Callable[[Work, dict[str, Any], RequestBody], dict[str, Any]]) -> Handler:
    """A catalogue route: root only, not audited (the catalogue holds no personal data)."""

    async def handler(request: Request) -> Response:
        params = dict(request.path_params)
        body = await read_request_body(request)
        return await perform(request, Access.ROOT, lambda work: action(work, params, body))

    return handler


def _body(body: RequestBody) -> dict[str, Any]:
    return body.object() or {}


async def accept(request: Request) -> Response:
    brief, mode, identity = (request.path_params[k] for k in ("brief", "mode", "identity"))
    body = await read_request_body(request)
    return await perform(
        request,
        authenticated_unless_anonymous(request),
        lambda work: agreements.accept(work, brief, mode, identity, _body(body)),
        title=_brief_title("accept agreement for {brief}", brief),
        subject=(mode, identity),
    )


async def withdraw(request: Request) -> Response:
    brief, mode, identity = (request.path_params[k] for k in ("brief", "mode", "identity"))
    body = await read_request_body(request)
    return await perform(
        request,
        Access.AUTHENTICATED,
        lambda work: agreements.withdraw(work, brief, mode, identity, _body(body)),
        title=_brief_title("withdraw agreement for {brief}", brief),
        subject=(mode, identity),
    )


async def get_agreement(request: Request) -> Response:
    brief, mode, identity = (request.path_params[k] for k in ("brief", "mode", "identity"))
    return await perform(
        request,
        Access.AUTHENTICATED,
        lambda work: agreements.get_agreement(work, brief, mode, identity),
        title=_brief_title("get agreements for {brief}", brief),
        subject=(mode, identity),
    )


async def list_agreements(request: Request) -> Response:
    mode, identity = request.path_params["mode"], request.path_params["identity"]
    return await perform(
        request,
        Access.AUTHENTICATED,
        lambda work: agreements.list_agreements(work, mode, identity),
        title=f"get agreements for {mode if mode in MODES else 'unknown mode'}",
        subject=(mode, identity),
    )


routes = [
    path_route(
        "/v1/agreement/{brief}/{mode}/{identity}",
        {"POST": accept, "DELETE": withdraw, "GET": get_agreement},
    ),
    Route(
        "/v1/agreement/{brief}",
        _root_route(lambda w, p, _b: agreements.revoke_everywhere(w, p["brief"])),
        methods=["DELETE"],
    ),
    Route("/v1/agreements/{mode}/{identity}", list_agreements, methods=["GET"]),
]
