"""A person's record, as every aggregate reaches it: find it by an identity, open its data key
and profile, check the caller may reach it, and seal a profile under the person's key.

Invariants: a profile is stored only as ciphertext under the person's own data key, bound to
the person's token; callers other than root reach only their own record, and learn nothing
about records they may not reach.
"""

from __future__ import annotations

from typing import Any

from databunker.crypto import DataKey, value_context
from databunker.errors import AccessDenied, NotFound
from databunker.services import documents
from databunker.services.access import may_access_user
from databunker.services.context import Work
from databunker.services.identity import lookup_index, parse_mode, require_uuid
from databunker.services.keys import hold_current_kek
from databunker.storage import repositories as user_rows
from databunker.storage.repositories import UserRow

Profile = dict[str, Any]

__all__ = [
    "Profile",
    "find_user",
    "open_by_token",
    "open_user",
    "profile_context",
    "resolve_user",
    "seal_profile",
]


def profile_context(token: str) -> bytes:
    return value_context("users", "profile", token, token)


def seal_profile(key: DataKey, token: str, profile: Profile) -> bytes:
    return key.encrypt(documents.encode(profile), profile_context(token))


def wrap_data_key(work: Work, key: DataKey, owner: str) -> bytes:
    """``key`` wrapped by the current KEK version, which stays stored until the unit ends."""
    hold_current_kek(work.conn, work.keyring)
    return work.keyring.wrap(key, owner)


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
        return user_rows.get_user(work.conn, identity, for_update=for_update)
    digest = lookup_index(mode, identity, work.keyring, work.settings.sms.default_country)
    if digest is None:
        return None
    return user_rows.find_user_by_index(work.conn, mode, digest, for_update=for_update)


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


def open_by_token(
    work: Work, user_token: str, *, for_update: bool = False
) -> tuple[UserRow | None, DataKey | None, Profile]:
    """The person a stored row names (no access check: the caller already made it), filed as
    the audit event's subject; (None, None, {}) when the person is gone."""
    person = find_user(work, "token", user_token, for_update=for_update)
    if person is None:
        return None, None, {}
    key, profile = open_user(work, person)
    work.audit.record(subject=(person.token, key))
    return person, key, profile
