"""Shared-record routes: ``/v1/sharedrecord/{mode}/{identity}`` and ``/v1/get/{record}``.

The read is anonymous: the record token in the path is the credential.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from databunker.api.v1.body import RequestBody
from databunker.api.v1.runtime import Access, path_route, perform
from databunker.api.v1.users import record_route
from databunker.services import sharing
from databunker.services.context import Work
from databunker.services.sharing import SharedRecordView


def _shared_body(view: SharedRecordView) -> dict[str, Any]:
    body: dict[str, Any] = {"status": "ok"}
    if view.app is not None:
        body["app"] = view.app
    elif view.session is not None:
        body["session"] = view.session
    body["data"] = view.data
    return body


def _create(work: Work, mode: str, identity: str, body: RequestBody) -> dict[str, Any]:
    created = sharing.create_shared_record(work, mode, identity, body.object())
    return {"status": "ok", "record": created.record}


async def get_shared_record(request: Request) -> Response:
    record = request.path_params["record"]
    return await perform(
        request,
        Access.PUBLIC,
        lambda work: _shared_body(sharing.get_shared_record(work, record)),
        title="get shareable record by token",
    )


routes = [
    path_route(
        "/v1/sharedrecord/{mode}/{identity}",
        {"POST": record_route("create shareable record by {mode}", _create)},
    ),
    Route("/v1/get/{record}", get_shared_record, methods=["GET"]),
]
