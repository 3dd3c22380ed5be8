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
from databunker.services.access import require_root
from databunker.services.agreements import bind_to_new_user
from databunker.services.context import AuditEvent, Work
from databunker.services.identity import profile_indexes
from databunker.services.keys import hold_current_kek
from databunker.services.outbox import enqueue_webhook
from databunker.services.records import (
    Profile,
    find_user,
    open_user,
    resolve_user,
    seal_profile,
    wrap_data_key,
)
from databunker.services.request_queue import open_request
from databunker.services.results import Page, RequestOpened
from databunker.services.text import has_control_characters
from databunker.storage import agreements as agreement_rows
from databunker.storage import repositories as user_rows
from databunker.storage import retention as retention_rows
from databunker.storage.erasure import erase_personal_data
from databunker.storage.repositories import UserRow

__all__ = [
    "Profile",
    "UserDetail",
    "UserRecord",
    "UserSaved",
    "change_user",
    "create_user",
    "create_users",
    "delete_user",
    "delete_users",
    "erase_user",
    "find_users",
    "get_user",
    "get_user_detail",
    "list_living_users",
    "list_users",
    "request_change",
    "request_erasure",
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


@dataclass(frozen=True, slots=True)
class UserDetail:
    """A living person's record and its retention deadline (``finaltime``, 0 for none)."""

    token: str
    profile: Profile
    finaltime: int


def create_user(
    work: Work, profile: Profile, *, require_lookup: bool = True, finaltime: int = 0
) -> UserSaved:
    """A new person. ``require_lookup`` (v1) refuses a profile with no lookup identity;
    without it (v2) such a person is reached by their token only. ``finaltime`` (v2), an
    absolute time, starts a retention as root would: the person is erased then, and no
    retain/delete link exists for it."""
    token, key = _insert_user(work, profile, require_lookup=require_lookup, finaltime=finaltime)
    work.audit.record(subject=(token, key), after=documents.encode(profile))
    return UserSaved(token)


def create_users(
    work: Work, profiles: list[Profile], *, finaltime: int = 0, require_lookup: bool = False
) -> list[UserSaved]:
    """Many new people in one transaction, each as ``create_user`` makes one (by default v2's
    rules: no lookup identity needed; ``require_lookup``: v1's), each with an audit event of
    their own; one refused profile (a duplicate identity included) refuses them all. The
    rows and the events are written in one statement each."""
    schema = work.context.schema
    new: list[user_rows.NewUser] = []
    keys: list[DataKey] = []
    hold_current_kek(work.conn, work.keyring)  # stored until this unit ends (a retire waits)
    for profile in profiles:
        if schema is not None:
            schema.check_new(profile)
        indexes = _new_indexes(work, profile, require_lookup=require_lookup)
        token = work.random.token()
        key = DataKey.generate()
        new.append(
            user_rows.NewUser(
                token=token,
                data_key=work.keyring.wrap(key, token),
                profile=seal_profile(key, token, profile),
                indexes=indexes,
            )
        )
        keys.append(key)
    user_rows.insert_users(work.conn, new, now=work.now, final_time=finaltime)
    # Consents given before the records existed: looked for only if any wait at all.
    pending = agreement_rows.any_unbound(work.conn)
    accessor = work.principal.accessor
    for user, key, profile in zip(new, keys, profiles, strict=True):
        if pending:
            bind_to_new_user(work, user.token, key, user.indexes)
        enqueue_webhook(work, {"action": "profilenew", "identity": user.token, "mode": "token"})
        work.audit.also(
            AuditEvent(
                title=CREATE_TITLE,
                accessor=accessor,
                user_token=user.token,
                data_key=key,
                after=documents.encode(profile),
            )
        )
    return [UserSaved(user.token) for user in new]


CREATE_TITLE = "create user record"


def _new_indexes(work: Work, profile: Profile, *, require_lookup: bool) -> dict[str, bytes | None]:
    """A new person's lookup indexes; v1 (``require_lookup``) refuses a person without any."""
    indexes = profile_indexes(profile, work.keyring, work.settings.sms.default_country)
    if require_lookup and not any(indexes.values()):
        raise BadRequest("failed to create user, all user lookup fields are missing")
    return indexes


def _insert_user(
    work: Work, profile: Profile, *, require_lookup: bool, finaltime: int
) -> tuple[str, DataKey]:
    if work.context.schema is not None:
        work.context.schema.check_new(profile)
    indexes = _new_indexes(work, profile, require_lookup=require_lookup)
    token = work.random.token()
    key = DataKey.generate()
    # A lookup index another record holds already is refused here (409 naming its field).
    user_rows.insert_user(
        work.conn,
        token=token,
        data_key=wrap_data_key(work, key, token),
        profile=seal_profile(key, token, profile),
        indexes=indexes,
        now=work.now,
    )
    if finaltime:
        retention_rows.start_expiration(
            work.conn,
            token,
            status=retention_rows.WAIT,
            time=finaltime,
            token_hash=None,
            started_by="root",
        )
    # Consents given by this email or phone before the record existed now belong to it.
    bind_to_new_user(work, token, key, indexes)
    enqueue_webhook(work, {"action": "profilenew", "identity": token, "mode": "token"})
    return token, key


def get_user(work: Work, mode: str, identity: str) -> UserRecord:
    row, _key, profile = resolve_user(work, mode, identity)
    return UserRecord(row.token, profile)


def get_user_detail(work: Work, mode: str, identity: str) -> UserDetail:
    """A living person's record; an erased one is not found."""
    row, key, profile = resolve_user(work, mode, identity)
    if row.erased is not None or key is None:
        raise NotFound("user record not found")
    state = retention_rows.get_expiration(work.conn, row.token)
    deadline = state.time if state is not None and state.status == retention_rows.WAIT else 0
    return UserDetail(row.token, profile, deadline)


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


def delete_user(work: Work, mode: str, identity: str) -> None:
    """Erase the person now (crypto-shredding): a missing or already erased person is not
    found, whoever asks (v2)."""
    row, key, profile = resolve_user(work, mode, identity, for_update=True)
    if row.erased is not None:
        raise NotFound("user record not found")
    shred(work, row, key, profile)
    work.audit.forget_person()


def delete_users(work: Work, targets: list[tuple[str, str]]) -> int:
    """Erase each named person (root, as the route declares); nobody by that identity, or
    someone already erased, is skipped. Each erasure is an audit event of its own, which
    keeps no identity. Returns how many were erased."""
    erased = 0
    for mode, identity in targets:
        row = find_user(work, mode, identity, for_update=True)
        if row is None or row.erased is not None:
            continue
        key, profile = open_user(work, row)
        shred(work, row, key, profile)
        work.audit.also(
            AuditEvent(
                title=f"delete user record by {mode}",
                mode=mode,
                accessor=work.principal.accessor,
                user_token=row.token,
            )
        )
        erased += 1
    return erased


def request_change(work: Work, mode: str, identity: str, change: Any) -> RequestOpened:
    """A change of the person's profile (a merge patch or a JSON Patch) queued for approval,
    whoever asks; a change that cannot apply is refused now, not when it is approved."""
    row, key, old = resolve_user(work, mode, identity, for_update=True)
    if row.erased is not None or key is None:
        raise NotFound("user record not found")
    new = documents.apply_change(old, change)
    if work.context.schema is not None:
        work.context.schema.check_change(old, new)
    return _request(work, row.token, key, "change-profile", change)


def request_erasure(work: Work, mode: str, identity: str) -> RequestOpened:
    """The person's erasure queued for approval, whoever asks."""
    row, key, _profile = resolve_user(work, mode, identity, for_update=True)
    if row.erased is not None:
        raise NotFound("user record not found")
    return _request(work, row.token, key, "forget-me", None)


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


def list_living_users(work: Work, offset: int, limit: int) -> Page[UserRecord]:
    """Every record not erased, oldest first, so that paging through a vault that grows
    meanwhile misses nobody; like ``list_users``, only if ``generic.list_users`` allows."""
    if not work.settings.generic.list_users:
        raise AccessDenied()
    total = user_rows.count_living_users(work.conn)
    rows = []
    for row in user_rows.list_living_users(work.conn, offset=offset, limit=limit):
        _key, profile = open_user(work, row)
        rows.append(UserRecord(row.token, profile))
    return Page(total, rows)


def find_users(work: Work, identities: list[tuple[str, str]]) -> list[UserRecord]:
    """The living records the (mode, identity) pairs name, each once, in the order first
    named; an identity that names nobody is simply left out (root only, like listing)."""
    require_root(work.principal)
    if not work.settings.generic.list_users:
        raise AccessDenied()
    found: list[UserRecord] = []
    seen: set[str] = set()
    for mode, identity in identities:
        row = find_user(work, mode, identity)
        if row is None or row.erased is not None or row.token in seen:
            continue
        seen.add(row.token)
        _key, profile = open_user(work, row)
        found.append(UserRecord(row.token, profile))
    return found
