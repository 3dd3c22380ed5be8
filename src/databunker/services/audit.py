"""The audit trail: every operation on a person's data, including failed and denied ones.

An event's identity (``who``) and its before/after values are encrypted under the person's
data key, so erasing the person makes them unreadable; the metadata (when, what, by whom,
outcome) stays readable for the DPO.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy.engine import Connection

from databunker.crypto import (
    DataKey,
    DecryptionError,
    Keyring,
    is_uuid,
    new_token,
    value_context,
)
from databunker.errors import NotFound
from databunker.services import documents
from databunker.services.access import require_root, require_user_access
from databunker.services.context import AuditEvent, Context, Work
from databunker.services.identity import MODES, lookup_index, require_uuid
from databunker.storage import repositories as repo
from databunker.storage.prepared import savepoint


def save_event_apart(conn: Connection, event: AuditEvent, now: int) -> str:
    """``save_event`` under a savepoint: if writing it fails, the transaction it shares
    with other units of work stays usable."""
    with savepoint(conn, "audit"):
        return save_event(conn, event, now)


def attribute_failure(
    conn: Connection, vault: Context, event: AuditEvent, mode: str, identity: str
) -> AuditEvent:
    """The failed or denied attempt filed under the person its URL names, if they exist.

    Run after the attempt's own transaction rolled back, whatever stopped it (no or a wrong
    credential, a body that does not parse): the person sees the attempt in their trail,
    and the caller learns nothing, since the answer is already decided."""
    if mode not in MODES or (event.user_token is not None and event.data_key is not None):
        return event
    with savepoint(conn, "attribute"):
        if event.user_token is not None:  # found, but refused before its key was opened
            row = repo.get_user(conn, event.user_token)
        else:
            row = _named_person(conn, vault, mode, identity)
    if row is None:
        return event
    event = replace(event, mode=event.mode or mode, user_token=row.token)
    if row.data_key is None:
        return event
    try:
        key = vault.keyring.unwrap(row.data_key, row.token)
    except DecryptionError:
        return event  # already reported by the attempt itself; filed without the identity
    return replace(event, data_key=key, who=identity)


def _named_person(
    conn: Connection, vault: Context, mode: str, identity: str
) -> repo.UserRow | None:
    if mode == "token":
        row = repo.get_user(conn, identity) if is_uuid(identity) else None
    else:
        default_country = vault.settings.sms.default_country
        digest = lookup_index(mode, identity, vault.keyring, default_country)
        row = repo.find_user_by_index(conn, mode, digest) if digest is not None else None
    return row


def save_event(conn: Connection, event: AuditEvent, now: int) -> str:
    atoken = new_token()
    owner = event.user_token
    key = event.data_key if owner else None

    def seal(column: str, plaintext: bytes | None) -> bytes | None:
        if key is None or owner is None or plaintext is None:
            return None
        return key.encrypt(plaintext, value_context("audit", column, atoken, owner))

    repo.insert_audit(
        conn,
        repo.AuditRow(
            atoken=atoken,
            created=now,
            user_token=owner,
            mode=event.mode,
            who=seal("who", event.who.encode() if event.who else None),
            accessor=event.accessor,
            app=event.app,
            title=event.title,
            status=event.status,
            msg=event.msg,
            debug=None,
            before=seal("before", event.before),
            after=seal("after", event.after),
        ),
    )
    return atoken


class _KeyCache:
    """Unwraps each person's data key at most once per request."""

    def __init__(self, conn: Connection, keyring: Keyring) -> None:
        self._conn = conn
        self._keyring = keyring
        self._keys: dict[str, DataKey | None] = {}

    def preload(self, tokens: list[str]) -> None:
        wanted = [t for t in tokens if t not in self._keys]
        for token, wrapped in repo.wrapped_keys(self._conn, wanted).items():
            self._keys[token] = self._keyring.unwrap(wrapped, token) if wrapped else None

    def get(self, token: str | None) -> DataKey | None:
        if token is None:
            return None
        if token not in self._keys:
            self.preload([token])
        return self._keys.get(token)


def _open(key: DataKey | None, row: repo.AuditRow, column: str, blob: bytes | None) -> Any:
    if key is None or blob is None or row.user_token is None:
        return None
    try:
        plaintext = key.decrypt(blob, value_context("audit", column, row.atoken, row.user_token))
    except DecryptionError:
        return None
    return plaintext.decode() if column == "who" else documents.decode(plaintext)


def _row_payload(row: repo.AuditRow, keys: _KeyCache) -> dict[str, Any]:
    payload: dict[str, Any] = {"atoken": row.atoken, "when": row.created}
    who = _open(keys.get(row.user_token), row, "who", row.who)
    if who is not None:
        payload["who"] = who
    if row.mode:
        payload["mode"] = row.mode
    if row.accessor:
        payload["identity"] = row.accessor
    if row.user_token:
        payload["record"] = row.user_token
    if row.app:
        payload["app"] = row.app
    payload["title"] = row.title
    payload["status"] = row.status
    if row.msg:
        payload["msg"] = row.msg
    payload["more"] = bool(row.before or row.after or row.debug)
    return payload


def _page(work: Work, user_token: str | None, offset: int, limit: int) -> dict[str, Any]:
    total = repo.count_audit(work.conn, user_token=user_token)
    rows = repo.list_audit(work.conn, user_token=user_token, offset=offset, limit=limit)
    keys = _KeyCache(work.conn, work.keyring)
    keys.preload([r.user_token for r in rows if r.user_token])
    return {"status": "ok", "total": total, "rows": [_row_payload(r, keys) for r in rows]}


def list_user_events(work: Work, user_token: str, offset: int, limit: int) -> dict[str, Any]:
    require_uuid(user_token)
    # Filed under the person even when denied: they see who tried to read their trail.
    work.audit.record(mode="token", user_token=user_token)
    require_user_access(work.principal, user_token)
    return _page(work, user_token, offset, limit)


def list_all_events(work: Work, offset: int, limit: int) -> dict[str, Any]:
    require_root(work.principal)
    return _page(work, None, offset, limit)


def get_event(work: Work, atoken: str) -> dict[str, Any]:
    require_uuid(atoken)
    row = repo.get_audit(work.conn, atoken)
    if row is None:
        # A user token learns nothing about events that are not theirs.
        require_root(work.principal)
        raise NotFound("not found")
    work.audit.record(user_token=row.user_token, msg=f"event {atoken}")
    require_user_access(work.principal, row.user_token)
    key = _KeyCache(work.conn, work.keyring).get(row.user_token)
    event: dict[str, Any] = {}
    before = _open(key, row, "before", row.before)
    after = _open(key, row, "after", row.after)
    if before is not None:
        event["before"] = before
    if after is not None:
        event["after"] = after
    if row.debug:
        event["debug"] = row.debug
    return {"status": "ok", "event": event}


def purge_old_events(work: Work) -> int:
    """Periodic job: events older than ``policy.max_audit_retention_period`` are deleted."""
    keep = work.settings.policy.max_audit_retention_seconds
    if keep <= 0:
        return 0
    return repo.purge_audit_before(work.conn, work.now - keep)
