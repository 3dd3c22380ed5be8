"""User request routes: the DPO's queue (``/v1/requests``), a person's requests, and one
request to read, approve (``POST``) or cancel (``DELETE``)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from databunker.api.v1.body import page, read_request_body
from databunker.api.v1.consent import agreement_body
from databunker.api.v1.runtime import Access, path_route, perform
from databunker.api.v1.users import done_body
from databunker.services import requests
from databunker.services.agreements import AgreementView
from databunker.services.audit import REQUEST_SUBJECT
from databunker.services.context import Work
from databunker.services.requests import RequestDetail, RequestSummary
from databunker.services.results import Page

Body = dict[str, Any]


def summary_body(summary: RequestSummary) -> Body:
    """A request as v1 lists show it (the export adds its ``change``)."""
    body: Body = {
        "rtoken": summary.rtoken,
        "token": summary.token,
        "action": summary.action,
        "status": summary.status,
    }
    for name, value in (("app", summary.app), ("brief", summary.brief), ("reason", summary.reason)):
        if value is not None:
            body[name] = value
    body.update(creationtime=summary.creationtime, when=summary.when, more=summary.more)
    return body


def _page_body(found: Page[RequestSummary]) -> Body:
    return {"status": "ok", "total": found.total, "rows": [summary_body(r) for r in found.rows]}


def _detail_body(detail: RequestDetail) -> Body:
    summary = detail.request
    body: Body = {"status": "ok", "rtoken": summary.rtoken, "action": summary.action}
    if summary.app is not None:
        body["app"] = summary.app
    if summary.brief is not None:
        body["brief"] = summary.brief
    original = detail.original
    body["original"] = agreement_body(original) if isinstance(original, AgreementView) else original
    if detail.change is not None:
        body["change"] = detail.change
    body["request"] = summary_body(summary)
    return body


async def list_requests(request: Request) -> Response:
    offset, limit = page(request)
    status = request.query_params.get("status")
    return await perform(
        request,
        Access.ROOT,
        lambda work: _page_body(requests.list_requests(work, status, offset, limit)),
    )


async def list_user_requests(request: Request) -> Response:
    mode, identity = request.path_params["mode"], request.path_params["identity"]
    offset, limit = page(request)
    status = request.query_params.get("status")
    return await perform(
        request,
        Access.AUTHENTICATED,
        lambda work: _page_body(
            requests.list_user_requests(work, mode, identity, status, offset, limit)
        ),
        title="get user privacy requests",
    )


async def get_request(request: Request) -> Response:
    rtoken = request.path_params["rtoken"]
    return await perform(
        request,
        Access.AUTHENTICATED,
        lambda work: _detail_body(requests.get_request(work, rtoken)),
        title="get user request by request token",
    )


async def approve_request(request: Request) -> Response:
    rtoken = request.path_params["rtoken"]
    body = await read_request_body(request)

    def operation(work: Work) -> Body:
        requests.approve_request(work, rtoken, body.object())
        return done_body()

    return await perform(
        request,
        # Root only: a person never approves, not even their own request. A refused attempt
        # is filed under the person the request belongs to.
        Access.ROOT,
        operation,
        title="approve user request",
        subject=(REQUEST_SUBJECT, rtoken),
    )


async def cancel_request(request: Request) -> Response:
    rtoken = request.path_params["rtoken"]
    body = await read_request_body(request)

    def operation(work: Work) -> Body:
        requests.cancel_request(work, rtoken, body.object())
        return done_body()

    return await perform(
        request,
        Access.AUTHENTICATED,
        operation,
        title="cancel user request",
    )


routes = [
    Route("/v1/requests", list_requests, methods=["GET"]),
    Route("/v1/requests/{mode}/{identity}", list_user_requests, methods=["GET"]),
    path_route(
        "/v1/request/{rtoken}",
        {"GET": get_request, "POST": approve_request, "DELETE": cancel_request},
    ),
]
