"""Admin pages about one person: look them up, then see their record, consents and trail.

An email, phone or login is personal data: it is posted, never put in a URL. The lookup
answers with a redirect to ``/admin/user/{token}`` (the token is no personal data). Each part
of the person's page is read as its API route reads it, under that route's audit title, so
the person's own trail shows what the DPO looked at.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from databunker.errors import BadRequest, NotFound
from databunker.services import agreements, apps, audit, records, sessions, users
from databunker.services import requests as user_requests
from databunker.services.context import Work
from databunker.services.identity import MODES
from databunker.web import domain_messages, history, i18n
from databunker.web.admin_base import (
    PAGE_SIZE,
    as_admin,
    form,
    page,
    page_number,
    paging,
    redirect,
    render,
    request_rows,
)
from databunker.web.pages import Payload

LOOKUP = "/admin/users"
SESSIONS_SHOWN = 20
# Shown masked, as the original admin UI did.
SECRET_KEYS = frozenset({"password", "pwd", "pass", "parol", "passwd"})


def _lookup_page(
    request: Request, *, mode: str = "email", message: str | None = None, status: int = 200
) -> Response:
    context = {"modes": MODES, "mode": mode, "message": message}
    return render(request, "admin/lookup.html", context, status=status)


@page
async def lookup_form(request: Request) -> Response:
    await as_admin(request, lambda _work: {})  # only for a signed-in DPO
    return _lookup_page(request)


@page
async def lookup(request: Request) -> Response:
    fields = await form(request)
    mode, identity = fields.get("mode", ""), fields.get("value", "").strip()
    speaker = i18n.speaker(request)
    if mode not in MODES or not identity:
        message = speaker.gettext("Choose how to look up, and enter a value.")
        return _lookup_page(request, message=message, status=400)
    try:
        found = await as_admin(
            request,
            lambda work: users.get_user(work, mode, identity),
            f"get user record by {mode}",
        )
    except (NotFound, BadRequest) as exc:
        if isinstance(exc, NotFound):
            message = speaker.gettext("No person was found.")
        else:
            message = domain_messages.shown(speaker, exc.message)
        status = exc.status_code
        return _lookup_page(request, mode=mode, message=message, status=status)
    return redirect(request, f"/admin/user/{found.token}")


def _display(profile: dict[str, object]) -> str:
    for name in users.DISPLAY_FIELDS:
        value = profile.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def _record(work: Work, token: str) -> Payload:
    row, _key, profile = records.resolve_user(work, "token", token)
    return {"profile": profile, "erased": row.erased is not None}


@page
async def person(request: Request) -> Response:
    token = request.path_params["token"]
    number = page_number(request)
    offset = (number - 1) * PAGE_SIZE
    record = await as_admin(request, lambda work: _record(work, token), "get user record by token")
    consents = await as_admin(
        request,
        lambda work: agreements.list_agreements(work, "token", token),
        "get agreements for token",
    )
    app_names = await as_admin(
        request,
        lambda work: apps.list_user_apps(work, "token", token),
        "get user app list by token",
    )
    live_sessions = await as_admin(
        request,
        lambda work: sessions.list_user_sessions(work, "token", token, 0, SESSIONS_SHOWN),
        "get all user sessions",
    )
    app_records = await as_admin(
        request,
        lambda work: [
            (name, apps.get_app_record(work, "token", token, name).data)
            for name in sorted(app_names.apps)
        ],
        "get user app record by token",
    )
    waiting = await as_admin(
        request,
        lambda work: user_requests.list_user_requests(work, "token", token, "open", 0, 100),
        "get user privacy requests",
    )
    trail = await as_admin(
        request,
        lambda work: audit.list_user_events(work, token, offset, PAGE_SIZE),
        "view audit events",
    )
    display = _display(record["profile"])
    speaker = i18n.speaker(request)
    context = {
        "token": token,
        "profile": record["profile"],
        "erased": record["erased"],
        "secret_keys": SECRET_KEYS,
        "consents": consents.rows,
        "display": display,
        "apps": [{"app": name, "data": data} for name, data in app_records],
        "sessions": live_sessions.rows,
        "sessions_total": live_sessions.total,
        "waiting": request_rows(speaker, waiting.rows, {token: display}),
        "trail": [
            {"entry": row, "action": history.event_phrase(speaker, row.title)} for row in trail.rows
        ],
        "paging": paging(number, trail.total),
    }
    return render(request, "admin/person.html", context)


routes: list[Route] = [
    Route(LOOKUP, lookup_form, methods=["GET"]),
    Route(LOOKUP + "/lookup", lookup, methods=["POST"]),
    Route("/admin/user/{token}", person, methods=["GET"]),
]
