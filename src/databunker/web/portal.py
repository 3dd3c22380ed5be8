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
from databunker.services import agreements, captcha, export, legal, login, users
from databunker.services import requests as user_requests
from databunker.services.access import NO_CREDENTIAL
from databunker.services.context import Work
from databunker.services.documents import encode
from databunker.services.results import RequestOpened
from databunker.services.users import UserSaved
from databunker.units import Access
from databunker.web import pages, portal_records
from databunker.web.pages import Payload
from databunker.web.portal_base import (
    SECRET_KEYS,
    SignedOut,
    as_person,
    notice,
    page,
    result_notice,
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
    return pages.render(request, "signin.html", context, status=status)


@page
async def signin(request: Request) -> Response:
    return await _signin_page(request)


@page
async def send_code(request: Request) -> Response:
    fields = await pages.check_csrf(request)
    mode = fields.get("mode", "")
    identity = fields.get("identity", "").strip()
    if mode not in login.LOGIN_MODES or not identity:
        return await _signin_page(request, message="Enter your email or phone.", status=400)
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
            message="The digits did not match. Try the new picture.",
            mode=mode,
            identity=identity,
        )
    return pages.render(request, "code.html", {"mode": mode, "identity": identity})


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
        context = {"mode": mode, "identity": identity, "message": "This code is not valid."}
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
    return {"profile": found.profile, "waiting": waiting.rows}


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@page
async def profile(request: Request) -> Response:
    view = await as_person(request, _profile_view, "get user record by token")
    fields = [
        {
            "name": name,
            "value": _shown(value),
            "secret": name.lower() in SECRET_KEYS,
            "editable": isinstance(value, str | int | float) and not isinstance(value, bool),
        }
        for name, value in sorted(view["profile"].items())
    ]
    waiting = [r for r in view["waiting"] if r.action in ("change-profile", "forget-me")]
    context = {"fields": fields, "waiting": waiting, "notice": notice(request)}
    return pages.render(request, "profile.html", context)


@page
async def save_profile(request: Request) -> Response:
    fields = await pages.check_csrf(request)

    def operation(work: Work, user_token: str) -> UserSaved | RequestOpened | None:
        current = users.get_user(work, "token", user_token).profile
        change: dict[str, Any] = {}
        for name, value in fields.items():
            if not name.startswith("field:"):
                continue
            key = name.removeprefix("field:")
            if key in current and _shown(current[key]) != value and key.lower() not in SECRET_KEYS:
                change[key] = value
        new_key, new_value = fields.get("new_name", "").strip(), fields.get("new_value", "")
        if new_key:
            change[new_key] = new_value
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
        rows.append({"basis": {"brief": brief, "shortdesc": brief}, "agreement": agreement})
    return {"rows": rows}


@page
async def consents(request: Request) -> Response:
    view = await as_person(request, _consents_view, "get agreements for token")
    context = {"rows": view["rows"], "notice": notice(request)}
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
    return pages.render(request, "forget.html", {"message": None})


@page
async def forget(request: Request) -> Response:
    fields = await pages.check_csrf(request)
    if fields.get("confirm") != "yes":
        message = "Tick the box to confirm that you want to be forgotten."
        return pages.render(request, "forget.html", {"message": message}, status=400)
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
    pages.static_files("/static/{name}", ["portal.css"]),
]
