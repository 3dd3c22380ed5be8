"""User records: create, look up, change, erase (crypto-shredding) and list.

Invariants: a profile is stored only as ciphertext under the person's own data key, which is
stored only wrapped by the KEK; identities are found through blind indexes; callers other
than root reach only their own record, and learn nothing about records they may not reach.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from databunker.crypto import DataKey, new_token, value_context
from databunker.errors import AccessDenied, BadRequest, Conflict, NotFound
from databunker.services import documents
from databunker.services.access import may_access_user, require_root
from databunker.services.context import Work
from databunker.services.identity import (
    lookup_index,
    parse_mode,
    profile_indexes,
    require_uuid,
)
from databunker.services.outbox import enqueue_webhook
from databunker.services.requests import open_request
from databunker.services.text import has_control_characters
from databunker.storage import repositories as repo
from databunker.storage.erasure import erase_personal_data
from databunker.storage.repositories import INDEX_FIELDS, UserRow

Profile = dict[str, Any]


def profile_context(token: str) -> bytes:
    return value_context("users", "profile", token, token)


def seal_profile(key: DataKey, token: str, profile: Profile) -> bytes:
    return key.encrypt(documents.encode(profile), profile_context(token))


def open_user(work: Work, row: UserRow) -> tuple[DataKey | None, Profile]:
    """The person's data key and profile; erased people have no key and an empty profile."""
    if row.data_key is None:
        return None, {}
    key = work.keyring.unwrap(row.data_key, row.token)
    if row.profile is None:
        return key, {}
    profile = documents.decode(key.decrypt(row.profile, profile_context(row.token)))
    return key, profile


def find_user(work: Work, mode: str, identity: str, *, for_update: bool = False) -> UserRow | None:
    parse_mode(mode)
    if mode == "token":
        require_uuid(identity)
        return repo.get_user(work.conn, identity, for_update=for_update)
    digest = lookup_index(mode, identity, work.keyring, work.settings.sms.default_country)
    if digest is None:
        return None
    return repo.find_user_by_index(work.conn, mode, digest, for_update=for_update)


def resolve_user(
    work: Work, mode: str, identity: str, *, for_update: bool = False
) -> tuple[UserRow, DataKey | None, Profile]:
    """Find the addressed person and check the caller may reach them.

    Root learns that a record is missing (404); any other caller gets the same 403 whether
    the record is missing or belongs to someone else.
    """
    row = find_user(work, mode, identity, for_update=for_update)
    work.audit.record(mode=mode)
    if row is not None:
        work.audit.record(user_token=row.token, who=identity)
    if not may_access_user(work.principal, row.token if row else None):
        raise AccessDenied()
    if row is None:
        raise NotFound("not found")
    key, profile = open_user(work, row)
    work.audit.record(subject=(row.token, key))
    return row, key, profile


def _check_unique(work: Work, indexes: dict[str, bytes | None], owner: str | None) -> None:
    for field in INDEX_FIELDS:
        digest = indexes.get(field)
        if digest is None:
            continue
        holder = repo.index_owner(work.conn, field, digest)
        if holder is not None and holder != owner:
            raise Conflict(f"duplicate index: {field}")


def create_user(work: Work, profile: Profile) -> dict[str, Any]:
    if work.context.schema is not None:
        work.context.schema.check_new(profile)
    indexes = profile_indexes(profile, work.keyring, work.settings.sms.default_country)
    _check_unique(work, indexes, owner=None)
    if not any(indexes.values()):
        raise BadRequest("failed to create user, all user lookup fields are missing")
    token = new_token()
    key = DataKey.generate()
    try:
        repo.insert_user(
            work.conn,
            token=token,
            data_key=work.keyring.wrap(key, token),
            profile=seal_profile(key, token, profile),
            indexes=indexes,
            now=work.now,
        )
    except sa.exc.IntegrityError as exc:
        raise Conflict("duplicate index") from repo.translate_unique_violation(exc)
    # Consents given by this email or phone before the record existed now belong to it.
    from databunker.services.agreements import bind_to_new_user

    bind_to_new_user(work, token, key, indexes)
    work.audit.record(subject=(token, key), after=documents.encode(profile))
    enqueue_webhook(work, {"action": "profilenew", "identity": token, "mode": "token"})
    return {"status": "ok", "token": token}


def get_user(work: Work, mode: str, identity: str) -> dict[str, Any]:
    row, _key, profile = resolve_user(work, mode, identity)
    return {"status": "ok", "token": row.token, "data": profile}


def change_user(work: Work, mode: str, identity: str, change: Any) -> dict[str, Any]:
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
    _check_unique(work, indexes, owner=row.token)
    try:
        applied = repo.update_user(
            work.conn,
            token=row.token,
            expected_version=row.version,
            profile=seal_profile(key, row.token, new),
            indexes=indexes,
            now=work.now,
        )
    except sa.exc.IntegrityError as exc:
        raise Conflict("duplicate index") from repo.translate_unique_violation(exc)
    if not applied:
        raise Conflict("the record was changed at the same time; try again")
    work.audit.record(before=documents.encode(old), after=documents.encode(new))
    changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    enqueue_webhook(
        work,
        {"action": "profilechange", "identity": row.token, "mode": "token", "fields": changed},
    )
    return {"status": "ok", "token": row.token}


def erase_user(work: Work, mode: str, identity: str) -> dict[str, Any]:
    if mode == "email" and work.principal.is_root and find_user(work, mode, identity) is None:
        if has_control_characters(identity):
            raise BadRequest("invalid email")
        # Nothing is stored under this email: there is nothing to forget.
        return {"status": "ok", "result": "done"}
    row, key, profile = resolve_user(work, mode, identity, for_update=True)
    if row.erased is not None:
        raise NotFound("user record not found")
    if work.principal.is_user and not work.settings.selfservice.forget_me:
        return _request(work, row.token, key, "forget-me", None)
    shred(work, row, key, profile)
    work.audit.forget_person()
    return {"status": "ok", "result": "done"}


def _request(
    work: Work, user_token: str, key: DataKey | None, action: str, change: Any
) -> dict[str, Any]:
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
        repo.erase_user(
            work.conn,
            token=row.token,
            now=work.now,
            data_key=row.data_key,
            profile=seal_profile(key, row.token, kept),
            indexes=indexes,
        )
    else:
        repo.erase_user(
            work.conn, token=row.token, now=work.now, data_key=None, profile=None, indexes={}
        )
    erase_personal_data(work.conn, row.token)
    enqueue_webhook(work, {"action": "forgetme", "identity": row.token, "mode": "token"})


def list_users(work: Work, offset: int, limit: int) -> dict[str, Any]:
    require_root(work.principal)
    if not work.settings.generic.list_users:
        raise AccessDenied()
    total = repo.count_users(work.conn)
    rows = []
    for row in repo.list_users(work.conn, offset=offset, limit=limit):
        _key, profile = open_user(work, row)
        rows.append({"token": row.token, "private": profile})
    return {"status": "ok", "total": total, "rows": rows}
