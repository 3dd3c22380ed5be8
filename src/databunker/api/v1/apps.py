"""User app record routes: ``/v1/userapp/{mode}/{identity}[/{app}]`` and ``/v1/userapps``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from databunker.api.v1.body import RequestBody, read_request_body
from databunker.api.v1.runtime import Access, path_route, perform
from databunker.api.v1.users import Handler, audit_title, record_route, request_body
from databunker.errors import BadRequest
from databunker.services import apps
from databunker.services.apps import AppRecordSaved
from databunker.services.context import Work
from databunker.services.results import RequestOpened

Body = dict[str, Any]
AppAction = Callable[[Work, str, str, str, RequestBody], Body]


def _saved_body(saved: AppRecordSaved | RequestOpened) -> Body:
    if isinstance(saved, RequestOpened):
        return request_body(saved)
    return {"status": "ok", "token": saved.token}


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


def _create(work: Work, mode: str, identity: str, app: str, body: RequestBody) -> Body:
    record = body.object()
    if record is None:
        raise BadRequest("empty body")
    return _saved_body(apps.create_app_record(work, mode, identity, app, record))


def _change(work: Work, mode: str, identity: str, app: str, body: RequestBody) -> Body:
    change = body.document()
    if change is None:
        raise BadRequest("empty body")
    return _saved_body(apps.change_app_record(work, mode, identity, app, change))


def _get(work: Work, mode: str, identity: str, app: str, _body: RequestBody) -> Body:
    found = apps.get_app_record(work, mode, identity, app)
    return {"status": "ok", "token": found.token, "data": found.data}


def _delete(work: Work, mode: str, identity: str, app: str, _body: RequestBody) -> Body:
    return _saved_body(apps.delete_app_record(work, mode, identity, app))


def _user_apps(work: Work, mode: str, identity: str, _body: RequestBody) -> Body:
    found = apps.list_user_apps(work, mode, identity)
    return {"status": "ok", "token": found.token, "apps": found.apps}


async def list_app_names(request: Request) -> Response:
    return await perform(
        request, Access.ROOT, lambda work: {"status": "ok", "apps": apps.list_app_names(work)}
    )


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
            "GET": record_route("get user app list by {mode}", _user_apps),
        },
    ),
    Route("/v1/userapps", list_app_names, methods=["GET"]),
]
