"""User app record routes: ``/v1/userapp/{mode}/{identity}[/{app}]`` and ``/v1/userapps``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from databunker.api.v1.body import RequestBody, read_request_body
from databunker.api.v1.runtime import Access, path_route, perform
from databunker.api.v1.users import Handler, audit_title, record_route
from databunker.errors import BadRequest
from databunker.services import apps
from databunker.services.context import Work

AppAction = Callable[[Work, str, str, str, RequestBody], dict[str, Any]]


def app_route(title: str, action: AppAction) -> Handler:
    """A handler for ``/{mode}/{identity}/{app}``: root or the person, audited."""

    async def handler(request: Request) -> Response:
        params = request.path_params
        mode, identity, app = params["mode"], params["identity"], params["app"]
        body = await read_request_body(request)
        return await perform(
            request,
            Access.AUTHENTICATED,
            lambda work: action(work, mode, identity, app, body),
            title=audit_title(title, mode),
            subject=(mode, identity),
        )

    return handler


def _create(work: Work, mode: str, identity: str, app: str, body: RequestBody) -> dict[str, Any]:
    record = body.object()
    if record is None:
        raise BadRequest("empty body")
    return apps.create_app_record(work, mode, identity, app, record)


def _change(work: Work, mode: str, identity: str, app: str, body: RequestBody) -> dict[str, Any]:
    change = body.document()
    if change is None:
        raise BadRequest("empty body")
    return apps.change_app_record(work, mode, identity, app, change)


def _get(work: Work, mode: str, identity: str, app: str, _body: RequestBody) -> dict[str, Any]:
    return apps.get_app_record(work, mode, identity, app)


def _delete(work: Work, mode: str, identity: str, app: str, _body: RequestBody) -> dict[str, Any]:
    return apps.delete_app_record(work, mode, identity, app)


async def list_app_names(request: Request) -> Response:
    return await perform(request, Access.ROOT, apps.list_app_names)


routes = [
    path_route(
        "/v1/userapp/{mode}/{identity}/{app}",
        {
            "POST": app_route("create user app record by {mode}", _create),
            "GET": app_route("get user app record by {mode}", _get),
            "PUT": app_route("change user app record by {mode}", _change),
            "DELETE": app_route("delete user app record by {mode}", _delete),
        },
    ),
    path_route(
        "/v1/userapp/{mode}/{identity}",
        {
            "GET": record_route(
                "get user app list by {mode}", lambda w, m, i, _b: apps.list_user_apps(w, m, i)
            ),
        },
    ),
    Route("/v1/userapps", list_app_names, methods=["GET"]),
]
