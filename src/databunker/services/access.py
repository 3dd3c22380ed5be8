"""Authentication of access tokens and the authorisation rules of the core vault.

Each route and page declares what it needs (public, root, any valid token), enforced by
``databunker.units``; the rules here decide record-level access: a user token reaches its
owner's records only. A caller who fails either check learns nothing about whether the
record exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from sqlalchemy.engine import Connection

from databunker.crypto import Keyring, is_uuid
from databunker.errors import AccessDenied
from databunker.services.context import ANONYMOUS, Principal, PrincipalKind
from databunker.storage import repositories as repo
from databunker.storage.tenancy import DEFAULT_TENANT

ROOT_KIND = "root"
LOGIN_KIND = "login"
# A DPO's admin-portal session: root's powers, but only through the admin cookie.
ADMIN_KIND = "admin"
DEMO_ROOT_TOKEN = "DEMO"  # noqa: S105 - the documented token of `databunker demo`


class Source(Enum):
    """Where a presented token came from."""

    HEADER = "header"  # the API's X-Bunker-Token header
    PORTAL_COOKIE = "portal-cookie"  # the privacy portal's session cookie
    ADMIN_COOKIE = "admin-cookie"  # the admin portal's session cookie


@dataclass(frozen=True, slots=True)
class Credential:
    """A token as presented (or none), and the channel it came through."""

    token: str | None
    source: Source = Source.HEADER


NO_CREDENTIAL = Credential(None)


def access_token_hash(keyring: Keyring, token: str) -> bytes:
    return keyring.hash_secret("access-token", token)


def authenticate(
    conn: Connection,
    keyring: Keyring,
    credential: Credential,
    now: int,
    tenant: int = DEFAULT_TENANT,
) -> Principal:
    """Turn a presented token into a Principal acting in ``tenant``; anything invalid is
    anonymous, and so is a token of another tenant, but for the default tenant's root
    token, which acts in every tenant.

    From the admin portal's cookie, only an admin session token counts (as root), and such
    a token counts nowhere else, so a session stolen from a browser is no API credential
    and an API token no admin cookie.
    """
    presented = credential.token
    admin_session = credential.source is Source.ADMIN_COOKIE
    if not presented:
        return ANONYMOUS
    if not (is_uuid(presented) or presented == DEMO_ROOT_TOKEN):
        return ANONYMOUS
    found = repo.find_access_token(conn, access_token_hash(keyring, presented))
    if found is None or (found.expires and found.expires <= now):
        return ANONYMOUS
    if found.tenant != tenant and not (found.kind == ROOT_KIND and found.tenant == DEFAULT_TENANT):
        return ANONYMOUS
    if admin_session or found.kind == ADMIN_KIND:
        if admin_session and found.kind == ADMIN_KIND:
            return Principal(PrincipalKind.ROOT, accessor="root")
        return ANONYMOUS
    if found.kind == ROOT_KIND:
        return Principal(PrincipalKind.ROOT, accessor="root", home_tenant=found.tenant)
    if found.kind == LOGIN_KIND and found.user_token:
        accessor = access_token_hash(keyring, presented).hex()[:32]
        return Principal(PrincipalKind.USER, user_token=found.user_token, accessor=accessor)
    return ANONYMOUS


def require_root(principal: Principal) -> None:
    if not principal.is_root:
        raise AccessDenied()


def require_authenticated(principal: Principal) -> None:
    if principal.kind is PrincipalKind.NONE:
        raise AccessDenied()


def may_access_user(principal: Principal, user_token: str | None) -> bool:
    if principal.is_root:
        return True
    return principal.is_user and user_token is not None and principal.user_token == user_token


def require_user_access(principal: Principal, user_token: str | None) -> None:
    if not may_access_user(principal, user_token):
        raise AccessDenied()
