"""User app records: a JSON document per person and application, under the person's key.

Invariants: a record is stored only as ciphertext under its owner's data key, bound to its
owner and application; callers other than root reach only their own records. A person using
their own token changes a record directly only for applications that
``selfservice.app_record_change`` opens to self-service; anywhere else a create or change
becomes a ``change-app-data`` request for an administrator, and a delete is refused (there is
no request action for it). Root is never routed to approval.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from databunker.crypto import DataKey, value_context
from databunker.errors import AccessDenied, BadRequest, Conflict, NotFound
from databunker.services import documents
from databunker.services.context import Work
from databunker.services.records import resolve_user
from databunker.services.request_queue import open_request
from databunker.services.results import RequestOpened
from databunker.storage import apps as app_rows
from databunker.storage.repositories import UserRow

JSONObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class AppRecord:
    """A person's record for one application."""

    token: str
    app: str
    data: JSONObject


@dataclass(frozen=True, slots=True)
class AppRecordSaved:
    """A person's app record was written or deleted: ``token`` names the person."""

    token: str


@dataclass(frozen=True, slots=True)
class UserApps:
    """The applications holding a record of the person (descending, as v1 lists them)."""

    token: str
    apps: list[str]


class AppRecordNotFound(NotFound):
    """The person exists, but holds no record for this application."""

    def __init__(self) -> None:
        super().__init__("not found")


APP_NAME = re.compile(r"[a-z][a-z0-9_]{1,30}")
CHANGE_APP_DATA = "change-app-data"


def parse_app_name(name: str) -> str:
    """The app name as stored: lower-cased, 2-31 characters of ``[a-z0-9_]``, a letter first."""
    app = name.lower()
    if APP_NAME.fullmatch(app) is None:
        raise BadRequest("bad appname")
    return app


def self_service_allows(work: Work, app: str) -> bool:
    """Whether ``selfservice.app_record_change`` (glob patterns) opens ``app`` to its users."""
    patterns = work.settings.selfservice.app_record_change
    return any(fnmatchcase(app, pattern.strip().lower()) for pattern in patterns)


def _needs_approval(work: Work, app: str) -> bool:
    return work.principal.is_user and not self_service_allows(work, app)


def _context(user_token: str, app: str) -> bytes:
    return value_context("user_apps", "data", f"{user_token}/{app}", user_token)


def seal_app_record(key: DataKey, user_token: str, app: str, record: JSONObject) -> bytes:
    return key.encrypt(documents.encode(record), _context(user_token, app))


def open_app_record(key: DataKey, row: app_rows.AppRecordRow) -> JSONObject:
    record: JSONObject = documents.decode(key.decrypt(row.data, _context(row.user_token, row.app)))
    return record


def _subject(
    work: Work, mode: str, identity: str, app: str, *, for_update: bool = False
) -> tuple[UserRow, DataKey | None]:
    work.audit.record(app=app)
    row, key, _profile = resolve_user(work, mode, identity, for_update=for_update)
    return row, key


def _living(row: UserRow, key: DataKey | None) -> DataKey:
    """The data key of a person who can still be written to (erased people cannot)."""
    if row.erased is not None or key is None:
        raise NotFound("user record not found")
    return key


def _request_change(
    work: Work, user_token: str, key: DataKey, app: str, change: Any
) -> RequestOpened:
    """A ``change-app-data`` request; while one is open for this app, that one is answered."""
    opened = open_request(
        work, user_token=user_token, action=CHANGE_APP_DATA, key=key, app=app, change=change
    )
    work.audit.record(msg=f"request {opened.rtoken}")
    return opened


def write_app_record(
    work: Work,
    user_token: str,
    key: DataKey,
    app: str,
    record: JSONObject,
    *,
    current: app_rows.AppRecordRow | None,
) -> None:
    """Store ``record``: a new row when ``current`` is None, else a compare-and-set on it."""
    data = seal_app_record(key, user_token, app, record)
    if current is None:
        # A concurrent insert of the same record is refused by storage (409).
        app_rows.insert_app_record(
            work.conn, user_token=user_token, app=app, data=data, now=work.now
        )
        return
    applied = app_rows.update_app_record(
        work.conn,
        user_token=user_token,
        app=app,
        expected_version=current.version,
        data=data,
        now=work.now,
    )
    if not applied:
        raise Conflict("the record was changed at the same time; try again")


def apply_app_change(
    work: Work,
    user_token: str,
    key: DataKey,
    app: str,
    change: Any,
    *,
    create_missing: bool = False,
) -> tuple[JSONObject, JSONObject]:
    """Apply a merge patch or JSON Patch to a person's app record; returns (before, after).

    A missing record is 404, unless ``create_missing`` (an approved ``change-app-data``
    request, whose change may be a whole new record) starts it from ``{}``.
    """
    current = app_rows.get_app_record(work.conn, user_token, app, for_update=True)
    if current is None and not create_missing:
        raise AppRecordNotFound()
    before = open_app_record(key, current) if current is not None else {}
    after = documents.apply_change(before, change)
    write_app_record(work, user_token, key, app, after, current=current)
    return before, after


def create_app_record(
    work: Work, mode: str, identity: str, name: str, record: JSONObject
) -> AppRecordSaved | RequestOpened:
    """POST: create the record or overwrite it whole."""
    app = parse_app_name(name)
    row, key = _subject(work, mode, identity, app, for_update=True)
    key = _living(row, key)
    if _needs_approval(work, app):
        # Approving applies the change as a JSON Patch that replaces the whole document,
        # so the record becomes exactly what was posted.
        replace_whole = [{"op": "add", "path": "", "value": record}]
        return _request_change(work, row.token, key, app, replace_whole)
    current = app_rows.get_app_record(work.conn, row.token, app, for_update=True)
    before = open_app_record(key, current) if current is not None else None
    write_app_record(work, row.token, key, app, record, current=current)
    work.audit.record(
        before=documents.encode(before) if before is not None else None,
        after=documents.encode(record),
    )
    return AppRecordSaved(row.token)


def get_app_record(work: Work, mode: str, identity: str, name: str) -> AppRecord:
    app = parse_app_name(name)
    row, key = _subject(work, mode, identity, app)
    found = app_rows.get_app_record(work.conn, row.token, app) if key is not None else None
    if key is None:
        raise NotFound("not found")
    if found is None:
        raise AppRecordNotFound()
    return AppRecord(row.token, app, open_app_record(key, found))


def change_app_record(
    work: Work, mode: str, identity: str, name: str, change: Any
) -> AppRecordSaved | RequestOpened:
    """PUT: a merge patch (object) or JSON Patch (array) of an existing record."""
    app = parse_app_name(name)
    row, key = _subject(work, mode, identity, app, for_update=True)
    key = _living(row, key)
    if _needs_approval(work, app):
        current = app_rows.get_app_record(work.conn, row.token, app)
        # A change that cannot apply is refused now, not when an administrator approves it;
        # a record that does not exist yet starts from {} (as approving it will).
        documents.apply_change(open_app_record(key, current) if current else {}, change)
        return _request_change(work, row.token, key, app, change)
    before, after = apply_app_change(work, row.token, key, app, change)
    work.audit.record(before=documents.encode(before), after=documents.encode(after))
    return AppRecordSaved(row.token)


def delete_app_record(
    work: Work, mode: str, identity: str, name: str, *, must_exist: bool = False
) -> AppRecordSaved:
    """DELETE: idempotent (unless ``must_exist``, v2); a person's own token may delete only
    self-service apps' records."""
    app = parse_app_name(name)
    row, key = _subject(work, mode, identity, app, for_update=True)
    _living(row, key)
    if _needs_approval(work, app):
        raise AccessDenied("this app record can be deleted only by an administrator")
    deleted = app_rows.delete_app_record(work.conn, row.token, app)
    if must_exist and not deleted:
        raise AppRecordNotFound()
    return AppRecordSaved(row.token)


def request_app_change(
    work: Work, mode: str, identity: str, name: str, change: Any
) -> RequestOpened:
    """A change of the person's app record queued for approval, whoever asks (v2); a change
    that cannot apply is refused now."""
    app = parse_app_name(name)
    row, key = _subject(work, mode, identity, app, for_update=True)
    key = _living(row, key)
    current = app_rows.get_app_record(work.conn, row.token, app)
    documents.apply_change(open_app_record(key, current) if current else {}, change)
    return _request_change(work, row.token, key, app, change)


def list_user_apps(work: Work, mode: str, identity: str) -> UserApps:
    """The applications holding a record of the person (descending, as v1 answers)."""
    row, _key, _profile = resolve_user(work, mode, identity)
    return UserApps(row.token, app_rows.user_app_names(work.conn, row.token))


def list_app_names(work: Work) -> list[str]:
    """Every application that holds at least one record (ascending); a root route."""
    return app_rows.all_app_names(work.conn)
