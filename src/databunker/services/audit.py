"""The audit trail: every operation on a person's data, including failed and denied ones.

An event's identity (``who``) and its before/after values are encrypted under the person's
data key, so erasing the person makes them unreadable; the metadata (when, what, by whom,
outcome) stays readable for the DPO.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass, replace
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
from databunker.services.results import Page
from databunker.storage import repositories as audit_rows
from databunker.storage import repositories as user_rows
from databunker.storage import requests as request_rows
from databunker.storage import tenancy
from databunker.storage.prepared import savepoint
from databunker.storage.repositories import AuditQuery as AuditQuery
from databunker.storage.repositories import TitleKind as TitleKind


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One event of the trail as it is listed. ``who`` is the identity the caller named,
    readable only while the person's data key exists; ``accessor`` is who acted ("root" or
    a hash of a user's access token); ``has_values`` says the event kept before/after
    values (or debug text) to be read with ``get_event``."""

    atoken: str
    when: int
    title: str
    status: str
    who: str | None
    mode: str | None
    accessor: str | None
    user_token: str | None
    app: str | None
    msg: str | None
    has_values: bool


@dataclass(frozen=True, slots=True)
class AuditValues:
    """What one event kept of the change it records: the person's values before and after
    (None when not kept or no longer readable), debug text, the ``request_metadata`` the
    caller sent with the request (v2) while readable, and the event as lists show it (its
    title, time and actor)."""

    before: Any | None
    after: Any | None
    debug: str | None
    request_metadata: Any | None = None
    entry: AuditEntry | None = None


# ``request_metadata`` is kept in the ``debug`` column, sealed like the other values under the
# person's data key (so erasure shreds it) and marked with this prefix; the column is part of
# the event's chained metadata, so the sealed text is linked as written.
SEALED_METADATA = "sealed-request-metadata:"


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
    and the caller learns nothing, since the answer is already decided.

    ``mode`` ``request`` names a user request by its token: the attempt is filed under the
    request's person, as the request routes file what they do (``services.requests``)."""
    if mode == REQUEST_SUBJECT:
        return _attribute_to_request(conn, event, identity)
    if mode not in MODES or (event.user_token is not None and event.data_key is not None):
        return event
    with savepoint(conn, "attribute"):
        if event.user_token is not None:  # found, but refused before its key was opened
            row = user_rows.get_user(conn, event.user_token)
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


REQUEST_SUBJECT = "request"


def _attribute_to_request(conn: Connection, event: AuditEvent, rtoken: str) -> AuditEvent:
    if event.user_token is not None or not is_uuid(rtoken):
        return event
    with savepoint(conn, "attribute"):
        row = request_rows.get(conn, rtoken)
    if row is None:
        return event
    return replace(
        event,
        mode="token",
        user_token=row.user_token,
        msg=event.msg if event.msg else f"request {rtoken}",
        app=row.app if row.app is not None else event.app,
    )


def _named_person(
    conn: Connection, vault: Context, mode: str, identity: str
) -> user_rows.UserRow | None:
    if mode == "token":
        row = user_rows.get_user(conn, identity) if is_uuid(identity) else None
    else:
        default_country = vault.settings.sms.default_country
        # The identity is looked up as the tenant the attempt was made in keys it.
        keyring = vault.keyring.for_tenant(tenancy.owner(conn))
        digest = lookup_index(mode, identity, keyring, default_country)
        row = user_rows.find_user_by_index(conn, mode, digest) if digest is not None else None
    return row


def save_event(conn: Connection, event: AuditEvent, now: int) -> str:
    row = _audit_row(event, now)
    audit_rows.insert_audit(conn, row)
    return row.atoken


def save_events(conn: Connection, events: list[AuditEvent], now: int) -> None:
    """Several events in one insert (a bulk operation's event per person), in order."""
    audit_rows.insert_audits(conn, [_audit_row(event, now) for event in events])


def _audit_row(event: AuditEvent, now: int) -> audit_rows.AuditRow:
    atoken = new_token()
    owner = event.user_token
    key = event.data_key if owner else None

    def seal(column: str, plaintext: bytes | None) -> bytes | None:
        if key is None or owner is None or plaintext is None:
            return None
        return key.encrypt(plaintext, value_context("audit", column, atoken, owner))

    metadata = seal("request_metadata", event.request_metadata)
    debug = SEALED_METADATA + base64.b64encode(metadata).decode() if metadata else None
    return audit_rows.AuditRow(
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
        debug=debug,
        before=seal("before", event.before),
        after=seal("after", event.after),
    )


class _KeyCache:
    """Unwraps each person's data key at most once per request."""

    def __init__(self, conn: Connection, keyring: Keyring) -> None:
        self._conn = conn
        self._keyring = keyring
        self._keys: dict[str, DataKey | None] = {}

    def preload(self, tokens: list[str]) -> None:
        wanted = [t for t in tokens if t not in self._keys]
        for token, wrapped in user_rows.wrapped_keys(self._conn, wanted).items():
            self._keys[token] = self._keyring.unwrap(wrapped, token) if wrapped else None

    def get(self, token: str | None) -> DataKey | None:
        if token is None:
            return None
        if token not in self._keys:
            self.preload([token])
        return self._keys.get(token)


def _open(key: DataKey | None, row: audit_rows.AuditRow, column: str, blob: bytes | None) -> Any:
    if key is None or blob is None or row.user_token is None:
        return None
    try:
        plaintext = key.decrypt(blob, value_context("audit", column, row.atoken, row.user_token))
    except DecryptionError:
        return None
    return plaintext.decode() if column == "who" else documents.decode(plaintext)


def _entry(row: audit_rows.AuditRow, keys: _KeyCache) -> AuditEntry:
    return AuditEntry(
        atoken=row.atoken,
        when=row.created,
        title=row.title,
        status=row.status,
        who=_open(keys.get(row.user_token), row, "who", row.who),
        mode=row.mode,
        accessor=row.accessor,
        user_token=row.user_token,
        app=row.app,
        msg=row.msg,
        has_values=bool(row.before or row.after or row.debug),
    )


def _page(
    work: Work,
    user_token: str | None,
    offset: int,
    limit: int,
    query: AuditQuery | None = None,
) -> Page[AuditEntry]:
    total = audit_rows.count_audit(work.conn, user_token=user_token, query=query)
    rows = audit_rows.list_audit(
        work.conn, user_token=user_token, offset=offset, limit=limit, query=query
    )
    keys = _KeyCache(work.conn, work.keyring)
    keys.preload([r.user_token for r in rows if r.user_token])
    return Page(total=total, rows=[_entry(r, keys) for r in rows])


def list_user_events(work: Work, user_token: str, offset: int, limit: int) -> Page[AuditEntry]:
    require_uuid(user_token)
    # Filed under the person even when denied: they see who tried to read their trail.
    work.audit.record(mode="token", user_token=user_token)
    require_user_access(work.principal, user_token)
    return _page(work, user_token, offset, limit)


def user_trail(work: Work, user_token: str) -> Iterator[AuditEntry]:
    """A person's whole trail, newest first, as ``list_user_events`` lists it, read by one
    statement (so an event committed meanwhile neither repeats nor hides another) a batch
    of rows at a time. Consume it within the unit of work."""
    require_uuid(user_token)
    work.audit.record(mode="token", user_token=user_token)
    require_user_access(work.principal, user_token)
    keys = _KeyCache(work.conn, work.keyring)
    keys.get(user_token)  # before the rows stream: no other statement may run meanwhile
    return (_entry(row, keys) for row in audit_rows.iter_audit(work.conn, user_token=user_token))


def list_all_events(
    work: Work, offset: int, limit: int, query: AuditQuery | None = None
) -> Page[AuditEntry]:
    """The whole trail (its routes and pages are root's), optionally narrowed by ``query``."""
    return _page(work, None, offset, limit, query)


def search_events(
    work: Work, user_token: str | None, query: AuditQuery, offset: int, limit: int
) -> Page[AuditEntry]:
    """Root's filtered view of the trail: one person's events (or everyone's) that match
    ``query``."""
    require_root(work.principal)
    if user_token is not None:
        require_uuid(user_token)
        work.audit.record(mode="token", user_token=user_token)
    return _page(work, user_token, offset, limit, query)


def get_event(work: Work, atoken: str) -> AuditValues:
    require_uuid(atoken)
    row = audit_rows.get_audit(work.conn, atoken)
    if row is None:
        # A user token learns nothing about events that are not theirs.
        require_root(work.principal)
        raise NotFound("not found")
    work.audit.record(user_token=row.user_token, msg=f"event {atoken}")
    require_user_access(work.principal, row.user_token)
    keys = _KeyCache(work.conn, work.keyring)
    key = keys.get(row.user_token)
    debug = row.debug or None
    metadata = None
    if debug is not None and debug.startswith(SEALED_METADATA):
        metadata = _open_metadata(key, row, debug.removeprefix(SEALED_METADATA))
        debug = None
    return AuditValues(
        before=_open(key, row, "before", row.before),
        after=_open(key, row, "after", row.after),
        debug=debug,
        request_metadata=metadata,
        entry=_entry(row, keys),
    )


def _open_metadata(key: DataKey | None, row: audit_rows.AuditRow, text: str) -> Any:
    try:
        blob = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return _open(key, row, "request_metadata", blob)


@dataclass(frozen=True, slots=True)
class AuditEventDetail:
    """One event as listed, with the values it kept."""

    entry: AuditEntry
    values: AuditValues


def get_event_detail(work: Work, atoken: str) -> AuditEventDetail:
    """``get_event`` with the event's metadata (same access rule: root, or its person)."""
    values = get_event(work, atoken)
    row = audit_rows.get_audit(work.conn, atoken)
    if row is None:  # gone between the two reads (a retention purge)
        raise NotFound("not found")
    return AuditEventDetail(_entry(row, _KeyCache(work.conn, work.keyring)), values)


def purge_old_events(work: Work) -> int:
    """Periodic job: events older than ``policy.max_audit_retention_period`` are deleted."""
    keep = work.settings.policy.max_audit_retention_seconds
    if keep <= 0:
        return 0
    return audit_rows.purge_audit_before(work.conn, work.now - keep)
