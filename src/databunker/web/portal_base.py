"""What every privacy-portal page shares: the signed-in person, notices and value display.

A page reaches the domain only through ``as_person``: the session cookie's access token must
be a person's (a root token is no portal session). A token that is missing, expired or not a
person's sends the browser back to sign-in; a refusal of what a signed-in person asked for
(say, another person's request) is an error page, and the person stays signed in.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from databunker.errors import AccessDenied, DatabunkerError
from databunker.services.access import Credential, Source
from databunker.services.context import Work
from databunker.services.results import RequestOpened
from databunker.units import Access
from databunker.web import i18n, pages
from databunker.web.pages import Payload
from databunker.web.wording import N_

Page = Callable[[Request], Awaitable[Response]]

NOTICES = {
    "saved": N_("Your profile was saved."),
    "pending": N_(
        "Your change was sent: it waits for approval by our data protection officer. "
        "You see it below, next to the field it changes."
    ),
    "exists": N_("A request of this kind already waits for approval."),
    "given": N_("Your consent was recorded."),
    "withdrawn": N_("Your consent was withdrawn."),
    "withdraw-pending": N_(
        "Your withdrawal was sent: it waits for approval by our data protection officer."
    ),
    "canceled": N_("The request was cancelled."),
    "forget-pending": N_(
        "Your request to erase your data was sent: it waits for approval by our data "
        "protection officer."
    ),
    "unchanged": N_("Nothing was changed."),
}
# Keys shown masked and never prefilled, as the original portal did.
SECRET_KEYS = {"password", "pwd", "pass", "parol", "passwd"}


class SignedOut(Exception):
    """The browser has no valid session: it goes back to the sign-in page."""


def page(handler: Page) -> Page:
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except SignedOut:
            response = pages.redirect(request, "/")
            pages.end_session(response)
            return response
        except DatabunkerError as exc:
            return pages.error_page(request, exc)

    return wrapped


async def as_person(
    request: Request, operation: Callable[[Work, str], Payload], title: str | None = None
) -> Any:
    """Run ``operation(work, user_token)`` as the signed-in person (root tokens do not count)."""
    xtoken = pages.session_token(request)
    if xtoken is None:
        raise SignedOut()
    signed_in = False  # set once the token proved to be a person's

    def guarded(work: Work) -> Payload:
        nonlocal signed_in
        user_token = work.principal.user_token
        if not work.principal.is_user or user_token is None:
            raise AccessDenied()
        signed_in = True
        return operation(work, user_token)

    try:
        return await pages.call(
            request,
            guarded,
            access=Access.AUTHENTICATED,
            credential=Credential(xtoken, Source.PORTAL_COOKIE),
            title=title,
        )
    except AccessDenied as exc:
        if signed_in:
            raise  # the person may not do this; the session itself is fine
        raise SignedOut() from exc


def notice(request: Request) -> str | None:
    """The notice a redirect asked for (``?done=``), in the page's language."""
    known = NOTICES.get(request.query_params.get("done", ""))
    return None if known is None else i18n.speaker(request).gettext(known)


def result_notice(opened: RequestOpened | None, done: str, pending: str) -> str:
    """Which notice a change shows: made (``done``), waiting for approval (``pending``), or
    met a request for the same thing that waits already."""
    if opened is None:
        return done
    return "exists" if opened.existed else pending


def when(value: Any) -> str:
    """A Unix time as an English page shows it (other languages: ``i18n.Speaker``)."""
    return i18n.Speaker(i18n.DEFAULT).moment(value)


def is_secret(name: str) -> bool:
    return name.lower() in SECRET_KEYS


def shown_value(value: Any) -> dict[str, Any]:
    """A stored JSON value as text: strings as they are, anything nested as indented JSON
    (``block``: shown preformatted). Templates escape the text."""
    if isinstance(value, str):
        return {"text": value, "block": False}
    nested = isinstance(value, dict | list)
    text = json.dumps(value, ensure_ascii=False, indent=2 if nested else None, sort_keys=True)
    return {"text": text, "block": nested}


def shown_fields(document: Any) -> list[dict[str, Any]]:
    """A JSON object's fields for display, by name; secret ones are masked by the template."""
    if not isinstance(document, dict):
        return [{"name": "", "secret": False, **shown_value(document)}]
    return [
        {"name": name, "secret": is_secret(name), **shown_value(value)}
        for name, value in sorted(document.items())
    ]
