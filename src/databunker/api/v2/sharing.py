"""v2 shared records (spec §2.13): ``SharedRecordCreate``, ``SharedRecordGet``.

The same shared records as v1's ``/v1/sharedrecord`` and ``/v1/get``: v2 names the app
``appname`` and the deadline ``finaltime``, and answers an unknown or expired record with
404 (v1: 403). Reading one needs no token; it is audited under the person it shows.
"""

from __future__ import annotations

from typing import Any

from databunker.api.v2.fields import Identified, TimeValue
from databunker.api.v2.registry import Access, Missing, Payload, V2Body, V2Operation
from databunker.api.v2.sessions import lifetime
from databunker.errors import AccessDenied, NotFound
from databunker.services import sharing
from databunker.services.context import Work

__all__ = ["OPERATIONS"]

RECORD_NOT_FOUND = "The shared record was not found"


class SharedRecordCreateBody(Identified):
    fields: str | list[str] | None = None
    partner: str | None = None
    appname: str | None = None
    finaltime: TimeValue = None


class SharedRecordAddressed(V2Body):
    recorduuid: str


def create(work: Work, body: SharedRecordCreateBody) -> Payload:
    seconds = lifetime(work, body.finaltime, None)
    given: dict[str, Any] = {
        "fields": body.fields,
        "partner": body.partner,
        "app": body.appname,
        "expiration": seconds,
    }
    try:
        created = sharing.create_shared_record(
            work, body.mode, body.identity, {k: v for k, v in given.items() if v is not None}
        )
    except NotFound as exc:
        if exc.message != "app not found":
            raise
        raise Missing("The app record was not found") from exc
    return {"recorduuid": created.record}


def get(work: Work, body: SharedRecordAddressed) -> Payload:
    try:
        view = sharing.get_shared_record(work, body.recorduuid)
    except AccessDenied as exc:  # unknown or expired: nothing to learn either way
        raise Missing(RECORD_NOT_FOUND) from exc
    return {"data": view.data}


OPERATIONS = (
    V2Operation(
        "SharedRecordCreate",
        SharedRecordCreateBody,
        Access.AUTHENTICATED,
        create,
        title="create shareable record by {mode}",
    ),
    V2Operation(
        "SharedRecordGet",
        SharedRecordAddressed,
        Access.PUBLIC,
        get,
        title="get shareable record by token",
        not_found=RECORD_NOT_FOUND,
    ),
)
