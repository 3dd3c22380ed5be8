"""The admin portal for DPOs (``/admin``): sign-in, dashboard, the request queue, the audit trail.

A DPO signs in with the root token and gets an admin session cookie (``admin_base``). Each
page calls the same service, with the same audit title, as the API route it stands for;
legal bases and processing activities live in ``admin_catalogue``, the person lookup in
``admin_people``.
"""

from __future__ import annotations

import contextlib
import datetime
import re
from dataclasses import fields
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from databunker.errors import BadRequest, DatabunkerError, RateLimited
from databunker.services import admin_sessions, audit, documents, legal, users
from databunker.services import requests as user_requests
from databunker.services.access import NO_CREDENTIAL
from databunker.services.agreements import AgreementView
from databunker.services.audit import AuditQuery
from databunker.services.context import Work
from databunker.services.records import Profile
from databunker.services.requests import RequestDetail
from databunker.units import Access
from databunker.web import admin_catalogue, admin_people, history, i18n, pages, wording
from databunker.web.admin_base import (
    HOME,
    PAGE_SIZE,
    SESSION,
    SignedOut,
    as_admin,
    field_changes,
    form,
    page,
    page_number,
    paging,
    pretty,
    redirect,
    render,
    request_rows,
)
from databunker.web.pages import Payload

STATUSES = user_requests.STATUSES


# --- signing in ----------------------------------------------------------------------------


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _signin_page(request: Request, message: str | None = None, status: int = 200) -> Response:
    return render(request, "admin/signin.html", {"message": message}, status=status)


def _dashboard(work: Work) -> Payload:
    waiting = user_requests.list_requests(work, "open", 0, 5)
    return {
        "open_total": waiting.total,
        "latest": waiting.rows,
        "names": users.display_names(work, [r.token for r in waiting.rows]),
        "bases": legal.list_bases(work).total,
        "activities": legal.list_activities(work).total,
    }


@page
async def home(request: Request) -> Response:
    """The dashboard, or the sign-in form for a browser without an admin session."""
    if pages.session_token(request, SESSION) is None:
        return _signin_page(request)
    view = await as_admin(request, _dashboard)
    speaker = i18n.speaker(request)
    context = {**view, "latest": request_rows(speaker, view["latest"], view["names"])}
    return render(request, "admin/dashboard.html", context)


@page
async def sign_in(request: Request) -> Response:
    fields = await form(request)
    presented = fields.get("token", "").strip()
    address = _client_address(request)
    previous = pages.session_token(request, SESSION)
    try:
        answer = await pages.call(
            request,
            lambda work: admin_sessions.sign_in(work, presented, address, previous=previous),
            access=Access.PUBLIC,
            credential=NO_CREDENTIAL,
            title="admin sign in",
        )
    except RateLimited:
        message = i18n.speaker(request).gettext(
            "Too many sign-in attempts from this address. Try again later."
        )
        return _signin_page(request, message, status=429)
    if answer is admin_sessions.SignInRefused.WRONG_TOKEN:
        message = i18n.speaker(request).gettext("This token is not valid.")
        return _signin_page(request, message, status=403)
    response = redirect(request, HOME)
    pages.start_session(request, response, answer.session, SESSION, lifetime=answer.lifetime)
    return response


@page
async def sign_out(request: Request) -> Response:
    await form(request)
    session = pages.session_token(request, SESSION)
    if session is not None:
        with contextlib.suppress(SignedOut):
            await as_admin(
                request, lambda work: admin_sessions.sign_out(work, session), "admin sign out"
            )
    response = redirect(request, HOME + "?done=signed-out")
    pages.end_session(response, SESSION)
    return response


# --- requests ------------------------------------------------------------------------------


@page
async def requests_page(request: Request) -> Response:
    status = request.query_params.get("status") or "open"
    number = page_number(request)
    offset = (number - 1) * PAGE_SIZE

    def operation(work: Work) -> Payload:
        found = user_requests.list_requests(work, status, offset, PAGE_SIZE)
        return found, users.display_names(work, [r.token for r in found.rows])

    view, names = await as_admin(request, operation)
    speaker = i18n.speaker(request)
    context = {
        "rows": request_rows(speaker, view.rows, names),
        "status": status,
        "status_label": wording.request_status(speaker, status),
        "statuses": [(value, wording.request_status(speaker, value)) for value in STATUSES],
        "paging": paging(number, view.total),
    }
    return render(request, "admin/requests.html", context)


def _proposal(answer: RequestDetail) -> dict[str, Any]:
    """What approving would do, as rows of old and new values where there is a change."""
    original, change = answer.original, answer.change
    if answer.action not in ("change-profile", "change-app-data") or change is None:
        return {"changes": None, "raw": None}
    if answer.request.status != "open":
        # Decided: the record has moved on, a diff against it would say nothing true.
        return {"changes": None, "raw": pretty(change)}
    try:
        proposed = documents.apply_change(original if isinstance(original, dict) else {}, change)
    except DatabunkerError:
        return {"changes": None, "raw": pretty(change)}
    return {"changes": field_changes(original, proposed), "raw": None}


@page
async def request_page(request: Request) -> Response:
    rtoken = request.path_params["rtoken"]

    def operation(work: Work) -> Payload:
        found = user_requests.get_request(work, rtoken)
        return found, users.display_names(work, [found.request.token])

    answer, names = await as_admin(request, operation, "get user request by request token")
    speaker = i18n.speaker(request)
    context = {
        "request": answer.request,
        "kind": wording.request_kind(speaker, answer.action, admin=True),
        "status": wording.request_status(speaker, answer.request.status),
        "person": names.get(answer.request.token, ""),
        "original": _shown_original(answer.original),
        **_proposal(answer),
    }
    return render(request, "admin/request.html", context)


def _shown_original(original: Profile | AgreementView) -> dict[str, Any]:
    """The current state as fields to list (an agreement: the fields it has set)."""
    if isinstance(original, AgreementView):
        named = ((f.name, getattr(original, f.name)) for f in fields(original))
        return {name: value for name, value in named if value is not None}
    return original


@page
async def approve_request(request: Request) -> Response:
    rtoken = request.path_params["rtoken"]
    fields = await form(request)
    reason = fields.get("reason", "").strip()
    body = {"reason": reason} if reason else None
    await as_admin(
        request,
        lambda work: user_requests.approve_request(work, rtoken, body),
        "approve user request",
    )
    return redirect(request, f"/admin/requests/{rtoken}?done=approved")


@page
async def cancel_request(request: Request) -> Response:
    rtoken = request.path_params["rtoken"]
    fields = await form(request)
    reason = fields.get("reason", "").strip()
    if not reason:
        raise BadRequest("give a reason for rejecting the request")
    await as_admin(
        request,
        lambda work: user_requests.cancel_request(work, rtoken, {"reason": reason}),
        "cancel user request",
    )
    return redirect(request, f"/admin/requests/{rtoken}?done=canceled")


# --- audit ---------------------------------------------------------------------------------


DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _audit_filters(request: Request) -> dict[str, str]:
    params = request.query_params
    return {
        "person": params.get("person", params.get("token", "")).strip(),
        "action": params.get("action", "").strip(),
        "day": params.get("day", "").strip(),
    }


def _day_bounds(day: str) -> tuple[int | None, int | None]:
    """The Unix seconds a ``YYYY-MM-DD`` day (UTC) starts and ends at; a bad day: 400."""
    if not day:
        return None, None
    try:
        if DAY.fullmatch(day) is None:
            raise ValueError(day)
        start = datetime.datetime.fromisoformat(day).replace(tzinfo=datetime.UTC)
    except ValueError as exc:
        raise BadRequest("give the day as YYYY-MM-DD") from exc
    first = int(start.timestamp())
    return first, first + 24 * 3600


def _person_token(work: Work, person: str) -> str | None:
    """A person filter as a token: a token as it is, an email or phone looked up."""
    if not person:
        return None
    if "@" in person:
        return users.get_user(work, "email", person).token
    if person.startswith("+"):
        return users.get_user(work, "phone", person).token
    return person


@page
async def audit_page(request: Request) -> Response:
    filters = _audit_filters(request)
    since, until = _day_bounds(filters["day"])
    # The action's words as recorded, or as the list names the action ("Profile read").
    kinds = history.kinds_named(i18n.speaker(request), filters["action"])
    query = AuditQuery(
        title_contains=filters["action"] or None, since=since, until=until, title_kinds=kinds
    )
    number = page_number(request)
    offset = (number - 1) * PAGE_SIZE

    def operation(work: Work) -> Payload:
        token = _person_token(work, filters["person"])
        found = audit.search_events(work, token, query, offset, PAGE_SIZE)
        names = users.display_names(work, [r.user_token for r in found.rows if r.user_token])
        return found, names

    # Reading one person's trail is filed under them, as the API's route does.
    title = "view audit events" if filters["person"] else None
    view, names = await as_admin(request, operation, title)
    speaker = i18n.speaker(request)
    rows = [
        {
            "entry": row,
            "action": history.event_phrase(speaker, row.title),
            "person": names.get(row.user_token or "", ""),
            "actor": speaker.gettext(history.short_actor(row)),
        }
        for row in view.rows
    ]
    kept = {name: value for name, value in filters.items() if value}
    context = {
        "rows": rows,
        "filters": filters,
        "query": urlencode(kept) + "&" if kept else "",
        "paging": paging(number, view.total),
    }
    return render(request, "admin/audit.html", context)


@page
async def audit_event_page(request: Request) -> Response:
    atoken = request.path_params["atoken"]

    def operation(work: Work) -> Payload:
        found = audit.get_event(work, atoken)
        owner = found.entry.user_token if found.entry is not None else None
        return found, users.display_names(work, [owner] if owner else [])

    event, names = await as_admin(request, operation, "view audit event")
    changes = (
        field_changes(event.before, event.after)
        if event.before is not None or event.after is not None
        else []
    )
    entry = event.entry
    speaker = i18n.speaker(request)
    context = {
        "atoken": atoken,
        "event": event,
        "entry": entry,
        "actor": speaker.gettext(history.short_actor(entry)) if entry is not None else "",
        "action": history.event_phrase(speaker, entry.title) if entry is not None else "",
        "person": names.get(entry.user_token or "", "") if entry is not None else "",
        "changes": changes,
    }
    return render(request, "admin/audit_event.html", context)


# --- static --------------------------------------------------------------------------------

routes: list[Route] = [
    Route("/admin", home, methods=["GET"]),
    Route("/admin/signin", sign_in, methods=["POST"]),
    Route("/admin/signout", sign_out, methods=["POST"]),
    Route("/admin/requests", requests_page, methods=["GET"]),
    Route("/admin/requests/{rtoken}", request_page, methods=["GET"]),
    Route("/admin/requests/{rtoken}/approve", approve_request, methods=["POST"]),
    Route("/admin/requests/{rtoken}/cancel", cancel_request, methods=["POST"]),
    Route("/admin/audit", audit_page, methods=["GET"]),
    Route("/admin/audit/{atoken}", audit_event_page, methods=["GET"]),
    *admin_catalogue.routes,
    *admin_people.routes,
    pages.static_files("/admin/static/{name}", ["admin.css", "favicon.svg"]),
]
