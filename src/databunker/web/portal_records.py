"""Portal pages where a person looks through what the vault keeps about them: application
records, sessions, privacy requests (with the change each one proposes) and the history.

Each page reads through the same service call as its API route and files the same audit
title (see ``api/apps.py``, ``api/sessions.py``, ``api/requests.py``, ``api/audit.py``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from databunker.errors import BadRequest
from databunker.services import apps, audit, documents, sessions
from databunker.services import requests as user_requests
from databunker.services.context import Work
from databunker.services.requests import RequestDetail
from databunker.web import history, i18n, pages, wording
from databunker.web.pages import Payload
from databunker.web.portal_base import (
    as_person,
    is_secret,
    notice,
    page,
    shown_value,
)

HISTORY_PAGE = 50  # lines of the history, not events
SESSIONS_SHOWN = 100
REQUESTS_SHOWN = 100
OFFSET = re.compile(r"[0-9]{1,9}")
# Changes that propose a new version of a JSON document: shown field by field.
DOCUMENT_CHANGES = ("change-profile", "change-app-data")


# --- application records -------------------------------------------------------------------


def _apps_view(work: Work, user_token: str) -> Payload:
    names = apps.list_user_apps(work, "token", user_token).apps
    records = [
        {"app": name, "data": apps.get_app_record(work, "token", user_token, name).data}
        for name in sorted(names)
    ]
    work.audit.record(app=None)  # one event for the list, not filed under its last app
    return {"records": records}


@page
async def apps_page(request: Request) -> Response:
    view = await as_person(request, _apps_view, "get user app list by token")
    speaker = i18n.speaker(request)
    records = [
        {"app": r["app"], "fields": readable_fields(speaker, r["data"])} for r in view["records"]
    ]
    return pages.render(request, "apps.html", {"records": records})


# --- sessions ------------------------------------------------------------------------------


# Keys of session data that hold identifiers, not anything a person recognises.
HIDDEN_SESSION_KEYS = frozenset({"token", "usertoken", "user_token", "session", "sessionid"})


def readable_fields(
    speaker: i18n.Speaker, document: Any, hidden: set[str] | frozenset[str] = frozenset()
) -> list[dict[str, Any]]:
    """A JSON value as labelled lines of text, nested objects flattened into their fields
    (``Address > City``); keys in ``hidden`` and values that are UUIDs are left out."""
    found: list[dict[str, Any]] = []

    def walk(value: Any, path: tuple[str, ...]) -> None:
        if isinstance(value, dict):
            for name in sorted(value):
                if name.lower() not in hidden:
                    walk(value[name], (*path, name))
            return
        if isinstance(value, str) and UUID.fullmatch(value):
            return
        if isinstance(value, list):
            text = ", ".join(v if isinstance(v, str) else json.dumps(v) for v in value)
        elif isinstance(value, str):
            text = value
        else:
            text = json.dumps(value, ensure_ascii=False)
        label = wording.path_label(speaker, path)
        found.append(
            {"name": label, "secret": any(is_secret(p) for p in path), "text": text, "block": False}
        )

    walk(document, ())
    return found


UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _sessions_view(work: Work, user_token: str) -> Payload:
    found = sessions.list_user_sessions(work, "token", user_token, 0, SESSIONS_SHOWN)
    return {"rows": found.rows, "total": found.total}


@page
async def sessions_page(request: Request) -> Response:
    view = await as_person(request, _sessions_view, "get all user sessions")
    speaker = i18n.speaker(request)
    rows = [
        {
            "created": row.created,
            "when": row.updated,
            "expires": row.expires,
            "fields": readable_fields(speaker, row.data, HIDDEN_SESSION_KEYS),
        }
        for row in view["rows"]
    ]
    return pages.render(request, "sessions.html", {"rows": rows, "total": view["total"]})


# --- requests ------------------------------------------------------------------------------


@page
async def requests_page(request: Request) -> Response:
    view = await as_person(
        request,
        lambda work, token: user_requests.list_user_requests(
            work, "token", token, None, 0, REQUESTS_SHOWN
        ),
        "get user privacy requests",
    )
    speaker = i18n.speaker(request)
    rows = [
        {
            "rtoken": row.rtoken,
            "kind": wording.request_kind(speaker, row.action),
            "about": row.app or row.brief or "",
            "status": wording.request_status(speaker, row.status),
            "open": row.status == "open",
            "created": row.creationtime,
            "reason": row.reason or "",
        }
        for row in view.rows
    ]
    context = {"rows": rows, "notice": notice(request)}
    return pages.render(request, "requests.html", context)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def field_changes(current: dict[str, Any], proposed: dict[str, Any]) -> list[dict[str, Any]]:
    """The fields whose value differs, each with its current and proposed value (None when
    the field is absent on that side)."""
    changes = []
    for name in sorted(current.keys() | proposed.keys()):
        before, after = current.get(name), proposed.get(name)
        if name in current and name in proposed and _canonical(before) == _canonical(after):
            continue
        changes.append(
            {
                "name": wording.humanised(name),
                "secret": is_secret(name),
                "before": shown_value(before) if name in current else None,
                "after": shown_value(after) if name in proposed else None,
            }
        )
    return changes


def _proposal(found: RequestDetail) -> dict[str, Any]:
    """What the request would do to the person's data, ready to show."""
    change = found.change
    original = found.original
    if found.action not in DOCUMENT_CHANGES or change is None:
        return {"diff": None, "raw": None}
    if isinstance(original, dict):
        try:
            proposed = documents.apply_change(original, change)
        except BadRequest:
            pass  # the data moved on since; the change is shown as it was asked
        else:
            return {"diff": field_changes(original, proposed), "raw": None}
    return {"diff": None, "raw": shown_value(change)}


@page
async def request_page(request: Request) -> Response:
    rtoken = request.path_params["rtoken"]
    found: RequestDetail = await as_person(
        request,
        lambda work, _token: user_requests.get_request(work, rtoken),
        "get user request by request token",
    )
    speaker = i18n.speaker(request)
    context = {
        "request": found.request,
        "label": wording.request_kind(speaker, found.action),
        "status": wording.request_status(speaker, found.request.status),
        **_proposal(found),
    }
    return pages.render(request, "request.html", context)


@page
async def cancel_request(request: Request) -> Response:
    fields = await pages.check_csrf(request)
    rtoken = fields.get("rtoken", "")
    await as_person(
        request,
        lambda work, _token: user_requests.cancel_request(work, rtoken, None),
        "cancel user request",
    )
    return pages.redirect(request, "/requests?done=canceled")


# --- history -------------------------------------------------------------------------------


def parse_offset(request: Request) -> int:
    value = request.query_params.get("offset", "")
    if value == "":
        return 0
    if OFFSET.fullmatch(value) is None:
        raise BadRequest("bad offset")
    return int(value)


def _history_link(offset: int) -> str:
    return "/audit" if offset <= 0 else f"/audit?offset={offset}"


def _history_view(speaker: i18n.Speaker, offset: int) -> Callable[[Work, str], history.HistoryPage]:
    """The page of the person's history that starts at line ``offset``. Lines fold events
    together, so the whole trail is read to count them."""

    def operation(work: Work, user_token: str) -> history.HistoryPage:
        return history.history_page(
            speaker, audit.user_trail(work, user_token), offset, HISTORY_PAGE
        )

    return operation


@page
async def audit_page(request: Request) -> Response:
    offset = parse_offset(request)
    speaker = i18n.speaker(request)
    shown: history.HistoryPage = await as_person(
        request, _history_view(speaker, offset), "view audit events"
    )
    last = offset + shown.shown
    days = [
        {
            "day": day.day,
            "lines": [{"when": line.when, "text": line.sentence(speaker)} for line in day.lines],
        }
        for day in shown.days
    ]
    context = {
        "days": days,
        "total": shown.total,
        "first": offset + 1,
        "last": last,
        "newer": _history_link(max(offset - HISTORY_PAGE, 0)) if offset > 0 else None,
        "older": _history_link(offset + HISTORY_PAGE) if last < shown.total else None,
    }
    return pages.render(request, "audit.html", context)


routes: list[Route] = [
    Route("/apps", apps_page, methods=["GET"]),
    Route("/sessions", sessions_page, methods=["GET"]),
    Route("/requests", requests_page, methods=["GET"]),
    Route("/requests/cancel", cancel_request, methods=["POST"]),
    Route("/requests/{rtoken}", request_page, methods=["GET"]),
    Route("/audit", audit_page, methods=["GET"]),
]
