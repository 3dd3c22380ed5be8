"""Sessions: caller-chosen ids holding an application's session object, optionally linked to
a person.

Invariants: a session's object is stored only as ciphertext under the session's own data key
(itself stored only wrapped by the KEK), bound to the session id and its owner, so it cannot
be moved to another session or person. An expired session is indistinguishable from one that
never existed. Root reads and writes any session; a person's token reads only live sessions
linked to that person, and learns nothing about any other session, not even whether it exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from databunker.crypto import DataKey, is_uuid, value_context
from databunker.errors import AccessDenied, NotFound
from databunker.services import documents
from databunker.services.context import AuditEvent, Work
from databunker.services.documents import JSONObject
from databunker.services.durations import capped_expiry
from databunker.services.identity import plain_text, require_uuid
from databunker.services.records import find_user, resolve_user, wrap_data_key
from databunker.services.results import Page
from databunker.storage import repositories as user_rows
from databunker.storage import sessions as session_rows
from databunker.storage.repositories import UserRow

# The body keys that link a session to a person, in the order they are tried.
LINK_FIELDS = ("login", "email", "phone", "custom", "token")


@dataclass(frozen=True, slots=True)
class SessionView:
    """A live session: its id, when it was created, last written and ends, and the object
    the application stored in it."""

    session: str
    created: int
    updated: int
    expires: int
    data: JSONObject


def _key_owner(session: str) -> str:
    return f"session:{session}"


def _context(session: str, user_token: str | None) -> bytes:
    return value_context("sessions", "data", session, user_token or "")


def open_session_data(work: Work, row: session_rows.SessionRow) -> JSONObject:
    """The session object as it was posted (for a live session the caller may read)."""
    key = work.keyring.unwrap(row.data_key, _key_owner(row.session))
    data: JSONObject = documents.decode(
        key.decrypt(row.data, _context(row.session, row.user_token))
    )
    return data


def _linked_person(work: Work, data: JSONObject) -> UserRow | None:
    """The person named by the first non-empty link field; None when nobody (living) is."""
    for mode in LINK_FIELDS:
        value = data.get(mode)
        if value is None or value == "":
            continue
        identity = plain_text(value)
        if identity is None or (mode == "token" and not is_uuid(identity)):
            return None
        # Locked, so the person cannot be erased while their session is being written.
        row = find_user(work, mode, identity, for_update=True)
        return row if row is not None and row.erased is None and row.data_key else None
    return None


def _person_key(work: Work, user_token: str | None) -> DataKey | None:
    if user_token is None:
        return None
    row = user_rows.get_user(work.conn, user_token)
    if row is None or row.data_key is None:
        return None
    return work.keyring.unwrap(row.data_key, row.token)


def _file_event(work: Work, session: str, row: session_rows.SessionRow | None) -> None:
    if not work.audited:
        return
    work.audit.record(mode="session", who=session)
    if row is not None and row.user_token is not None:
        work.audit.record(subject=(row.user_token, _person_key(work, row.user_token)))


def _view(work: Work, row: session_rows.SessionRow) -> SessionView:
    return SessionView(
        session=row.session,
        created=row.created,
        updated=row.updated,
        expires=row.expires,
        data=open_session_data(work, row),
    )


def _live(work: Work, row: session_rows.SessionRow | None) -> session_rows.SessionRow | None:
    return row if row is not None and row.expires > work.now else None


def upsert_session(work: Work, session: str, data: JSONObject) -> None:
    """Create the session or overwrite it whole (express-session's ``set`` and ``touch``).

    The object is stored as posted; its ``expiration`` sets the lifetime, never beyond
    ``policy.max_session_retention_period``.
    """
    require_uuid(session)
    expires = capped_expiry(
        work.now, data.get("expiration"), work.settings.policy.max_session_retention_seconds
    )
    person = _linked_person(work, data)
    user_token = person.token if person is not None else None
    key = DataKey.generate()
    session_rows.upsert_session(
        work.conn,
        session=session,
        user_token=user_token,
        data_key=wrap_data_key(work, key, _key_owner(session)),
        data=key.encrypt(documents.encode(data), _context(session, user_token)),
        now=work.now,
        expires=expires,
    )
    if person is not None and not work.settings.generic.disable_audit:
        wrapped = person.data_key
        work.audit.also(
            AuditEvent(
                title="create session",
                mode="session",
                who=session,
                accessor=work.principal.accessor,
                user_token=person.token,
                data_key=work.keyring.unwrap(wrapped, person.token) if wrapped else None,
            )
        )


def get_session(work: Work, session: str) -> SessionView:
    require_uuid(session)
    row = session_rows.get_session(work.conn, session)
    _file_event(work, session, row)
    live = _live(work, row)
    if not work.principal.is_root and (
        live is None or live.user_token is None or live.user_token != work.principal.user_token
    ):
        raise AccessDenied()
    if live is None:
        raise NotFound("not found")
    return _view(work, live)


def delete_session(work: Work, session: str) -> None:
    """Deleting a session that is not there is done too (its route is root's)."""
    require_uuid(session)
    removed = session_rows.delete_session(work.conn, session)
    _file_event(work, session, removed)


def list_user_sessions(
    work: Work,
    mode: str,
    identity: str,
    offset: int,
    limit: int,
) -> Page[SessionView]:
    """A page of the person's live sessions, most recently written first."""
    person, _key, _profile = resolve_user(work, mode, identity)
    total = session_rows.count_live_user_sessions(work.conn, person.token, work.now)
    rows = session_rows.live_user_sessions(
        work.conn, person.token, work.now, offset=offset, limit=limit
    )
    return Page(total=total, rows=[_view(work, row) for row in rows])


def purge_expired_sessions(work: Work) -> int:
    """The periodic job: delete every session whose time is up."""
    return session_rows.purge_expired_sessions(work.conn, work.now)
