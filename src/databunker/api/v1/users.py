"""User routes: ``/v1/user``, ``/v1/user/{mode}/{identity}`` and ``/v1/users``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from databunker.api.v1.body import RequestBody, page, read_request_body
from databunker.api.v1.runtime import Access, Handler, path_route, perform
from databunker.errors import BadRequest
from databunker.services import users
from databunker.services.context import Work
from databunker.services.identity import MODES
from databunker.services.results import Page, RequestOpened
from databunker.services.users import UserRecord, UserSaved

__all__ = [
    "Handler",
    "audit_title",
    "done_body",
    "ok_body",
    "record_route",
    "request_body",
    "routes",
]

Body = dict[str, Any]


def ok_body() -> Body:
    return {"status": "ok"}


def done_body() -> Body:
    """What v1 answers for a change that was made at once."""
    return {"status": "ok", "result": "done"}


def request_body(opened: RequestOpened) -> Body:
    """What v1 answers for a change that became (or met) a request for approval."""
    result = "request-exists" if opened.existed else "request-created"
    return {"status": "ok", "result": result, "rtoken": opened.rtoken}


def _saved_body(saved: UserSaved | RequestOpened) -> Body:
    if isinstance(saved, RequestOpened):
        return request_body(saved)
    return {"status": "ok", "token": saved.token}


def _user_body(record: UserRecord) -> Body:
    return {"status": "ok", "token": record.token, "data": record.profile}


def _users_body(found: Page[UserRecord]) -> Body:
    rows = [{"token": r.token, "private": r.profile} for r in found.rows]
    return {"status": "ok", "total": found.total, "rows": rows}


def _erased_body(outcome: RequestOpened | None) -> Body:
    return done_body() if outcome is None else request_body(outcome)


def audit_title(template: str, mode: str) -> str:
    """An audit title naming the lookup mode (only a real mode: URL text is not trusted)."""
    return template.format(mode=mode if mode in MODES else "unknown mode")


def record_route(
    title: str,
    action: Callable[[Work, str, str, RequestBody], Body],
    access: Access = Access.AUTHENTICATED,
) -> Handler:
    """A handler for ``/{mode}/{identity}`` routes (root or the person unless ``access``
    says otherwise), audited."""

    async def handler(request: Request) -> Response:
        mode, identity = request.path_params["mode"], request.path_params["identity"]
        body = await read_request_body(request)
        return await perform(
            request,
            access,
            lambda work: action(work, mode, identity, body),
            title=audit_title(title, mode),
            subject=(mode, identity),
        )

    return handler


def _change_user(work: Work, mode: str, identity: str, body: RequestBody) -> Body:
    change = body.document()
    if change is None:
        raise BadRequest("empty request body")
    return _saved_body(users.change_user(work, mode, identity, change))


async def create_user(request: Request) -> Response:
    body = await read_request_body(request)

    def operation(work: Work) -> Body:
        profile = body.object()
        if profile is None:
            raise BadRequest("empty request body")
        return _saved_body(users.create_user(work, profile))

    return await perform(request, Access.CREATE_USER, operation, title="create user record")


async def list_users(request: Request) -> Response:
    offset, limit = page(request)
    return await perform(
        request,
        Access.ROOT,
        lambda work: _users_body(users.list_users(work, offset, limit)),
        title="list user records",
    )


routes = [
    Route("/v1/user", create_user, methods=["POST"]),
    Route("/v1/users", list_users, methods=["POST"]),
    path_route(
        "/v1/user/{mode}/{identity}",
        {
            "GET": record_route(
                "get user record by {mode}",
                lambda w, m, i, _b: _user_body(users.get_user(w, m, i)),
            ),
            "PUT": record_route("change user record by {mode}", _change_user),
            "DELETE": record_route(
                "delete user record by {mode}",
                lambda w, m, i, _b: _erased_body(users.erase_user(w, m, i)),
            ),
        },
    ),
]
