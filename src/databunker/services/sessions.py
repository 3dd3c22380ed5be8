"""Sessions: caller-chosen ids holding an application's session object, optionally linked to
a person.

Invariants: a session's object is stored only as ciphertext under the session's own data key
(itself stored only wrapped by the KEK), bound to the session id and its owner, so it cannot
be moved to another session or person. An expired session is indistinguishable from one that
never existed. Root reads and writes any session; a person's token reads only live sessions
linked to that person, and learns nothing about any other session, not even whether it exists.
"""

from __future__ import annotations

from typing import Any

from databunker.crypto import DataKey, is_uuid, value_context
from databunker.errors import AccessDenied, NotFound
from databunker.services import documents
from databunker.services.context import AuditEvent, Work
from databunker.services.durations import capped_expiry
from databunker.services.identity import plain_text, require_uuid
from databunker.services.records import find_user, resolve_user
from databunker.storage import repositories as user_repo
from databunker.storage import sessions as repo
from databunker.storage.repositories import UserRow

JSONObject = dict[str, Any]

# The body keys that link a session to a person, in the order they are tried.
LINK_FIELDS = ("login", "email", "phone", "custom", "token")


def _key_owner(session: str) -> str:
    return f"session:{session}"


def _context(session: str, user_token: str | None) -> bytes:
    return value_context("sessions", "data", session, user_token or "")


def open_session_data(work: Work, row: repo.SessionRow) -> JSONObject:
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
    row = user_repo.get_user(work.conn, user_token)
    if row is None or row.data_key is None:
        return None
    return work.keyring.unwrap(row.data_key, row.token)


def _file_event(work: Work, session: str, row: repo.SessionRow | None) -> None:
    if not work.audited:
        return
    work.audit.record(mode="session", who=session)
    if row is not None and row.user_token is not None:
        work.audit.record(subject=(row.user_token, _person_key(work, row.user_token)))


def _live(work: Work, row: repo.SessionRow | None) -> repo.SessionRow | None:
    return row if row is not None and row.expires > work.now else None


def upsert_session(work: Work, session: str, data: JSONObject) -> JSONObject:
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
    repo.upsert_session(
        work.conn,
        session=session,
        user_token=user_token,
        data_key=work.keyring.wrap(key, _key_owner(session)),
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
    return {"status": "ok", "session": session}


def get_session(work: Work, session: str) -> JSONObject:
    require_uuid(session)
    row = repo.get_session(work.conn, session)
    _file_event(work, session, row)
    live = _live(work, row)
    if not work.principal.is_root and (
        live is None or live.user_token is None or live.user_token != work.principal.user_token
    ):
        raise AccessDenied()
    if live is None:
        raise NotFound("not found")
    return {
        "status": "ok",
        "session": session,
        "when": live.updated,
        "data": open_session_data(work, live),
    }


def delete_session(work: Work, session: str) -> JSONObject:
    """Root only; deleting a session that is not there is done too."""
    if not work.principal.is_root:
        raise AccessDenied()
    require_uuid(session)
    removed = repo.delete_session(work.conn, session)
    _file_event(work, session, removed)
    return {"status": "ok"}


def list_user_sessions(
    work: Work,
    mode: str,
    identity: str,
    offset: int,
    limit: int,
    *,
    with_lifetime: bool = False,
) -> JSONObject:
    """A page of the person's live sessions, most recently written first.

    ``with_lifetime`` adds each session's ``created`` and ``expires`` times (the privacy
    portal shows them; v1's rows carry neither).
    """
    person, _key, _profile = resolve_user(work, mode, identity)
    total = repo.count_live_user_sessions(work.conn, person.token, work.now)
    rows = repo.live_user_sessions(work.conn, person.token, work.now, offset=offset, limit=limit)
    listed = []
    for r in rows:
        entry: JSONObject = {"when": r.updated, "session": r.session}
        if with_lifetime:
            entry.update(created=r.created, expires=r.expires)
        entry["data"] = open_session_data(work, r)
        listed.append(entry)
    return {"status": "ok", "total": total, "rows": listed}


def purge_expired_sessions(work: Work) -> int:
    """The periodic job: delete every session whose time is up."""
    return repo.purge_expired_sessions(work.conn, work.now)
