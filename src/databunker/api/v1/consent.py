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
from databunker.api.v1.users import ok_body, request_body
from databunker.services import agreements, legal
from databunker.services.agreements import AgreementView
from databunker.services.context import Work
from databunker.services.identity import MODES
from databunker.services.results import Page, RequestOpened

Body = dict[str, Any]


def agreement_body(view: AgreementView) -> Body:
    """An agreement as v1 shows it: optional fields only when set."""
    body: Body = {
        "brief": view.brief,
        "status": view.status,
        "mode": view.mode,
        "token": view.token,
    }
    if view.who is not None:
        body["who"] = view.who
    for name, value in (
        ("referencecode", view.referencecode),
        ("lastmodifiedby", view.lastmodifiedby),
        ("agreementmethod", view.agreementmethod),
    ):
        if value is not None:
            body[name] = value
    body.update(
        creationtime=view.creationtime,
        starttime=view.starttime,
        endtime=view.endtime,
        when=view.when,
    )
    return body


def _withdrawn_body(outcome: RequestOpened | None) -> Body:
    return ok_body() if outcome is None else request_body(outcome)


def _agreements_body(found: Page[AgreementView]) -> Body:
    return {"status": "ok", "total": found.total, "rows": [agreement_body(r) for r in found.rows]}


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


def _agreement_input(body: RequestBody) -> agreements.AgreementInput:
    """The v1 body's terms of a consent."""
    given = _body(body)
    return agreements.AgreementInput(
        **{name: given.get(name) for name in agreements.AgreementInput.__dataclass_fields__}
    )


async def accept(request: Request) -> Response:
    brief, mode, identity = (request.path_params[k] for k in ("brief", "mode", "identity"))
    body = await read_request_body(request)

    def operation(work: Work) -> Body:
        agreements.accept(work, brief, mode, identity, _agreement_input(body))
        return ok_body()

    return await perform(
        request,
        authenticated_unless_anonymous(request),
        operation,
        title=_brief_title("accept agreement for {brief}", brief),
        subject=(mode, identity),
    )


async def withdraw(request: Request) -> Response:
    brief, mode, identity = (request.path_params[k] for k in ("brief", "mode", "identity"))
    body = await read_request_body(request)
    return await perform(
        request,
        Access.AUTHENTICATED,
        lambda work: _withdrawn_body(
            agreements.withdraw(work, brief, mode, identity, _body(body).get("lastmodifiedby"))
        ),
        title=_brief_title("withdraw agreement for {brief}", brief),
        subject=(mode, identity),
    )


async def get_agreement(request: Request) -> Response:
    brief, mode, identity = (request.path_params[k] for k in ("brief", "mode", "identity"))
    return await perform(
        request,
        Access.AUTHENTICATED,
        lambda work: {
            "status": "ok",
            "data": agreement_body(agreements.get_agreement(work, brief, mode, identity)),
        },
        title=_brief_title("get agreements for {brief}", brief),
        subject=(mode, identity),
    )


async def list_agreements(request: Request) -> Response:
    mode, identity = request.path_params["mode"], request.path_params["identity"]
    return await perform(
        request,
        Access.AUTHENTICATED,
        lambda work: _agreements_body(agreements.list_agreements(work, mode, identity)),
        title=f"get agreements for {mode if mode in MODES else 'unknown mode'}",
        subject=(mode, identity),
    )


def _revoke_everywhere(work: Work, params: dict[str, Any], _body: RequestBody) -> Body:
    agreements.revoke_everywhere(work, params["brief"])
    return ok_body()


routes = [
    path_route(
        "/v1/agreement/{brief}/{mode}/{identity}",
        {"POST": accept, "DELETE": withdraw, "GET": get_agreement},
    ),
    Route(
        "/v1/agreement/{brief}",
        _root_route(_revoke_everywhere),
        methods=["DELETE"],
    ),
    Route("/v1/agreements/{mode}/{identity}", list_agreements, methods=["GET"]),
]
