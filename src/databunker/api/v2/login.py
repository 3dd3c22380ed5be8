"""v2 login (spec §2.15, §2.9): ``CaptchaCreate``, ``UserPrelogin``, ``UserLogin``,
``XTokenCreateForUser``.

The same passwordless login as v1's ``/v1/captcha``, ``/v1/prelogin`` and ``/v1/login``,
with its rate limits (per identity and per client address), single-use attempt-limited
codes and spent captchas, all committed even when the attempt is refused. As in v1, a
prelogin answers alike whether or not the identity belongs to anyone (the spec's 404 for an
unknown person would tell who has an account); a failed captcha is v2's 200
``captcha-error``. A wrong or expired code is 403 ``Access denied``.
"""

from __future__ import annotations

import base64

from databunker.api.v2.fields import Identified, TimeValue
from databunker.api.v2.registry import Access, Payload, V2Body, V2Operation
from databunker.api.v2.sessions import lifetime
from databunker.errors import AccessDenied, BadRequest
from databunker.services import captcha, login
from databunker.services.context import Work
from databunker.services.login import PreloginOutcome

__all__ = ["OPERATIONS"]


class FromClient(V2Body):
    client_address: str = "unknown"


class PreloginBody(Identified, FromClient):
    code: str
    captchacode: str


class LoginBody(Identified, FromClient):
    smscode: str


class XTokenBody(Identified):
    finaltime: TimeValue = None
    slidingtime: TimeValue = None


def _login_mode(mode: str) -> str:
    if mode not in login.LOGIN_MODES:
        raise BadRequest("The mode parameter has an incorrect format")
    return mode


def captcha_create(work: Work, body: FromClient) -> Payload:
    login.limit_captchas(work, body.client_address)
    issued = captcha.create_captcha(work)
    image = captcha.captcha_image(work, issued.captcha_id)
    return {
        "captchacode": issued.captcha_id,
        "captchaimage": "data:image/png;base64," + base64.b64encode(image).decode(),
    }


def prelogin(work: Work, body: PreloginBody) -> Payload:
    mode = _login_mode(body.mode)
    outcome = login.prelogin(
        work, mode, body.identity, body.code, body.captchacode, body.client_address
    )
    if outcome is PreloginOutcome.CAPTCHA_FAILED:
        return {"status": "error", "message": PreloginOutcome.CAPTCHA_FAILED.value}
    return {}


def user_login(work: Work, body: LoginBody) -> Payload:
    mode = _login_mode(body.mode)
    try:
        access = login.login(work, mode, body.identity, body.smscode, body.client_address)
    except BadRequest as exc:
        if exc.message != login.INVALID_CODE:
            raise
        raise AccessDenied() from exc
    return {"xtoken": access.xtoken, "token": access.user_token}


def xtoken_for_user(work: Work, body: XTokenBody) -> Payload:
    seconds = lifetime(work, body.finaltime, body.slidingtime)
    access = login.issue_for_user(work, body.mode, body.identity, seconds)
    return {"xtoken": access.xtoken, "token": access.user_token}


OPERATIONS = (
    V2Operation(
        "CaptchaCreate",
        FromClient,
        Access.PUBLIC,
        captcha_create,
        keep_spent=True,
        client_address=True,
    ),
    V2Operation(
        "UserPrelogin",
        PreloginBody,
        Access.PUBLIC,
        prelogin,
        title="user prelogin by {mode}",
        keep_spent=True,
        client_address=True,
    ),
    V2Operation(
        "UserLogin",
        LoginBody,
        Access.PUBLIC,
        user_login,
        title="user login by {mode}",
        keep_spent=True,
        client_address=True,
    ),
    V2Operation(
        "XTokenCreateForUser",
        XTokenBody,
        Access.ROOT,
        xtoken_for_user,
        title="create user access token by {mode}",
    ),
)
