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
from databunker.api.v1.users import done_body, ok_body, record_route
from databunker.services import retention
from databunker.services.context import Work

Body = dict[str, Any]


def _start(work: Work, mode: str, identity: str, body: RequestBody) -> Body:
    given = body.object() or {}
    started = retention.start_expiration(
        work, mode, identity, given.get("status"), given.get("expiration")
    )
    return {"status": "ok", "exptoken": started.exptoken}


def _status(work: Work, mode: str, identity: str, _body: RequestBody) -> Body:
    state = retention.expiration_status(work, mode, identity)
    return {"status": "ok", "exptime": state.exptime, "expstatus": state.expstatus}


def _cancel(work: Work, mode: str, identity: str, _body: RequestBody) -> Body:
    retention.cancel_expiration(work, mode, identity)
    return ok_body()


def _link(title: str, action: Callable[[Work, str], None]) -> Handler:
    """An anonymous link: the expiration token in the path is the credential."""

    async def handler(request: Request) -> Response:
        exptoken = request.path_params["exptoken"]

        def operation(work: Work) -> Body:
            action(work, exptoken)
            return done_body()

        return await perform(request, Access.PUBLIC, operation, title=title)

    return handler


routes = [
    path_route(
        "/v1/exp/start/{mode}/{identity}",
        {
            "POST": record_route(
                "initiate user record expiration by {mode}", _start, access=Access.ROOT
            )
        },
    ),
    path_route(
        "/v1/exp/status/{mode}/{identity}",
        {"GET": record_route("get expiration status by {mode}", _status)},
    ),
    path_route(
        "/v1/exp/cancel/{mode}/{identity}",
        {"DELETE": record_route("clear user expiration by {mode}", _cancel)},
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
