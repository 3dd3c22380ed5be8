"""Session routes: ``/v1/session/{session}`` and ``/v1/sessions/{mode}/{identity}``.

Wire behaviour ``@databunker/session-store`` relies on: POST is an upsert (``set`` and
``touch``), GET answers 404 ``not found`` for a session that is missing or expired (the store
then starts a new one), DELETE always succeeds.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from databunker.api.v1.body import page, read_request_body
from databunker.api.v1.runtime import Access, path_route, perform
from databunker.errors import BadRequest
from databunker.services import sessions
from databunker.services.context import Work
from databunker.services.results import Page
from databunker.services.sessions import SessionView


def _session_body(view: SessionView) -> dict[str, Any]:
    return {"status": "ok", "session": view.session, "when": view.updated, "data": view.data}


def _sessions_body(found: Page[SessionView]) -> dict[str, Any]:
    rows = [{"when": v.updated, "session": v.session, "data": v.data} for v in found.rows]
    return {"status": "ok", "total": found.total, "rows": rows}


async def upsert_session(request: Request) -> Response:
    session = request.path_params["session"]
    body = await read_request_body(request)

    def operation(work: Work) -> dict[str, Any]:
        data = body.object()
        if data is None:
            raise BadRequest("empty body")
        sessions.upsert_session(work, session, data)
        return {"status": "ok", "session": session}

    # Audited by the service, and only when the session is linked to a person.
    return await perform(request, Access.ROOT, operation)


async def get_session(request: Request) -> Response:
    session = request.path_params["session"]
    return await perform(
        request,
        Access.AUTHENTICATED,
        lambda work: _session_body(sessions.get_session(work, session)),
        title="get session",
    )


async def delete_session(request: Request) -> Response:
    session = request.path_params["session"]

    def operation(work: Work) -> dict[str, Any]:
        sessions.delete_session(work, session)
        return {"status": "ok"}

    return await perform(request, Access.ROOT, operation, title="delete session")


async def list_user_sessions(request: Request) -> Response:
    mode, identity = request.path_params["mode"], request.path_params["identity"]
    offset, limit = page(request)
    return await perform(
        request,
        Access.AUTHENTICATED,
        lambda work: _sessions_body(
            sessions.list_user_sessions(work, mode, identity, offset, limit)
        ),
        title="get all user sessions",
        subject=(mode, identity),
    )


routes = [
    path_route(
        "/v1/session/{session}",
        {"POST": upsert_session, "GET": get_session, "DELETE": delete_session},
    ),
    path_route("/v1/sessions/{mode}/{identity}", {"GET": list_user_sessions}),
]
