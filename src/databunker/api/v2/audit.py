"""v2 audit (spec §2.10): ``AuditListUserEvents``, ``AuditGetEvent``.

The same trail as v1's ``/v1/audit``: a person's events, newest first, for root or the
person's own token, addressed by any ``mode`` (v1: by token only); one event with the
values it kept and the ``request_metadata`` its caller sent. ``timestamp`` is RFC 3339 UTC
text, as the spec types it (decision A4).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from databunker.api.v2.fields import Identified, Paged
from databunker.api.v2.registry import USER_NOT_FOUND, Access, Missing, Payload, V2Body, V2Operation
from databunker.errors import NotFound
from databunker.services import audit, records
from databunker.services.audit import AuditEntry
from databunker.services.context import Work

__all__ = ["OPERATIONS", "event_row", "timestamp"]

EVENT_NOT_FOUND = "The audit event was not found"


class ListBody(Identified, Paged):
    pass


class EventAddressed(V2Body):
    auditeventuuid: str


def timestamp(when: int) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_row(entry: AuditEntry) -> Payload:
    return {
        "auditeventuuid": entry.atoken,
        "eventtype": entry.title,
        "timestamp": timestamp(entry.when),
        "status": entry.status,
        "more": entry.has_values,
    }


def list_of_user(work: Work, body: ListBody) -> Payload:
    try:
        row, _key, _profile = records.resolve_user(work, body.mode, body.identity)
    except NotFound as exc:
        raise Missing(USER_NOT_FOUND) from exc
    offset, limit = body.page()
    found = audit.list_user_events(work, row.token, offset, limit)
    work.audit.record(mode=body.mode)  # reading the trail filed the event by token
    return {"total": found.total, "rows": [event_row(entry) for entry in found.rows]}


def get(work: Work, body: EventAddressed) -> Payload:
    detail = audit.get_event_detail(work, body.auditeventuuid)
    entry, values = detail.entry, detail.values
    details: dict[str, Any] = {"token": entry.user_token or "", "who": entry.accessor or ""}
    if entry.mode:
        details["mode"] = entry.mode
    if entry.who is not None:
        details["identity"] = entry.who
    details.update(status=entry.status, message=entry.msg or "")
    if entry.app:
        details["appname"] = entry.app
    for name, value in (
        ("request_metadata", values.request_metadata),
        ("before", values.before),
        ("after", values.after),
    ):
        if value is not None:
            details[name] = value
    return {
        "auditeventuuid": entry.atoken,
        "eventtype": entry.title,
        "timestamp": timestamp(entry.when),
        "details": details,
    }


OPERATIONS = (
    V2Operation(
        "AuditListUserEvents",
        ListBody,
        Access.AUTHENTICATED,
        list_of_user,
        title="view audit events",
    ),
    V2Operation(
        "AuditGetEvent",
        EventAddressed,
        Access.AUTHENTICATED,
        get,
        title="view audit event",
        not_found=EVENT_NOT_FOUND,
    ),
)
