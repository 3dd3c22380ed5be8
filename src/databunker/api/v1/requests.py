"""User request routes: the DPO's queue (``/v1/requests``), a person's requests, and one
request to read, approve (``POST``) or cancel (``DELETE``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from databunker.api.v1.body import page, read_request_body
from databunker.api.v1.runtime import Access, path_route, perform
from databunker.services import requests


async def list_requests(request: Request) -> Response:
    offset, limit = page(request)
    status = request.query_params.get("status")
    return await perform(
        request, Access.ROOT, lambda work: requests.list_requests(work, status, offset, limit)
    )


async def list_user_requests(request: Request) -> Response:
    mode, identity = request.path_params["mode"], request.path_params["identity"]
    offset, limit = page(request)
    status = request.query_params.get("status")
    return await perform(
        request,
        Access.AUTHENTICATED,
        lambda work: requests.list_user_requests(work, mode, identity, status, offset, limit),
        title="get user privacy requests",
    )


async def get_request(request: Request) -> Response:
    rtoken = request.path_params["rtoken"]
    return await perform(
        request,
        Access.AUTHENTICATED,
        lambda work: requests.get_request(work, rtoken),
        title="get user request by request token",
    )


async def approve_request(request: Request) -> Response:
    rtoken = request.path_params["rtoken"]
    body = await read_request_body(request)
    return await perform(
        request,
        Access.AUTHENTICATED,
        lambda work: requests.approve_request(work, rtoken, body.object()),
        title="approve user request",
    )


async def cancel_request(request: Request) -> Response:
    rtoken = request.path_params["rtoken"]
    body = await read_request_body(request)
    return await perform(
        request,
        Access.AUTHENTICATED,
        lambda work: requests.cancel_request(work, rtoken, body.object()),
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
