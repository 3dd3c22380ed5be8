"""User records: create, look up, change, erase (crypto-shredding) and list.

Invariants: a profile is stored only as ciphertext under the person's own data key, which is
stored only wrapped by the KEK; identities are found through blind indexes, unique per
field (the database refuses a second holder); callers other than root reach only their own
record, and learn nothing about records they may not reach.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from databunker.crypto import DataKey
from databunker.errors import AccessDenied, BadRequest, Conflict, NotFound
from databunker.services import documents
from databunker.services.agreements import bind_to_new_user
from databunker.services.context import Work
from databunker.services.identity import profile_indexes
from databunker.services.outbox import enqueue_webhook
from databunker.services.records import (
    Profile,
    find_user,
    open_user,
    resolve_user,
    seal_profile,
)
from databunker.services.request_queue import open_request
from databunker.services.results import Page, RequestOpened
from databunker.services.text import has_control_characters
from databunker.storage import repositories as user_rows
from databunker.storage.erasure import erase_personal_data
from databunker.storage.repositories import UserRow

__all__ = [
    "Profile",
    "UserRecord",
    "UserSaved",
    "change_user",
    "create_user",
    "erase_user",
    "get_user",
    "list_users",
    "shred",
]


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A person's token and profile (empty once the person is erased)."""

    token: str
    profile: Profile


@dataclass(frozen=True, slots=True)
class UserSaved:
    """A person's record was created or changed: ``token`` names it."""

    token: str


def create_user(work: Work, profile: Profile) -> UserSaved:
    if work.context.schema is not None:
        work.context.schema.check_new(profile)
    indexes = profile_indexes(profile, work.keyring, work.settings.sms.default_country)
    if not any(indexes.values()):
        raise BadRequest("failed to create user, all user lookup fields are missing")
    token = work.random.token()
    key = DataKey.generate()
    # A lookup index another record holds already is refused here (409 naming its field).
    user_rows.insert_user(
        work.conn,
        token=token,
        data_key=work.keyring.wrap(key, token),
        profile=seal_profile(key, token, profile),
        indexes=indexes,
        now=work.now,
    )
    # Consents given by this email or phone before the record existed now belong to it.
    bind_to_new_user(work, token, key, indexes)
    work.audit.record(subject=(token, key), after=documents.encode(profile))
    enqueue_webhook(work, {"action": "profilenew", "identity": token, "mode": "token"})
    return UserSaved(token)


def get_user(work: Work, mode: str, identity: str) -> UserRecord:
    row, _key, profile = resolve_user(work, mode, identity)
    return UserRecord(row.token, profile)


# The profile fields that name a person to an administrator, in order of preference.
DISPLAY_FIELDS = ("email", "name", "login", "phone")


def display_names(work: Work, tokens: Iterable[str]) -> dict[str, str]:
    """A short name for each person (their email, name, login or phone, whichever the
    profile has first), by token; erased or unknown people are left out. Root only: it is
    how an administrator's lists name people beside their tokens, and like those lists it
    files no audit event per person."""
    if not work.principal.is_root:
        raise AccessDenied()
    shown: dict[str, str] = {}
    for token in dict.fromkeys(tokens):
        row = find_user(work, "token", token)
        if row is None or row.erased is not None:
            continue
        _key, profile = open_user(work, row)
        for name in DISPLAY_FIELDS:
            value = profile.get(name)
            if isinstance(value, str) and value.strip():
                shown[token] = value.strip()
                break
    return shown


def change_user(work: Work, mode: str, identity: str, change: Any) -> UserSaved | RequestOpened:
    """The change applied, or (a person's own change that needs approval) queued."""
    row, key, old = resolve_user(work, mode, identity, for_update=True)
    if row.erased is not None or key is None:
        raise NotFound("user record not found")
    new = documents.apply_change(old, change)
    schema = work.context.schema
    if schema is not None:
        schema.check_change(old, new)
    if work.principal.is_user:
        needs_approval = not work.settings.selfservice.user_record_change or (
            schema is not None and schema.admin_fields_changed(old, new)
        )
        if needs_approval:
            return _request(work, row.token, key, "change-profile", change)
    indexes = profile_indexes(new, work.keyring, work.settings.sms.default_country)
    applied = user_rows.update_user(
        work.conn,
        token=row.token,
        expected_version=row.version,
        profile=seal_profile(key, row.token, new),
        indexes=indexes,
        now=work.now,
    )
    if not applied:
        raise Conflict("the record was changed at the same time; try again")
    work.audit.record(before=documents.encode(old), after=documents.encode(new))
    changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    enqueue_webhook(
        work,
        {"action": "profilechange", "identity": row.token, "mode": "token", "fields": changed},
    )
    return UserSaved(row.token)


def erase_user(work: Work, mode: str, identity: str) -> RequestOpened | None:
    """The person is erased (None), or their own erasure waits for approval."""
    if mode == "email" and work.principal.is_root and find_user(work, mode, identity) is None:
        if has_control_characters(identity):
            raise BadRequest("invalid email")
        # Nothing is stored under this email: there is nothing to forget.
        return None
    row, key, profile = resolve_user(work, mode, identity, for_update=True)
    if row.erased is not None:
        raise NotFound("user record not found")
    if work.principal.is_user and not work.settings.selfservice.forget_me:
        return _request(work, row.token, key, "forget-me", None)
    shred(work, row, key, profile)
    work.audit.forget_person()
    return None


def _request(
    work: Work, user_token: str, key: DataKey | None, action: str, change: Any
) -> RequestOpened:
    """A person's own change or erasure that waits for an administrator's approval."""
    work.audit.record(title=f"user {action} request")
    return open_request(work, user_token=user_token, action=action, key=key, change=change)


def shred(work: Work, row: UserRow, key: DataKey | None, profile: Profile) -> None:
    """Crypto-shredding: destroy the wrapped key and every ciphertext; keep the token.

    Fields the schema marks ``preserve`` survive, sealed under the same key, and so do the
    lookup indexes of preserved identities.
    """
    schema = work.context.schema
    kept = schema.preserved_part(profile) if schema is not None and key is not None else {}
    if kept and key is not None:
        indexes = profile_indexes(kept, work.keyring, work.settings.sms.default_country)
        user_rows.erase_user(
            work.conn,
            token=row.token,
            now=work.now,
            data_key=row.data_key,
            profile=seal_profile(key, row.token, kept),
            indexes=indexes,
        )
    else:
        user_rows.erase_user(
            work.conn, token=row.token, now=work.now, data_key=None, profile=None, indexes={}
        )
    erase_personal_data(work.conn, row.token)
    enqueue_webhook(work, {"action": "forgetme", "identity": row.token, "mode": "token"})


def list_users(work: Work, offset: int, limit: int) -> Page[UserRecord]:
    """Every record, newest first (root only, declared by the route), if
    ``generic.list_users`` allows listing at all."""
    if not work.settings.generic.list_users:
        raise AccessDenied()
    total = user_rows.count_users(work.conn)
    rows = []
    for row in user_rows.list_users(work.conn, offset=offset, limit=limit):
        _key, profile = open_user(work, row)
        rows.append(UserRecord(row.token, profile))
    return Page(total, rows)
