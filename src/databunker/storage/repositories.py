"""Repositories for the core vault: settings rows, users, access tokens and audit events.

Functions take an open ``Connection`` (the caller owns the transaction) and plain values;
PII arrives here only as ciphertext (``bytes`` made by ``databunker.crypto``) and identities
only as keyed hashes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from databunker.storage.tables import access_tokens, audit, meta, users

INDEX_FIELDS = ("login", "email", "phone", "custom")


# -- meta ----------------------------------------------------------------------------------
def get_meta(conn: Connection, name: str) -> str | None:
    return conn.execute(sa.select(meta.c.value).where(meta.c.name == name)).scalar_one_or_none()


def set_meta(conn: Connection, name: str, value: str) -> None:
    updated = conn.execute(meta.update().where(meta.c.name == name).values(value=value))
    if updated.rowcount == 0:
        conn.execute(meta.insert().values(name=name, value=value))


# -- users ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class UserRow:
    token: str
    data_key: bytes | None
    profile: bytes | None
    version: int
    created: int
    erased: int | None


_USER_COLUMNS = (
    users.c.token,
    users.c.data_key,
    users.c.profile,
    users.c.version,
    users.c.created,
    users.c.erased,
)


def _user(row: Any) -> UserRow:
    return UserRow(**row._mapping)


# The statements of the hottest paths are built once: building a statement and its cache
# key costs more than running it.
_GET_USER = sa.select(*_USER_COLUMNS).where(users.c.token == sa.bindparam("key"))
_GET_USER_BY_INDEX = {
    field: sa.select(*_USER_COLUMNS).where(users.c[f"{field}_idx"] == sa.bindparam("key"))
    for field in INDEX_FIELDS
}
_INDEX_OWNER = {
    field: sa.select(users.c.token).where(users.c[f"{field}_idx"] == sa.bindparam("key"))
    for field in INDEX_FIELDS
}
_INSERT_USER = users.insert()
_UPDATE_USER = users.update().where(
    users.c.token == sa.bindparam("where_token"),
    users.c.version == sa.bindparam("where_version"),
)
_LOCKED = {
    statement: statement.with_for_update()
    for statement in (_GET_USER, *_GET_USER_BY_INDEX.values())
}


def insert_user(
    conn: Connection,
    *,
    token: str,
    data_key: bytes,
    profile: bytes,
    indexes: dict[str, bytes | None],
    now: int,
) -> None:
    values = {
        "token": token,
        "data_key": data_key,
        "profile": profile,
        "version": 1,
        "created": now,
        "updated": now,
        **{f"{field}_idx": indexes.get(field) for field in INDEX_FIELDS},
    }
    conn.execute(_INSERT_USER, values)


def _one_user(
    conn: Connection, statement: sa.Select[Any], key: object, for_update: bool
) -> UserRow | None:
    query = _LOCKED[statement] if for_update else statement
    row = conn.execute(query, {"key": key}).one_or_none()
    return _user(row) if row else None


def get_user(conn: Connection, token: str, *, for_update: bool = False) -> UserRow | None:
    return _one_user(conn, _GET_USER, token, for_update)


def find_user_by_index(
    conn: Connection, field: str, digest: bytes, *, for_update: bool = False
) -> UserRow | None:
    return _one_user(conn, _GET_USER_BY_INDEX[field], digest, for_update)


def index_owner(conn: Connection, field: str, digest: bytes) -> str | None:
    return conn.execute(_INDEX_OWNER[field], {"key": digest}).scalar_one_or_none()


def update_user(
    conn: Connection,
    *,
    token: str,
    expected_version: int,
    profile: bytes,
    indexes: dict[str, bytes | None],
    now: int,
) -> bool:
    """Compare-and-set on ``version``; False when another writer changed the row first."""
    values = {
        "where_token": token,
        "where_version": expected_version,
        "profile": profile,
        "version": expected_version + 1,
        "updated": now,
        **{f"{field}_idx": indexes.get(field) for field in INDEX_FIELDS},
    }
    return conn.execute(_UPDATE_USER, values).rowcount == 1


def erase_user(
    conn: Connection,
    *,
    token: str,
    now: int,
    data_key: bytes | None,
    profile: bytes | None,
    indexes: dict[str, bytes | None],
) -> None:
    """Tombstone a user: the wrapped key and ciphertext go (unless fields are preserved)."""
    conn.execute(
        users.update()
        .where(users.c.token == token)
        .values(
            data_key=data_key,
            profile=profile,
            erased=now,
            updated=now,
            version=users.c.version + 1,
            **{f"{field}_idx": indexes.get(field) for field in INDEX_FIELDS},
        )
    )


def count_users(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(users)).scalar_one())


def list_users(conn: Connection, *, offset: int, limit: int | None) -> list[UserRow]:
    query = sa.select(*_USER_COLUMNS).order_by(users.c.created.desc(), users.c.token)
    query = query.offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return [_user(row) for row in conn.execute(query)]


# -- access tokens -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AccessTokenRow:
    kind: str
    user_token: str | None
    expires: int


def insert_access_token(
    conn: Connection,
    *,
    token_hash: bytes,
    kind: str,
    user_token: str | None,
    now: int,
    expires: int = 0,
) -> None:
    conn.execute(
        access_tokens.insert().values(
            token_hash=token_hash, kind=kind, user_token=user_token, created=now, expires=expires
        )
    )


_FIND_ACCESS_TOKEN = sa.select(
    access_tokens.c.kind, access_tokens.c.user_token, access_tokens.c.expires
).where(access_tokens.c.token_hash == sa.bindparam("token_hash"))


def find_access_token(conn: Connection, token_hash: bytes) -> AccessTokenRow | None:
    row = conn.execute(_FIND_ACCESS_TOKEN, {"token_hash": token_hash}).one_or_none()
    return AccessTokenRow(**row._mapping) if row else None


def has_root_token(conn: Connection) -> bool:
    query = sa.select(sa.func.count()).select_from(access_tokens)
    return bool(conn.execute(query.where(access_tokens.c.kind == "root")).scalar_one())


# -- audit ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AuditRow:
    atoken: str
    created: int
    user_token: str | None
    mode: str | None
    who: bytes | None
    accessor: str | None
    app: str | None
    title: str
    status: str
    msg: str | None
    debug: str | None
    before: bytes | None
    after: bytes | None


_AUDIT_COLUMNS = (
    audit.c.atoken,
    audit.c.created,
    audit.c.user_token,
    audit.c.mode,
    audit.c.who,
    audit.c.accessor,
    audit.c.app,
    audit.c.title,
    audit.c.status,
    audit.c.msg,
    audit.c.debug,
    audit.c.before,
    audit.c.after,
)


_INSERT_AUDIT = audit.insert()


def insert_audit(conn: Connection, row: AuditRow) -> None:
    conn.execute(_INSERT_AUDIT, {name: getattr(row, name) for name in AuditRow.__slots__})


def _audit_filter(user_token: str | None) -> Sequence[sa.ColumnElement[bool]]:
    return [audit.c.user_token == user_token] if user_token is not None else []


def count_audit(conn: Connection, *, user_token: str | None = None) -> int:
    query = sa.select(sa.func.count()).select_from(audit).where(*_audit_filter(user_token))
    return int(conn.execute(query).scalar_one())


def list_audit(
    conn: Connection, *, user_token: str | None = None, offset: int, limit: int | None
) -> list[AuditRow]:
    query = (
        sa.select(*_AUDIT_COLUMNS)
        .where(*_audit_filter(user_token))
        .order_by(audit.c.created.desc(), audit.c.seq.desc())
        .offset(offset)
    )
    if limit is not None:
        query = query.limit(limit)
    return [AuditRow(**row._mapping) for row in conn.execute(query)]


def get_audit(conn: Connection, atoken: str) -> AuditRow | None:
    row = conn.execute(sa.select(*_AUDIT_COLUMNS).where(audit.c.atoken == atoken)).one_or_none()
    return AuditRow(**row._mapping) if row else None


def shred_audit_payloads(conn: Connection, user_token: str) -> None:
    """Erasure: drop every ciphertext of a person's audit trail, keep who-when-what."""
    conn.execute(
        audit.update()
        .where(audit.c.user_token == user_token)
        .values(who=None, before=None, after=None)
    )


def wrapped_keys(conn: Connection, tokens: Iterable[str]) -> dict[str, bytes | None]:
    wanted = list(set(tokens))
    if not wanted:
        return {}
    rows = conn.execute(sa.select(users.c.token, users.c.data_key).where(users.c.token.in_(wanted)))
    return {token: key for token, key in rows}


def delete_user_access_tokens(conn: Connection, user_token: str) -> None:
    conn.execute(access_tokens.delete().where(access_tokens.c.user_token == user_token))


class UniqueViolation(Exception):
    """An insert or update collided with a unique index."""


def translate_unique_violation(exc: sa.exc.IntegrityError) -> UniqueViolation:
    return UniqueViolation(type(exc.orig).__name__)


def purge_audit_before(conn: Connection, cutoff: int) -> int:
    result = conn.execute(audit.delete().where(audit.c.created > 0, audit.c.created < cutoff))
    return int(result.rowcount)
