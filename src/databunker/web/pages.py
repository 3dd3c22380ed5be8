"""What every page shares: templates, the page CSP, the session cookie, CSRF and service calls.

Safety rules kept here, in one place:

* templates are autoescaped, so any stored value renders as text;
* pages answer with a Content-Security-Policy without ``unsafe-inline`` (no inline script or
  style is ever needed: the only stylesheet is ``/static/portal.css``);
* a session token (the person's access token, or a DPO's admin session token) lives only
  in an httpOnly, SameSite=Strict cookie (``Secure`` over https) with a short lifetime; it
  never appears in a URL, a page or browser storage. Each kind has its own cookie
  (``CookieSession``), and an admin session counts only from the admin cookie;
* every form is POST and carries a CSRF token: a keyed hash of the session token once signed
  in, or the value of a random double-submit cookie before that;
* pages reach the domain only through a unit of work (``databunker.units``: one
  transaction, audited), as the API does, each declaring the access it needs.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from databunker.errors import AccessDenied, DatabunkerError, NotFound
from databunker.services.access import Credential
from databunker.services.context import Context, Work
from databunker.units import Access, run_unit
from databunker.web import domain_messages, i18n

HERE = Path(__file__).parent
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SESSION_COOKIE = "databunker_session"
PRESESSION_COOKIE = "databunker_csrf"
CSRF_FIELD = "csrf"
# The cookie outlives neither the access token nor this bound.
MAX_SESSION_SECONDS = 30 * 60
PRESESSION_SECONDS = 30 * 60


@dataclass(frozen=True, slots=True)
class CookieSession:
    """One kind of signed-in browser: its cookie, where the cookie is sent, and the purpose
    its forms' CSRF tokens are keyed with."""

    cookie: str
    csrf_purpose: str
    path: str = "/"


PERSON = CookieSession(SESSION_COOKIE, "page-csrf")
ADMIN = CookieSession("databunker_admin", "admin-csrf", "/admin")

templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
    extensions=["jinja2.ext.i18n"],
)
templates.install_gettext_callables(  # type: ignore[attr-defined]
    i18n.template_gettext, i18n.template_ngettext, newstyle=True
)
templates.filters["when"] = i18n.template_moment
templates.filters["number"] = i18n.template_number


def _is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def session_token(request: Request, session: CookieSession = PERSON) -> str | None:
    return request.cookies.get(session.cookie) or None


def csrf_token(request: Request, session: CookieSession = PERSON) -> str:
    """The token this browser's forms must carry (see the module docstring)."""
    token = session_token(request, session)
    if token is not None:
        digest = context_of(request).keyring.hash_secret(session.csrf_purpose, token)
        return digest.hex()
    existing = request.cookies.get(PRESESSION_COOKIE)
    if existing and len(existing) == 43:
        return existing
    fresh: str = request.scope.setdefault("databunker.presession", secrets.token_urlsafe(32))
    return fresh


async def check_csrf(request: Request, session: CookieSession = PERSON) -> dict[str, str]:
    """The posted form's text fields, once its CSRF token is right (403 otherwise)."""
    form = await request.form()
    fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    presented = fields.get(CSRF_FIELD, "")
    expected = csrf_token(request, session)
    if request.cookies.get(session.cookie) is None and PRESESSION_COOKIE not in request.cookies:
        raise AccessDenied()  # a pre-session form is valid only with its cookie
    if not hmac.compare_digest(presented.encode(), expected.encode()):
        raise AccessDenied()
    return fields


def _finish(request: Request, response: Response, session: CookieSession = PERSON) -> Response:
    response.headers["Content-Security-Policy"] = PAGE_CSP
    response.headers["Cache-Control"] = "no-store"
    i18n.remember(request, response)
    fresh = request.scope.get("databunker.presession")
    if fresh is not None and session_token(request, session) is None:
        response.set_cookie(
            PRESESSION_COOKIE,
            fresh,
            max_age=PRESESSION_SECONDS,
            httponly=True,
            samesite="strict",
            secure=_is_https(request),
            path="/",
        )
    return response


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    status: int = 200,
    session: CookieSession = PERSON,
) -> Response:
    settings = context_of(request).settings
    speaker = i18n.speaker(request)
    values: dict[str, Any] = {
        "speaker": speaker,
        "lang": speaker.language,
        "languages": i18n.LANGUAGES,
        "ui": settings.ui,
        "csrf": csrf_token(request, session),
        "signed_in": session_token(request, session) is not None,
        "path": request.url.path,
        "notice": None,
        **(context or {}),
    }
    page = templates.get_template(template).render(values)
    return _finish(request, HTMLResponse(page, status_code=status), session)


def redirect(request: Request, to: str, session: CookieSession = PERSON) -> Response:
    return _finish(request, RedirectResponse(to, status_code=303), session)


def start_session(
    request: Request,
    response: Response,
    xtoken: str,
    session: CookieSession = PERSON,
    lifetime: int | None = None,
) -> None:
    """Set the session cookie; a person's lives as long as their token, within the bound."""
    if lifetime is None:
        lifetime = context_of(request).settings.policy.user_token_seconds
    response.set_cookie(
        session.cookie,
        xtoken,
        max_age=min(lifetime, MAX_SESSION_SECONDS),
        httponly=True,
        samesite="strict",
        secure=_is_https(request),
        path=session.path,
    )
    if session is PERSON:
        response.delete_cookie(PRESESSION_COOKIE, path="/")


def end_session(response: Response, session: CookieSession = PERSON) -> None:
    response.delete_cookie(session.cookie, path=session.path, httponly=True, samesite="strict")


def attachment(request: Request, body: bytes, filename: str, media_type: str) -> Response:
    response = Response(body, media_type=media_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return _finish(request, response)


def context_of(request: Request) -> Context:
    context: Context = request.app.state.vault
    return context


T = TypeVar("T")
# What a page operation hands back to be rendered.
Payload = Any


async def call(
    request: Request,
    operation: Callable[[Work], T],
    *,
    access: Access,
    credential: Credential,
    title: str | None = None,
    keep_spent: bool = False,
) -> T:
    """Run ``operation`` as the API does: one transaction, the caller authenticated by
    ``credential``, the page's access enforced, the audit event written. With
    ``keep_spent``, a refusal still commits what the attempt spent, then is raised here."""

    def wake() -> None:
        dispatcher = getattr(request.app.state, "webhooks", None)
        if dispatcher is not None:
            dispatcher.wake()

    return await run_unit(
        context_of(request),
        credential,
        access,
        operation,
        title=title,
        keep_spent=keep_spent,
        wake=wake,
    )


def error_page(request: Request, exc: DatabunkerError) -> Response:
    # Domain messages never carry personal data or secrets: they may be shown, in the
    # page's language.
    message = domain_messages.shown(i18n.speaker(request), exc.message)
    return render(request, "error.html", {"message": message}, status=exc.status_code)


MEDIA_TYPES = {".css": "text/css", ".svg": "image/svg+xml", ".js": "text/javascript"}


def favicon_route() -> Route:
    """``/favicon.ico``, which browsers ask for whatever the page links: the portal's icon."""
    body = (HERE / "static" / "favicon.svg").read_bytes()

    async def serve(_request: Request) -> Response:
        response = Response(body, media_type="image/svg+xml")
        response.headers["Cache-Control"] = "public, max-age=86400"
        return response

    return Route("/favicon.ico", serve, methods=["GET"])


def static_files(path: str, names: Iterable[str]) -> Route:
    """A route serving these stylesheets of ``static/`` (cached for an hour); any other
    name is not found."""
    files = {name: (HERE / "static" / name).read_bytes() for name in names}

    async def serve(request: Request) -> Response:
        name = request.path_params["name"]
        body = files.get(name)
        if body is None:
            return error_page(request, NotFound())
        media_type = MEDIA_TYPES.get(Path(name).suffix, "application/octet-stream")
        response = Response(body, media_type=media_type)
        response.headers["Cache-Control"] = "public, max-age=3600"
        return response

    return Route(path, serve, methods=["GET"])
