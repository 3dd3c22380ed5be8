"""Sessions of the admin portal: a DPO trades the root token for a short-lived session token.

Invariants this module guards:

* the root token is checked only through ``authenticate`` (a keyed-hash lookup, so the
  comparison does not depend on how much of a guess was right) and never leaves the request
  that presented it: the browser keeps a fresh random session token instead;
* a session token is stored only as a keyed hash, of kind ``admin``, with an expiry of
  ``SESSION_SECONDS``; ``services.access.authenticate`` honours it only from the admin cookie;
* sign-in attempts are rate-limited per client address in the database (every attempt
  counts, so a right guess after too many wrong ones is refused as well);
* a refused sign-in is answered, not raised, so that its rate-limit hit is committed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from databunker.services.access import ADMIN_KIND, Credential, access_token_hash, authenticate
from databunker.services.context import Work
from databunker.services.login import limit
from databunker.storage import login as login_rows
from databunker.storage import repositories as access_token_rows

SESSION_SECONDS = 30 * 60
# Sign-in attempts per client address per rate-limit window (see services.login).
SIGNIN_LIMIT = 10
WRONG_TOKEN = "wrong token"  # noqa: S105 - a message, not a secret


@dataclass(frozen=True, slots=True)
class AdminSession:
    """A new admin session: its token (kept by the browser alone) and its lifetime."""

    session: str = field(repr=False)
    lifetime: int


class SignInRefused(Enum):
    """A sign-in refused with an answer rather than an error, so its rate-limit hit stays."""

    WRONG_TOKEN = WRONG_TOKEN


def sign_in(
    work: Work, presented: str, address: str, *, previous: str | None = None
) -> AdminSession | SignInRefused:
    """A new admin session for the holder of the root token; ``previous`` (the browser's
    old session token, if any) is revoked so a sign-in never keeps an older session alive."""
    limit(work, "admin-signin", "address", address, SIGNIN_LIMIT)
    if not authenticate(work.conn, work.keyring, Credential(presented), work.now).is_root:
        work.audit.refused(WRONG_TOKEN)
        return SignInRefused.WRONG_TOKEN
    if previous:
        _revoke(work, previous)
    session = work.random.token()
    token_hash = access_token_hash(work.keyring, session)
    access_token_rows.insert_access_token(
        work.conn,
        token_hash=token_hash,
        kind=ADMIN_KIND,
        user_token=None,
        now=work.now,
        expires=work.now + SESSION_SECONDS,
    )
    work.audit.record(accessor="root", msg=f"generated: {token_hash.hex()[:16]}")
    return AdminSession(session=session, lifetime=SESSION_SECONDS)


def sign_out(work: Work, session: str) -> None:
    """Revoke the admin session token presented (the caller is that session)."""
    _revoke(work, session)


def _revoke(work: Work, session: str) -> None:
    login_rows.revoke_access_token(
        work.conn,
        token_hash=access_token_hash(work.keyring, session),
        kind=ADMIN_KIND,
        user_token=None,
    )


def purge_expired_sessions(work: Work) -> int:
    """Periodic job: expired admin sessions are deleted."""
    return login_rows.purge_expired_access_tokens(work.conn, ADMIN_KIND, work.now)
