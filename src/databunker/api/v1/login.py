"""Passwordless login routes: captcha, prelogin, login and logout.

``/v1/captcha`` (a fresh captcha id) and ``/v1/logout`` are additions to v1. A refused
prelogin or login is answered from inside its transaction rather than rolled back, so that
what the attempt spent (its captcha, its rate-limit hit, its wrong-code count) stays spent.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from databunker.api.v1.runtime import (
    TOKEN_HEADER,
    Access,
    Payload,
    path_route,
    perform,
)
from databunker.services import captcha, login
from databunker.services.context import Work
from databunker.services.login import PreloginOutcome, UserAccess

PNG = "image/png"


def _prelogin_body(outcome: PreloginOutcome) -> Payload:
    status = "ok" if outcome is PreloginOutcome.CODE_SENT else "error"
    return {"status": status, "result": outcome.value}


def _login_body(access: UserAccess) -> Payload:
    return {"status": "ok", "xtoken": access.xtoken, "token": access.user_token}


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _title(template: str, mode: str) -> str:
    return template.format(mode=mode if mode in login.LOGIN_MODES else "unknown mode")


async def new_captcha(request: Request) -> Response:
    address = _client_address(request)

    def operation(work: Work) -> Payload:
        login.limit_captchas(work, address)
        return {"status": "ok", "captcha": captcha.create_captcha(work).captcha_id}

    return await perform(request, Access.PUBLIC, operation, keep_spent=True)


async def captcha_image(request: Request) -> Response:
    captcha_id = request.path_params["captcha"]

    def operation(work: Work) -> Payload:
        return Response(captcha.captcha_image(work, captcha_id), media_type=PNG)

    response = await perform(request, Access.PUBLIC, operation)
    response.headers["Cache-Control"] = "no-store"
    return response


async def prelogin(request: Request) -> Response:
    params = request.path_params
    mode, identity = params["mode"], params["identity"]
    answer, captcha_id = params["code"], params["captcha"]
    address = _client_address(request)
    return await perform(
        request,
        Access.PUBLIC,
        lambda work: _prelogin_body(
            login.prelogin(work, mode, identity, answer, captcha_id, address)
        ),
        title=_title("user prelogin by {mode}", mode),
        keep_spent=True,
    )


async def login_with_code(request: Request) -> Response:
    params = request.path_params
    mode, identity, code = params["mode"], params["identity"], params["code"]
    address = _client_address(request)
    return await perform(
        request,
        Access.PUBLIC,
        lambda work: _login_body(login.login(work, mode, identity, code, address)),
        title=_title("user login by {mode}", mode),
        keep_spent=True,
    )


async def logout(request: Request) -> Response:
    presented = request.headers.get(TOKEN_HEADER)

    def operation(work: Work) -> Payload:
        login.logout(work, presented)
        return {"status": "ok"}

    return await perform(request, Access.AUTHENTICATED, operation, title="user logout")


routes = [
    Route("/v1/captcha", new_captcha, methods=["GET"]),
    Route("/v1/captcha/{captcha}", captcha_image, methods=["GET"]),
    Route("/v1/prelogin/{mode}/{identity}/{code}/{captcha}", prelogin, methods=["GET"]),
    Route("/v1/login/{mode}/{identity}/{code}", login_with_code, methods=["GET"]),
    path_route("/v1/logout", {"POST": logout}),
]
