"""What every admin page shares: the DPO's cookie session, rendering, paging and value display.

The admin portal follows the privacy portal's rules (``pages``): autoescaped templates, a
strict CSP, POST forms with CSRF tokens answered by a 303 redirect, and domain work only
through ``pages.call`` (one audited transaction, like the API). Its session is its own: the
``databunker_admin`` cookie holds an admin session token (``services.admin_sessions``), never
the root token, and nothing else signs a DPO in.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from databunker.errors import AccessDenied, DatabunkerError
from databunker.services.access import Credential, Source
from databunker.services.context import Work
from databunker.units import Access
from databunker.web import domain_messages, history, i18n, pages, wording
from databunker.web.pages import Payload
from databunker.web.wording import N_

Page = Callable[[Request], Awaitable[Response]]
SESSION = pages.ADMIN
HOME = "/admin"
PAGE_SIZE = 50

NOTICES = {
    "approved": N_("The request was approved and carried out."),
    "canceled": N_("The request was rejected."),
    "basis-saved": N_("The legal basis was saved."),
    "basis-deleted": N_("The legal basis was deleted."),
    "activity-saved": N_("The processing activity was saved."),
    "activity-deleted": N_("The processing activity was deleted."),
    "signed-out": N_("You are signed out."),
}


class SignedOut(Exception):
    """The browser has no valid admin session: it goes back to the sign-in page."""


def page(handler: Page) -> Page:
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except SignedOut:
            response = redirect(request, HOME)
            pages.end_session(response, SESSION)
            return response
        except DatabunkerError as exc:
            # Domain messages never carry personal data or secrets: they may be shown.
            context = {"message": domain_messages.shown(i18n.speaker(request), exc.message)}
            return render(request, "admin/error.html", context, status=exc.status_code)

    return wrapped


async def as_admin(
    request: Request, operation: Callable[[Work], Payload], title: str | None = None
) -> Any:
    """Run ``operation`` with root's powers if the admin cookie holds a live session."""
    token = pages.session_token(request, SESSION)
    if token is None:
        raise SignedOut()
    admitted = False

    def admitted_operation(work: Work) -> Payload:
        nonlocal admitted
        admitted = True
        return operation(work)

    try:
        return await pages.call(
            request,
            admitted_operation,
            access=Access.ROOT,
            credential=Credential(token, Source.ADMIN_COOKIE),
            title=title,
        )
    except AccessDenied as exc:
        if not admitted:
            raise SignedOut() from exc
        raise


def render(
    request: Request, template: str, context: Mapping[str, Any] | None = None, status: int = 200
) -> Response:
    known = NOTICES.get(request.query_params.get("done", ""))
    shown = None if known is None else i18n.speaker(request).gettext(known)
    values = {"notice": shown, **(context or {})}
    return pages.render(request, template, values, status=status, session=SESSION)


def redirect(request: Request, to: str) -> Response:
    return pages.redirect(request, to, SESSION)


async def form(request: Request) -> dict[str, str]:
    """The posted fields, once the form's CSRF token matches the admin session (403 if not)."""
    return await pages.check_csrf(request, SESSION)


def request_rows(
    speaker: i18n.Speaker, rows: list[Any], names: dict[str, str]
) -> list[dict[str, Any]]:
    """Requests as the admin lists show them: kind and status in words, the person by
    their display name beside the token."""
    return [
        {
            "rtoken": row.rtoken,
            "kind": wording.request_kind(speaker, row.action, admin=True),
            "about": row.app or row.brief or "",
            "status": wording.request_status(speaker, row.status),
            "created": row.creationtime,
            "token": row.token,
            "person": names.get(row.token, ""),
            "reason": row.reason or "",
        }
        for row in rows
    ]


# --- paging --------------------------------------------------------------------------------


def page_number(request: Request) -> int:
    """The ``page`` query parameter: a number from 1 to 999,999, else the first page."""
    value = request.query_params.get("page", "1")
    if not (value.isascii() and value.isdigit()) or len(value) > 6:
        return 1
    return max(int(value), 1)


def paging(number: int, total: int) -> dict[str, Any]:
    """Where page ``number`` starts, and whether there are pages before and after it."""
    return {
        "number": number,
        "offset": (number - 1) * PAGE_SIZE,
        "previous": number - 1 if number > 1 else None,
        "next": number + 1 if number * PAGE_SIZE < total else None,
        "total": total,
    }


# --- showing values ------------------------------------------------------------------------


def utc(value: Any) -> str:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        return ""
    moment = datetime.datetime.fromtimestamp(value, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def shown(value: Any) -> str:
    """A value as text: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def pretty(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, indent=2)


MISSING = object()


def field_changes(old: Any, new: Any) -> list[dict[str, str]]:
    """Old and new value per top-level field that differs (a whole value if not objects)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        if old == new:
            return []
        return [{"field": "(whole value)", "old": shown(old), "new": shown(new), "kind": "changed"}]
    rows = []
    for name in sorted(old.keys() | new.keys()):
        before, after = old.get(name, MISSING), new.get(name, MISSING)
        if before == after:
            continue
        kind = "added" if before is MISSING else "removed" if after is MISSING else "changed"
        rows.append(
            {
                "field": name,
                "old": "" if before is MISSING else shown(before),
                "new": "" if after is MISSING else shown(after),
                "kind": kind,
            }
        )
    return rows


pages.templates.filters["utc"] = i18n.template_moment
pages.templates.filters["shown"] = shown
pages.templates.filters["pretty"] = pretty
pages.templates.globals["short_actor"] = history.short_actor
