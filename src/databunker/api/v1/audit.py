"""Audit routes: a person's trail, the whole trail (root), and one event's values."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from databunker.api.v1.body import page
from databunker.api.v1.runtime import Access, perform
from databunker.services import audit


async def list_user_events(request: Request) -> Response:
    token = request.path_params["token"]
    offset, limit = page(request)
    return await perform(
        request,
        Access.AUTHENTICATED,
        lambda work: audit.list_user_events(work, token, offset, limit),
        title="view audit events",
        subject=("token", token),
    )


async def list_all_events(request: Request) -> Response:
    offset, limit = page(request)
    return await perform(
        request, Access.ROOT, lambda work: audit.list_all_events(work, offset, limit)
    )


async def get_event(request: Request) -> Response:
    atoken = request.path_params["atoken"]
    return await perform(
        request,
        Access.AUTHENTICATED,
        lambda work: audit.get_event(work, atoken),
        title="view audit event",
    )


routes = [
    Route("/v1/audit/list/{token}", list_user_events, methods=["GET"]),
    Route("/v1/audit/admin", list_all_events, methods=["GET"]),
    Route("/v1/audit/get/{atoken}", get_event, methods=["GET"]),
]
