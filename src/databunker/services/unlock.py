"""Unlock ids: the short-lived gate in front of every listing of a whole vault (spec §3.7).

Enumeration is denied by default: an administrator first asks for an unlock id, and each
bulk listing must present a live one. Invariants this module guards:

* an unlock id is a random UUID, answered once and stored only as a keyed hash;
* the hash binds it to the caller who asked for it (the principal's accessor), so another
  credential presenting the same id finds nothing;
* it lives ``UNLOCK_SECONDS`` and may be presented again within that window (decision A23);
* it opens the tenant it was asked in, no other (the default tenant's root acts in each);
* it is looked up by its keyed hash, as access tokens are: no comparison of the clear value
  ever happens, so timing reveals nothing about stored ids.

Unlock ids live beside access tokens (kind ``unlock``) but under another hash purpose, so
one can never be presented as a credential, and the expired ones are purged by a job.
"""

from __future__ import annotations

import hmac

from databunker.crypto import is_uuid
from databunker.errors import AccessDenied
from databunker.services.access import require_root
from databunker.services.context import Work
from databunker.storage import login as token_rows
from databunker.storage import repositories as unlock_rows

UNLOCK_KIND = "unlock"
UNLOCK_SECONDS = 60
UNLOCK_REFUSED = "The unlockuuid value was not found or is not valid"


def _unlock_hash(work: Work, unlock_id: str) -> bytes:
    accessor = work.principal.accessor or ""
    return work.keyring.hash_secret("unlock-id", f"{accessor}\x00{unlock_id.lower()}")


def issue_unlock(work: Work) -> str:
    """A fresh unlock id for the calling administrator, valid ``UNLOCK_SECONDS``."""
    require_root(work.principal)
    unlock_id = work.random.token()
    unlock_rows.insert_access_token(
        work.conn,
        token_hash=_unlock_hash(work, unlock_id),
        kind=UNLOCK_KIND,
        user_token=None,
        now=work.now,
        expires=work.now + UNLOCK_SECONDS,
    )
    return unlock_id


def require_unlock(work: Work, unlock_id: str | None) -> None:
    """Refuse (403) unless ``unlock_id`` is a live unlock id this caller was given."""
    require_root(work.principal)
    if not unlock_id or not is_uuid(unlock_id):
        raise AccessDenied(UNLOCK_REFUSED)
    digest = _unlock_hash(work, unlock_id)
    found = unlock_rows.find_access_token(work.conn, digest)
    if found is None or not hmac.compare_digest(found.kind, UNLOCK_KIND):
        raise AccessDenied(UNLOCK_REFUSED)
    if found.expires <= work.now or found.tenant != work.tenant:
        raise AccessDenied(UNLOCK_REFUSED)


def purge_expired_unlocks(work: Work) -> int:
    """Periodic job: expired unlock ids are deleted."""
    return token_rows.purge_expired_access_tokens(work.conn, UNLOCK_KIND, work.now)
