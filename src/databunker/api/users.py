"""User routes: ``/v1/user``, ``/v1/user/{mode}/{identity}`` and ``/v1/users``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from databunker.api.auth import Access
from databunker.api.body import page, parse_document, parse_object, read_body
from databunker.api.runtime import perform, vault_of
from databunker.errors import BadRequest
from databunker.services import users
from databunker.services.context import Work
from databunker.services.identity import MODES


def audit_title(template: str, mode: str) -> str:
    """An audit title naming the lookup mode (only a real mode: URL text is not trusted)."""
    return template.format(mode=mode if mode in MODES else "unknown mode")


async def create_user(request: Request) -> Response:
    settings = vault_of(request).settings.server
    raw = await read_body(request, settings.max_body_bytes)
    content_type = request.headers.get("content-type")

    def operation(work: Work) -> dict[str, object]:
        profile = parse_object(raw, content_type, settings.max_json_depth)
        if profile is None:
            raise BadRequest("empty request body")
        return users.create_user(work, profile)

    return await perform(request, Access.CREATE_USER, operation, title="create user record")


async def get_user(request: Request) -> Response:
    mode, identity = request.path_params["mode"], request.path_params["identity"]
    return await perform(
        request,
        Access.AUTHENTICATED,
        lambda work: users.get_user(work, mode, identity),
        title=audit_title("get user record by {mode}", mode),
    )


async def change_user(request: Request) -> Response:
    mode, identity = request.path_params["mode"], request.path_params["identity"]
    settings = vault_of(request).settings.server
    raw = await read_body(request, settings.max_body_bytes)
    content_type = request.headers.get("content-type")

    def operation(work: Work) -> dict[str, object]:
        change = parse_document(raw, content_type, settings.max_json_depth)
        if change is None:
            raise BadRequest("empty request body")
        return users.change_user(work, mode, identity, change)

    return await perform(
        request,
        Access.AUTHENTICATED,
        operation,
        title=audit_title("change user record by {mode}", mode),
    )


async def erase_user(request: Request) -> Response:
    mode, identity = request.path_params["mode"], request.path_params["identity"]
    return await perform(
        request,
        Access.AUTHENTICATED,
        lambda work: users.erase_user(work, mode, identity),
        title=audit_title("delete user record by {mode}", mode),
    )


async def list_users(request: Request) -> Response:
    offset, limit = page(request)
    return await perform(
        request,
        Access.ROOT,
        lambda work: users.list_users(work, offset, limit),
        title="list user records",
    )


routes = [
    Route("/v1/user", create_user, methods=["POST"]),
    Route("/v1/users", list_users, methods=["POST"]),
    Route("/v1/user/{mode}/{identity}", get_user, methods=["GET"]),
    Route("/v1/user/{mode}/{identity}", change_user, methods=["PUT"]),
    Route("/v1/user/{mode}/{identity}", erase_user, methods=["DELETE"]),
]
