"""The one place that turns a request into a Principal and applies a route's access level.

A route declares what it needs; record-level rules (a user token reaches its owner's records
only) are applied by the services through ``services.access``.
"""

from __future__ import annotations

from enum import Enum

from sqlalchemy.engine import Connection
from starlette.requests import Request

from databunker.errors import AccessDenied
from databunker.services.access import authenticate
from databunker.services.context import Principal, Vault

TOKEN_HEADER = "x-bunker-token"  # noqa: S105 - a header name, not a secret


class Access(Enum):
    PUBLIC = "public"
    ROOT = "root"
    # Root, or a user's token: the service then limits it to the owner's records.
    AUTHENTICATED = "authenticated"
    # Root, unless ``generic.create_user_without_access_token`` opens it to everyone.
    CREATE_USER = "create-user"


def authenticated_unless_anonymous(request: Request) -> Access:
    """Routes open to callers with no token at all (consent on a login page): a caller who
    sends a token must send a valid one."""
    return Access.AUTHENTICATED if request.headers.get(TOKEN_HEADER) else Access.PUBLIC


def principal_for(
    conn: Connection,
    vault: Vault,
    presented: str | None,
    now: int,
    *,
    admin_session: bool = False,
) -> Principal:
    return authenticate(conn, vault.keyring, presented, now, admin_session=admin_session)


def enforce(access: Access, principal: Principal, vault: Vault) -> None:
    if access is Access.PUBLIC:
        return
    if access is Access.CREATE_USER:
        if vault.settings.generic.create_user_without_access_token or principal.is_root:
            return
        raise AccessDenied()
    if access is Access.ROOT and not principal.is_root:
        raise AccessDenied()
    if access is Access.AUTHENTICATED and not (principal.is_root or principal.is_user):
        raise AccessDenied()
