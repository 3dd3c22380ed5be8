"""Shared records: time-limited, anonymous, field-filtered views of a person's data.

Root or the person creates a record naming what to reveal (the profile, one app record or
one of the person's sessions, optionally only some fields) and gets a record token to hand
to a third party, who reads it at ``/v1/get/{record}`` without credentials until it expires.

Invariants: the record token is a capability, so it is stored only as a keyed hash and
never written anywhere in clear (not in the audit trail either); an unknown and an expired
token are answered alike; a record can only point at the person's own app records and
sessions; erasing the person deletes their shared records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from databunker.crypto import DataKey
from databunker.errors import AccessDenied, BadRequest, NotFound
from databunker.services.apps import APP_NAME, open_app_record
from databunker.services.context import Work
from databunker.services.durations import capped_expiry
from databunker.services.identity import require_uuid
from databunker.services.records import open_user, resolve_user
from databunker.services.sessions import open_session_data
from databunker.services.text import clean_text
from databunker.storage import apps as app_rows
from databunker.storage import repositories as user_rows
from databunker.storage import sessions as session_rows
from databunker.storage import sharing as shared_record_rows

# The field a shared record names to reveal the person's token rather than a stored value.
TOKEN_FIELD = "token"  # noqa: S105 - a field name, not a secret
MAX_FIELDS = 100
MAX_FIELD_LENGTH = 256
MAX_PARTNER_LENGTH = 128
SESSION_NOT_SHAREABLE = "the session does not belong to this user"


@dataclass(frozen=True, slots=True)
class SharedRecordCreated:
    """A new shared record: ``record`` is its token, the capability to hand out."""

    record: str


@dataclass(frozen=True, slots=True)
class SharedRecordView:
    """What a shared record reveals: the selected fields of its source (the whole source
    when it names none), and which app record or session that source is, if not the
    profile."""

    data: Any
    app: str | None = None
    session: str | None = None


def record_hash(work: Work, record: str) -> bytes:
    # UUIDs are case-insensitive; the hash is over the canonical lower-case form.
    return work.keyring.hash_secret("shared-record", record.lower())


# -- the sources ------------------------------------------------------------------------------
def _read_app(work: Work, user_token: str, key: DataKey, app: str) -> Any | None:
    found = app_rows.get_app_record(work.conn, user_token, app)
    return open_app_record(key, found) if found is not None else None


def _live_session(work: Work, session: str, user_token: str) -> session_rows.SessionRow | None:
    """The session, if it is the person's and has not expired."""
    found = session_rows.get_session(work.conn, session)
    if found is None or found.user_token != user_token or found.expires <= work.now:
        return None
    return found


# -- request values ---------------------------------------------------------------------------
def _optional_text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadRequest(f"bad {name}")
    return clean_text(name, value)


def parse_fields(value: Any) -> list[str]:
    """``name,address.city,token`` -> the list of dot paths (empty: the whole source)."""
    if value is None or value == "":
        return []
    if not isinstance(value, str):
        raise BadRequest("bad fields")
    paths = [path.strip() for path in value.split(",")]
    paths = [path for path in paths if path]
    if len(paths) > MAX_FIELDS:
        raise BadRequest("too many fields")
    if any(len(path) > MAX_FIELD_LENGTH for path in paths):
        raise BadRequest("bad fields")
    return paths


def _app_name(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or APP_NAME.fullmatch(clean_text("app", value).lower()) is None:
        raise BadRequest("unknown app name")
    return value.lower()


def select_fields(document: Any, paths: list[str], user_token: str) -> dict[str, Any]:
    """An object keyed by the literal paths; a path that leads nowhere gives null."""
    return {
        path: user_token if path == TOKEN_FIELD else _value_at(document, path) for path in paths
    }


def _value_at(document: Any, path: str) -> Any:
    value = document
    for part in path.split("."):
        if isinstance(value, dict):
            if part not in value:
                return None
            value = value[part]
        elif (
            isinstance(value, list) and part.isascii() and part.isdigit() and int(part) < len(value)
        ):
            value = value[int(part)]
        else:
            return None
    return value


# -- operations -------------------------------------------------------------------------------
def create_shared_record(
    work: Work, mode: str, identity: str, body: dict[str, Any] | None
) -> SharedRecordCreated:
    row, key, _profile = resolve_user(work, mode, identity)
    if row.erased is not None or key is None:
        raise NotFound("user record not found")
    body = body or {}
    fields = body.get("fields")
    paths = parse_fields(clean_text("fields", fields) if isinstance(fields, str) else fields)
    app = _app_name(body.get("app"))
    if app is not None and app_rows.get_app_record(work.conn, row.token, app) is None:
        raise NotFound("app not found")
    session = _optional_text(body, "session")
    if session is not None:
        require_uuid(session)
        # Without this check a person could read anyone's session through a shared record.
        if _live_session(work, session, row.token) is None:
            raise AccessDenied(SESSION_NOT_SHAREABLE)
    partner = _optional_text(body, "partner")
    if partner is not None and len(partner) > MAX_PARTNER_LENGTH:
        raise BadRequest("bad partner")
    expires = capped_expiry(
        work.now,
        body.get("expiration"),
        work.settings.policy.max_shareable_record_retention_seconds,
    )
    record = work.random.token()
    shared_record_rows.insert_shared_record(
        work.conn,
        shared_record_rows.ShareableRecord(
            record_hash=record_hash(work, record),
            user_token=row.token,
            partner=partner,
            app=app,
            session=session,
            fields=",".join(paths) or None,
            created=work.now,
            expires=expires,
        ),
    )
    work.audit.record(msg="shared record created")
    return SharedRecordCreated(record)


def get_shared_record(work: Work, record: str) -> SharedRecordView:
    """The anonymous read: whoever holds the record token sees what it names, until expiry."""
    work.audit.record(mode="record")
    require_uuid(record)
    shared = shared_record_rows.find_shared_record(work.conn, record_hash(work, record))
    # Unknown and expired look the same: a guesser learns nothing.
    if shared is None or shared.expires <= work.now:
        raise AccessDenied()
    work.audit.record(user_token=shared.user_token, app=shared.app)
    user = user_rows.get_user(work.conn, shared.user_token)
    if user is None or user.erased is not None:
        raise AccessDenied()
    key, profile = open_user(work, user)
    if key is None:
        raise AccessDenied()
    source: Any
    if shared.app is not None:
        source = _read_app(work, user.token, key, shared.app)
        if source is None:
            raise NotFound("not found")
    elif shared.session is not None:
        found = _live_session(work, shared.session, user.token)
        if found is None:
            raise AccessDenied()
        source = open_session_data(work, found)
    else:
        source = profile
    paths = parse_fields(shared.fields)
    data = select_fields(source, paths, user.token) if paths else source
    # A record names an app record or a session, never both (the app wins, as when read).
    session = shared.session if shared.app is None else None
    return SharedRecordView(data=data, app=shared.app, session=session)


def purge_expired_shared_records(work: Work) -> int:
    """Periodic job: expired shared records are deleted."""
    return shared_record_rows.delete_expired_shared_records(work.conn, work.now)
