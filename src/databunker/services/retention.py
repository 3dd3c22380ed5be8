"""Data retention: a person's record is erased when its retention runs out, unless kept.

Root starts a retention (status ``wait`` until an expiry time) and receives an expiration
token, once: only its keyed hash is stored, so no later call (not even root's status call)
can return it. The caller embeds the anonymous links ``/v1/exp/retain/<token>`` and
``/v1/exp/delete/<token>`` in its own message to the person; each link works once. When the
time passes with the status still ``wait``, the periodic job erases the person.

Invariants: only root starts a retention, and a retention root started is cancelled only by
root, so a person cannot turn it into a self-service erasure or escape it; the expiration
token is never written anywhere in clear; each person is erased once, however many servers
run the job or follow the link at the same moment.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from databunker.errors import AccessDenied, BadRequest, NotFound
from databunker.services.context import Work
from databunker.services.durations import capped_expiry
from databunker.services.identity import require_uuid
from databunker.services.records import open_user, resolve_user
from databunker.services.text import clean_field
from databunker.services.users import shred
from databunker.storage import repositories as user_rows
from databunker.storage import retention as retention_rows
from databunker.storage import tenancy
from databunker.storage.tenancy import DEFAULT_TENANT

STATUS = re.compile(r"^[a-z][a-z0-9_-]{0,15}$")
STARTED_BY_ROOT = "root"
# People erased per job round: keeps each round's transaction short.
EXPIRY_BATCH = 100
ROOT_STARTED = "a retention started by an administrator can only be cancelled by an administrator"


@dataclass(frozen=True, slots=True)
class RetentionStarted:
    """The expiration token, shown this once: it is stored only as a keyed hash."""

    exptoken: str


@dataclass(frozen=True, slots=True)
class RetentionState:
    """When the person's retention runs out (0: no time set) and its status ("" if none)."""

    exptime: int
    expstatus: str


def exptoken_hash(work: Work, exptoken: str) -> bytes:
    return work.keyring.hash_secret("exptoken", exptoken.lower())


def _status(value: Any) -> str:
    if value is None or value == "":
        return retention_rows.WAIT
    if not isinstance(value, str) or not STATUS.fullmatch(clean_field(status=value).lower()):
        raise BadRequest("bad status")
    return value.lower()


def start_expiration(
    work: Work, mode: str, identity: str, status: Any = None, expiration: Any = None
) -> RetentionStarted:
    """Root (as the route declares) starts the person's retention."""
    row, _key, _profile = resolve_user(work, mode, identity, for_update=True)
    if row.erased is not None:
        raise NotFound("user record not found")
    status = _status(status)
    expires = capped_expiry(work.now, expiration, work.settings.policy.max_user_retention_seconds)
    exptoken = work.random.token()
    retention_rows.start_expiration(
        work.conn,
        row.token,
        status=status,
        time=expires,
        token_hash=exptoken_hash(work, exptoken),
        started_by=STARTED_BY_ROOT,
    )
    work.audit.record(msg=f"retention started, status {status}")
    # The only time the token is ever shown.
    return RetentionStarted(exptoken)


def expiration_status(work: Work, mode: str, identity: str) -> RetentionState:
    """The retention state; never the token (it could be used to erase the person)."""
    row, _key, _profile = resolve_user(work, mode, identity)
    state = retention_rows.get_expiration(work.conn, row.token)
    assert state is not None  # the row was just found
    return RetentionState(state.time, state.status or "")


def cancel_expiration(work: Work, mode: str, identity: str) -> None:
    row, _key, _profile = resolve_user(work, mode, identity, for_update=True)
    state = retention_rows.get_expiration(work.conn, row.token)
    assert state is not None
    if not work.principal.is_root and state.started_by == STARTED_BY_ROOT:
        raise AccessDenied(ROOT_STARTED)
    retention_rows.clear_expiration(work.conn, row.token)


def _consume(work: Work, exptoken: str) -> None:
    work.audit.record(mode="exptoken")
    require_uuid(exptoken)


def retain_by_link(work: Work, exptoken: str) -> None:
    """The anonymous "keep my data" link: ends the retention; the token is used up."""
    _consume(work, exptoken)
    user_token = retention_rows.retain_by_token(work.conn, exptoken_hash(work, exptoken))
    if user_token is None:
        raise NotFound("not found")
    work.audit.record(user_token=user_token)


def delete_by_link(work: Work, exptoken: str) -> None:
    """The anonymous "delete my data" link: the person is erased now; the token is used up."""
    _consume(work, exptoken)
    user_token = retention_rows.expire_by_token(work.conn, exptoken_hash(work, exptoken))
    if user_token is None:
        raise NotFound("not found")
    work.audit.record(user_token=user_token)
    _erase(work, user_token)


def _erase(work: Work, user_token: str) -> None:
    row = user_rows.get_user(work.conn, user_token, for_update=True)
    if row is None or row.erased is not None:
        return  # already erased by other means: nothing is left to erase
    key, profile = open_user(work, row)
    shred(work, row, key, profile)


def expire_due_users(work: Work) -> int:
    """Periodic job: people whose retention ran out while waiting are erased, each once."""
    erased = 0
    for user_token in retention_rows.due_for_expiry(work.conn, work.now, EXPIRY_BATCH):
        if retention_rows.claim_expiry(work.conn, user_token, work.now):
            # Erased as its tenant would (its preserved fields keep that tenant's indexes).
            tenant = user_rows.tenant_of_user(work.conn, user_token) or DEFAULT_TENANT
            with tenancy.acting_in(work.conn, tenant):
                _erase(dataclasses.replace(work, tenant=tenant), user_token)
            erased += 1
    return erased
