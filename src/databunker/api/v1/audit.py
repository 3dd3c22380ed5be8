"""Audit routes: a person's trail, the whole trail (root), and one event's values."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from databunker.api.v1.body import page
from databunker.api.v1.runtime import Access, perform
from databunker.services import audit
from databunker.services.audit import AuditEntry, AuditValues
from databunker.services.results import Page


def audit_entry_body(entry: AuditEntry) -> dict[str, Any]:
    """One event as v1 lists it: keys without a value are left out."""
    body: dict[str, Any] = {"atoken": entry.atoken, "when": entry.when}
    if entry.who is not None:
        body["who"] = entry.who
    if entry.mode:
        body["mode"] = entry.mode
    if entry.accessor:
        body["identity"] = entry.accessor
    if entry.user_token:
        body["record"] = entry.user_token
    if entry.app:
        body["app"] = entry.app
    body["title"] = entry.title
    body["status"] = entry.status
    if entry.msg:
        body["msg"] = entry.msg
    body["more"] = entry.has_values
    return body


def _trail_body(found: Page[AuditEntry]) -> dict[str, Any]:
    rows = [audit_entry_body(entry) for entry in found.rows]
    return {"status": "ok", "total": found.total, "rows": rows}


def _values_body(values: AuditValues) -> dict[str, Any]:
    event: dict[str, Any] = {}
    if values.before is not None:
        event["before"] = values.before
    if values.after is not None:
        event["after"] = values.after
    if values.debug:
        event["debug"] = values.debug
    if values.request_metadata is not None:
        event["request_metadata"] = values.request_metadata
    return {"status": "ok", "event": event}


async def list_user_events(request: Request) -> Response:
    token = request.path_params["token"]
    offset, limit = page(request)
    return await perform(
        request,
        Access.AUTHENTICATED,
        lambda work: _trail_body(audit.list_user_events(work, token, offset, limit)),
        title="view audit events",
        subject=("token", token),
    )


async def list_all_events(request: Request) -> Response:
    offset, limit = page(request)
    return await perform(
        request,
        Access.ROOT,
        lambda work: _trail_body(audit.list_all_events(work, offset, limit)),
    )


async def get_event(request: Request) -> Response:
    atoken = request.path_params["atoken"]
    return await perform(
        request,
        Access.AUTHENTICATED,
        lambda work: _values_body(audit.get_event(work, atoken)),
        title="view audit event",
    )


routes = [
    Route("/v1/audit/list/{token}", list_user_events, methods=["GET"]),
    Route("/v1/audit/admin", list_all_events, methods=["GET"]),
    Route("/v1/audit/get/{atoken}", get_event, methods=["GET"]),
]
