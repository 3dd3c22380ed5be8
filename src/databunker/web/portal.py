"""The privacy portal: a person signs in with a one-time code and exercises their rights.

Pages are server-rendered; every action is a POST form with a CSRF token, answered with a
redirect (303) to a page that shows what happened. Which message to show travels as a fixed
key in the query string (``?done=saved``), never as text or personal data.

This module holds sign-in, the profile, consents, the export and forget-me; the records a
person can look through (apps, sessions, requests, history) are in ``portal_records``.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import fields, is_dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from databunker.errors import BadRequest
from databunker.services import agreements, captcha, documents, export, legal, login, users
from databunker.services import requests as user_requests
from databunker.services.access import NO_CREDENTIAL
from databunker.services.context import Work
from databunker.services.documents import encode
from databunker.services.results import RequestOpened
from databunker.services.users import UserSaved
from databunker.units import Access
from databunker.web import i18n, pages, portal_records
from databunker.web.pages import Payload
from databunker.web.portal_base import (
    SECRET_KEYS,
    SignedOut,
    as_person,
    notice,
    page,
    result_notice,
)
from databunker.web.wording import (
    AGREEMENT_STATUSES,
    FIXED_BASIS_TYPES,
    basis_type,
    humanised,
    legal_texts,
    path_label,
)

__all__ = ["SignedOut", "as_person", "page", "routes"]

# --- signing in --------------------------------------------------------------------------


async def _new_captcha(request: Request) -> str | None:
    if not pages.context_of(request).settings.generic.login_captcha:
        return None
    address = request.client.host if request.client else "unknown"

    def operation(work: Work) -> captcha.IssuedCaptcha:
        login.limit_captchas(work, address)
        return captcha.create_captcha(work)

    created: captcha.IssuedCaptcha = await pages.call(
        request, operation, access=Access.PUBLIC, credential=NO_CREDENTIAL, keep_spent=True
    )
    return created.captcha_id


async def _signin_page(
    request: Request,
    *,
    message: str | None = None,
    mode: str = "email",
    identity: str = "",
    status: int = 200,
) -> Response:
    if pages.session_token(request) is not None and message is None:
        return pages.redirect(request, "/profile")
    context = {
        "captcha": await _new_captcha(request),
        "message": message,
        "mode": mode,
        "identity": identity,
    }
    return pages.render(request, "signin.html", {**context, **_demo(request)}, status=status)


def _demo(request: Request) -> dict[str, str | None]:
    """In a vault started by ``databunker demo`` the login code is fixed: the pages say it."""
    return {"demo_code": login.DEMO_CODE if pages.context_of(request).demo else None}


@page
async def signin(request: Request) -> Response:
    return await _signin_page(request)


@page
async def send_code(request: Request) -> Response:
    fields = await pages.check_csrf(request)
    mode = fields.get("mode", "")
    identity = fields.get("identity", "").strip()
    if mode not in login.LOGIN_MODES or not identity:
        message = i18n.speaker(request).gettext("Enter your email address or phone number.")
        return await _signin_page(request, message=message, status=400)
    address = request.client.host if request.client else "unknown"
    answer = await pages.call(
        request,
        lambda work: login.prelogin(
            work,
            mode,
            identity,
            fields.get("answer", ""),
            fields.get("captcha", ""),
            address,
        ),
        access=Access.PUBLIC,
        credential=NO_CREDENTIAL,
        title=f"user prelogin by {mode}",
        keep_spent=True,
    )
    if answer is login.PreloginOutcome.CAPTCHA_FAILED:
        return await _signin_page(
            request,
            message=i18n.speaker(request).gettext("The digits did not match. Try the new picture."),
            mode=mode,
            identity=identity,
        )
    return pages.render(
        request, "code.html", {"mode": mode, "identity": identity, **_demo(request)}
    )


@page
async def enter_code(request: Request) -> Response:
    fields = await pages.check_csrf(request)
    mode, identity = fields.get("mode", ""), fields.get("identity", "")
    code = fields.get("code", "").strip()
    address = request.client.host if request.client else "unknown"
    try:
        answer = await pages.call(
            request,
            lambda work: login.login(work, mode, identity, code, address),
            access=Access.PUBLIC,
            credential=NO_CREDENTIAL,
            title=f"user login by {mode if mode in login.LOGIN_MODES else 'unknown mode'}",
            keep_spent=True,
        )
    except BadRequest:
        message = i18n.speaker(request).gettext("This code is not valid.")
        context = {"mode": mode, "identity": identity, "message": message}
        return pages.render(request, "code.html", context, status=400)
    response = pages.redirect(request, "/profile")
    pages.start_session(request, response, answer.xtoken)
    return response


@page
async def sign_out(request: Request) -> Response:
    await pages.check_csrf(request)
    xtoken = pages.session_token(request)
    with contextlib.suppress(SignedOut):
        await as_person(request, lambda work, _t: login.logout(work, xtoken), "user logout")
    response = pages.redirect(request, "/")
    pages.end_session(response)
    return response


# --- profile -----------------------------------------------------------------------------


def _profile_view(work: Work, user_token: str) -> Payload:
    found = users.get_user(work, "token", user_token)
    waiting = user_requests.list_user_requests(work, "token", user_token, "open", 0, 100)
    proposed: dict[tuple[str, ...], Any] = {}
    for row in waiting.rows:
        if row.action != "change-profile":
            continue
        detail = user_requests.get_request(work, row.rtoken)
        if isinstance(detail.original, dict) and detail.change is not None:
            with contextlib.suppress(BadRequest):
                after = documents.apply_change(detail.original, detail.change)
                for path, value in _leaves(after):
                    if _at(found.profile, path) != value:
                        proposed[path] = value
    return {"profile": found.profile, "waiting": waiting.rows, "proposed": proposed}


def _leaves(document: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Each value of a JSON object that is not itself an object, by its path."""
    if not isinstance(document, dict):
        return [(prefix, document)]
    found: list[tuple[tuple[str, ...], Any]] = []
    for name in sorted(document):
        value = document[name]
        if isinstance(value, dict) and value:
            found.extend(_leaves(value, (*prefix, name)))
        else:
            found.append(((*prefix, name), value))
    return found


_ABSENT = object()


def _at(document: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(document, dict) or part not in document:
            return _ABSENT
        document = document[part]
    return document


def _shown(value: Any) -> str:
    if value is None or value is _ABSENT:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _editable(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _is_secret_path(path: tuple[str, ...]) -> bool:
    return any(part.lower() in SECRET_KEYS for part in path)


def _titles(request: Request) -> dict[tuple[str, ...], str]:
    schema = pages.context_of(request).schema
    return schema.titles() if schema is not None else {}


@page
async def profile(request: Request) -> Response:
    view = await as_person(request, _profile_view, "get user record by token")
    speaker = i18n.speaker(request)
    titles = _titles(request)
    fields = []
    for index, (path, value) in enumerate(_leaves(view["profile"])):
        pending = view["proposed"].get(path, _ABSENT)
        fields.append(
            {
                "id": f"field-{index}",
                "name": json.dumps(list(path), ensure_ascii=False, separators=(",", ":")),
                "label": path_label(speaker, path, titles),
                "value": _shown(value),
                "secret": _is_secret_path(path),
                "editable": _editable(value),
                "pending": None if pending is _ABSENT else _shown(pending),
            }
        )
    for path, value in view["proposed"].items():
        if _at(view["profile"], path) is _ABSENT:
            label = path_label(speaker, path, titles)
            fields.append(
                {
                    "id": f"field-{len(fields)}",
                    "name": "",
                    "label": label,
                    "value": "",
                    "secret": _is_secret_path(path),
                    "editable": False,
                    "pending": _shown(value),
                }
            )
    shown_notice = notice(request)
    forgetting = [
        r
        for r in view["waiting"]
        if r.action == "forget-me" and request.query_params.get("done") != "forget-pending"
    ]
    context = {"fields": fields, "forgetting": forgetting, "notice": shown_notice}
    return pages.render(request, "profile.html", context)


def _typed_like(current: Any, text: str) -> Any:
    """The posted text as the type the field holds now (a number stays a number)."""
    if isinstance(current, int) and not isinstance(current, bool):
        with contextlib.suppress(ValueError):
            return int(text)
    if isinstance(current, float):
        with contextlib.suppress(ValueError):
            return float(text)
    return text


def _path_of(name: str) -> tuple[str, ...] | None:
    """A posted field's path: a JSON array of keys (nested fields), else one top-level key."""
    if name.startswith("["):
        with contextlib.suppress(ValueError):
            path = json.loads(name)
            if isinstance(path, list) and path and all(isinstance(p, str) for p in path):
                return tuple(path)
        return None
    return (name,) if name else None


def profile_change(current: dict[str, Any], posted: dict[str, str]) -> dict[str, Any]:
    """The merge patch the posted form asks for: each field whose text changed, nested
    fields inside their objects, and a new top-level field if one was named."""
    change: dict[str, Any] = {}
    for name, text in posted.items():
        if not name.startswith("field:"):
            continue
        path = _path_of(name.removeprefix("field:"))
        if path is None or _is_secret_path(path):
            continue
        old = _at(current, path)
        if old is _ABSENT or not _editable(old) or _shown(old) == text:
            continue
        target = change
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = _typed_like(old, text)
    new_key, new_value = posted.get("new_name", "").strip(), posted.get("new_value", "")
    if new_key and new_key not in current:
        change[new_key] = new_value
    return change


@page
async def save_profile(request: Request) -> Response:
    fields = await pages.check_csrf(request)

    def operation(work: Work, user_token: str) -> UserSaved | RequestOpened | None:
        current = users.get_user(work, "token", user_token).profile
        change = profile_change(current, fields)
        if not change:
            return None
        return users.change_user(work, "token", user_token, change)

    answer = await as_person(request, operation, "change user record by token")
    if answer is None:
        done = "unchanged"
    else:
        opened = answer if isinstance(answer, RequestOpened) else None
        done = result_notice(opened, "saved", "pending")
    return pages.redirect(request, "/profile?done=" + done)


# --- consents ----------------------------------------------------------------------------


def _consents_view(work: Work, user_token: str) -> Payload:
    given = {row.brief: row for row in agreements.list_agreements(work, "token", user_token).rows}
    rows: list[dict[str, Any]] = []
    for basis in legal.list_bases(work).rows:
        agreement = given.pop(basis.brief, None)
        if basis.status != legal.ACTIVE and agreement is None:
            continue
        rows.append({"basis": basis, "agreement": agreement})
    for brief, agreement in given.items():
        rows.append({"basis": None, "brief": brief, "agreement": agreement})
    return {"rows": rows}


def consent_row(speaker: i18n.Speaker, row: dict[str, Any]) -> dict[str, Any]:
    """One legal basis as the consents page shows it: what it is for, on what ground, its
    state, and which button (if any) the person may press."""
    basis: legal.LegalBasis | None = row["basis"]
    agreement = row["agreement"]
    brief = basis.brief if basis is not None else row["brief"]
    kind = (basis.basistype if basis is not None else "") or "consent"
    fixed = kind in FIXED_BASIS_TYPES
    login_basis = basis is not None and basis.module == "login"
    status = agreement.status if agreement is not None else None
    if status is not None:
        state = speaker.gettext(AGREEMENT_STATUSES.get(status, status))
    elif fixed:
        state = speaker.gettext("Applies while you use our service")
    elif login_basis:
        # Signing in with a code sent this way is what this consent allows.
        state = speaker.gettext("Given when you signed in with a one-time code")
    else:
        state = speaker.gettext("Not given")
    user_control = basis is None or basis.usercontrol
    action: str | None = None
    if not fixed and user_control:
        if status == "yes":
            action = "withdraw"
        elif (status is None and not login_basis) or status in ("no", "revoked", "expired"):
            action = "give"
    texts = legal_texts(basis, speaker) if basis is not None else None
    return {
        "brief": brief,
        "title": (texts.shortdesc if texts else "") or humanised(brief),
        "description": texts.fulldesc if texts else "",
        "required": texts.requiredmsg if texts and basis is not None and basis.requiredflag else "",
        "kind": basis_type(speaker, kind),
        "state": state,
        "given": status == "yes" or (status is None and (fixed or login_basis)),
        "agreement": agreement,
        "action": action,
    }


@page
async def consents(request: Request) -> Response:
    view = await as_person(request, _consents_view, "get agreements for token")
    speaker = i18n.speaker(request)
    rows = [consent_row(speaker, row) for row in view["rows"]]
    context = {"rows": rows, "notice": notice(request)}
    return pages.render(request, "consents.html", context)


@page
async def change_consent(request: Request) -> Response:
    fields = await pages.check_csrf(request)
    brief = legal.parse_brief(fields.get("brief", ""))
    given = agreements.AgreementInput(lastmodifiedby="person", agreementmethod="portal")
    if fields.get("action") == "give":
        await as_person(
            request,
            lambda work, token: agreements.accept(work, brief, "token", token, given),
            f"accept agreement for {brief}",
        )
        return pages.redirect(request, "/consents?done=given")
    answer = await as_person(
        request,
        lambda work, token: agreements.withdraw(work, brief, "token", token, "person"),
        f"withdraw agreement for {brief}",
    )
    done = result_notice(answer, "withdrawn", "withdraw-pending")
    return pages.redirect(request, "/consents?done=" + done)


# --- export, forget me -------------------------------------------------------------------


@page
async def download(request: Request) -> Response:
    await pages.check_csrf(request)
    found = await as_person(
        request,
        lambda work, token: export.export_user(work, "token", token),
        "export user data by token",
    )
    return pages.attachment(request, encode(_document(found)), "my-data.json", "application/json")


def _document(value: Any) -> Any:
    """The export as a JSON document: each typed part as an object of its set fields."""
    if is_dataclass(value) and not isinstance(value, type):
        named = ((f.name, getattr(value, f.name)) for f in fields(value))
        return {name: _document(part) for name, part in named if part is not None}
    if isinstance(value, list):
        return [_document(part) for part in value]
    if isinstance(value, dict):
        return {name: _document(part) for name, part in value.items()}
    return value


@page
async def forget_page(request: Request) -> Response:
    await as_person(request, lambda _work, _token: {})
    return pages.render(request, "forget.html", _forget_context(request, None))


def _forget_context(request: Request, message: str | None) -> dict[str, Any]:
    # A person's own erasure is immediate only where the setting allows it; otherwise it
    # is a request the data protection officer decides (``users.erase_user``).
    immediate = pages.context_of(request).settings.selfservice.forget_me
    return {"message": message, "immediate": immediate}


@page
async def forget(request: Request) -> Response:
    fields = await pages.check_csrf(request)
    if fields.get("confirm") != "yes":
        message = i18n.speaker(request).gettext(
            "Tick the box to confirm that you want your data erased."
        )
        return pages.render(request, "forget.html", _forget_context(request, message), status=400)
    answer = await as_person(
        request,
        lambda work, token: users.erase_user(work, "token", token),
        "delete user record by token",
    )
    if answer is None:
        response = pages.render(request, "forgotten.html", {"signed_in": False})
        pages.end_session(response)
        return response
    done = result_notice(answer, "forget-pending", "forget-pending")
    return pages.redirect(request, "/profile?done=" + done)


routes: list[Route] = [
    Route("/", signin, methods=["GET"]),
    Route("/signin", send_code, methods=["POST"]),
    Route("/code", enter_code, methods=["POST"]),
    Route("/signout", sign_out, methods=["POST"]),
    Route("/profile", profile, methods=["GET"]),
    Route("/profile/save", save_profile, methods=["POST"]),
    Route("/consents", consents, methods=["GET"]),
    Route("/consents/change", change_consent, methods=["POST"]),
    *portal_records.routes,
    Route("/export", download, methods=["POST"]),
    Route("/forget", forget_page, methods=["GET"]),
    Route("/forget/confirm", forget, methods=["POST"]),
    pages.static_files("/static/{name}", ["portal.css", "favicon.svg"]),
    pages.favicon_route(),
]
