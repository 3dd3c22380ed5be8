"""Data-retention routes: ``/v1/exp/start|status|cancel/{mode}/{identity}`` and the
anonymous links ``/v1/exp/retain/{exptoken}`` and ``/v1/exp/delete/{exptoken}``.

The expiration token is answered once, by ``start``; ``status`` never shows it (Databunker
v1 did, which let a person erase themselves without approval). The links answer
``{"status":"ok","result":"done"}`` where v1 answered a plain ``OK``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from databunker.api.v1.body import RequestBody
from databunker.api.v1.runtime import Access, Handler, path_route, perform
from databunker.api.v1.users import record_route
from databunker.services import retention
from databunker.services.context import Work


def _start(work: Work, mode: str, identity: str, body: RequestBody) -> dict[str, Any]:
    return retention.start_expiration(work, mode, identity, body.object())


def _link(title: str, action: Callable[[Work, str], dict[str, Any]]) -> Handler:
    """An anonymous link: the expiration token in the path is the credential."""

    async def handler(request: Request) -> Response:
        exptoken = request.path_params["exptoken"]
        return await perform(
            request, Access.PUBLIC, lambda work: action(work, exptoken), title=title
        )

    return handler


routes = [
    path_route(
        "/v1/exp/start/{mode}/{identity}",
        {"POST": record_route("initiate user record expiration by {mode}", _start)},
    ),
    path_route(
        "/v1/exp/status/{mode}/{identity}",
        {
            "GET": record_route(
                "get expiration status by {mode}",
                lambda w, m, i, _b: retention.expiration_status(w, m, i),
            )
        },
    ),
    path_route(
        "/v1/exp/cancel/{mode}/{identity}",
        {
            "DELETE": record_route(
                "clear user expiration by {mode}",
                lambda w, m, i, _b: retention.cancel_expiration(w, m, i),
            )
        },
    ),
    Route(
        "/v1/exp/retain/{exptoken}",
        _link("retain user data by exptoken", retention.retain_by_link),
        methods=["GET"],
    ),
    Route(
        "/v1/exp/delete/{exptoken}",
        _link("delete user data by exptoken", retention.delete_by_link),
        methods=["GET"],
    ),
]
