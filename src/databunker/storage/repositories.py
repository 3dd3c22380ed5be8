"""Repositories for the core vault: settings rows, users, access tokens and audit events.

Functions take an open ``Connection`` (the caller owns the transaction) and plain values;
PII arrives here only as ciphertext (``bytes`` made by ``databunker.crypto``) and identities
only as keyed hashes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from databunker.errors import Conflict
from databunker.storage import audit_chain
from databunker.storage.prepared import Prepared
from databunker.storage.tables import access_tokens, audit, meta, users
from databunker.storage.tenancy import (
    EVERY_TENANT,
    bound_filter,
    owner,
    scope,
    tenant_of,
    with_scope,
)

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
# key costs more than running it. Each takes the transaction's tenant (``_scoped``): 0, as
# jobs and commands run, spans every tenant.
_IN_TENANT = bound_filter(users)
_scoped = with_scope


def _user_lookup(column: sa.Column[Any]) -> tuple[Prepared, Prepared]:
    """A user by one key column: as read, and locked to be changed (FOR UPDATE)."""
    query = sa.select(*_USER_COLUMNS).where(column == sa.bindparam("key"), _IN_TENANT)
    return Prepared(query), Prepared(query.with_for_update())


_GET_USER = _user_lookup(users.c.token)
_GET_USER_BY_INDEX = {field: _user_lookup(users.c[f"{field}_idx"]) for field in INDEX_FIELDS}
# Who holds an index, in any tenant: the unique indexes span the tenants (a tenant's blind
# indexes are its own, so they never meet another tenant's).
_INDEX_OWNER = {
    field: Prepared(sa.select(users.c.token).where(users.c[f"{field}_idx"] == sa.bindparam("key")))
    for field in INDEX_FIELDS
}
_USER_WRITE = ("data_key", "profile", "version", "updated", *(f"{f}_idx" for f in INDEX_FIELDS))
_INSERT_USER = Prepared(
    users.insert().values(
        {name: sa.bindparam(name) for name in ("token", "tenant_id", "created", *_USER_WRITE)}
    )
)
_UPDATE_USER = Prepared(
    users.update()
    .where(
        users.c.token == sa.bindparam("where_token"),
        users.c.version == sa.bindparam("where_version"),
        _IN_TENANT,
    )
    .values({name: sa.bindparam(name) for name in _USER_WRITE if name != "data_key"})
)


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
        "tenant_id": owner(conn),
        "data_key": data_key,
        "profile": profile,
        "version": 1,
        "created": now,
        "updated": now,
        **{f"{field}_idx": indexes.get(field) for field in INDEX_FIELDS},
    }
    with _unique_indexes(conn, indexes, owner=None):
        _INSERT_USER.execute(conn, values)


@dataclass(frozen=True, slots=True)
class NewUser:
    token: str
    data_key: bytes
    profile: bytes
    indexes: dict[str, bytes | None]


_INSERT_USERS = Prepared(
    users.insert().values(
        {
            name: sa.bindparam(name)
            for name in (
                "token",
                "tenant_id",
                "created",
                *_USER_WRITE,
                "exp_status",
                "exp_time",
                "exp_token_hash",
                "exp_started_by",
            )
        }
    )
)


def insert_users(
    conn: Connection, new: Sequence[NewUser], *, now: int, final_time: int = 0
) -> None:
    """Many users in one statement; an index another record (or another of these) holds is
    refused as ``insert_user`` refuses it (409 naming the field). ``final_time`` starts a
    retention for each (status ``wait``, started by root, with no retain/delete link)."""
    retention = {
        "exp_status": "wait" if final_time else None,
        "exp_time": final_time,
        "exp_token_hash": None,
        "exp_started_by": "root" if final_time else None,
    }
    tenant = owner(conn)
    values = [
        {
            "token": user.token,
            "tenant_id": tenant,
            "data_key": user.data_key,
            "profile": user.profile,
            "version": 1,
            "created": now,
            "updated": now,
            **{f"{field}_idx": user.indexes.get(field) for field in INDEX_FIELDS},
            **retention,
        }
        for user in new
    ]
    try:
        _INSERT_USERS.execute_many(conn, values)
    except sa.exc.IntegrityError as exc:
        conflict = Conflict("duplicate index")
        for user in new:
            conflict = _duplicate_index(conn, exc, user.indexes, user.token)
            if conflict.message != "duplicate index":
                break
        raise conflict from exc


def _one_user(
    conn: Connection, lookup: tuple[Prepared, Prepared], key: object, for_update: bool
) -> UserRow | None:
    row = lookup[for_update].first(conn, {"key": key, "tenant": scope(conn)})
    return UserRow(*row) if row else None


def get_user(conn: Connection, token: str, *, for_update: bool = False) -> UserRow | None:
    return _one_user(conn, _GET_USER, token, for_update)


def find_user_by_index(
    conn: Connection, field: str, digest: bytes, *, for_update: bool = False
) -> UserRow | None:
    return _one_user(conn, _GET_USER_BY_INDEX[field], digest, for_update)


def index_owner(conn: Connection, field: str, digest: bytes) -> str | None:
    row = _INDEX_OWNER[field].first(conn, {"key": digest})
    return None if row is None else str(row[0])


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
    with _unique_indexes(conn, indexes, owner=token):
        return _UPDATE_USER.execute(conn, _scoped(conn, values)) == 1


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
        .where(users.c.token == token, tenant_of(conn, users))
        .values(
            data_key=data_key,
            profile=profile,
            erased=now,
            updated=now,
            version=users.c.version + 1,
            **{f"{field}_idx": indexes.get(field) for field in INDEX_FIELDS},
        )
    )


def user_indexes(conn: Connection, token: str) -> dict[str, bytes | None]:
    columns = [users.c[f"{field}_idx"] for field in INDEX_FIELDS]
    row = conn.execute(
        sa.select(*columns).where(users.c.token == token, tenant_of(conn, users))
    ).one()
    return {
        field: (bytes(value) if value is not None else None)
        for field, value in zip(INDEX_FIELDS, row, strict=True)
    }


def set_user_indexes(conn: Connection, token: str, indexes: dict[str, bytes | None]) -> None:
    """Replace a user's lookup indexes (after a change of the identities' canonical form);
    409 if another record holds one of them."""
    with _unique_indexes(conn, indexes, owner=token):
        conn.execute(
            users.update()
            .where(users.c.token == token, tenant_of(conn, users))
            .values(**{f"{field}_idx": indexes.get(field) for field in INDEX_FIELDS})
        )


def count_users(conn: Connection) -> int:
    counted = sa.select(sa.func.count()).select_from(users).where(tenant_of(conn, users))
    return int(conn.execute(counted).scalar_one())


def list_users(conn: Connection, *, offset: int, limit: int | None) -> list[UserRow]:
    query = (
        sa.select(*_USER_COLUMNS)
        .where(tenant_of(conn, users))
        .order_by(users.c.created.desc(), users.c.token)
    )
    query = query.offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return [_user(row) for row in conn.execute(query)]


def count_living_users(conn: Connection) -> int:
    query = (
        sa.select(sa.func.count())
        .select_from(users)
        .where(users.c.erased.is_(None), tenant_of(conn, users))
    )
    return int(conn.execute(query).scalar_one())


def list_living_users(conn: Connection, *, offset: int, limit: int) -> list[UserRow]:
    """Records not erased, oldest first: a page stays put while new records are added."""
    query = (
        sa.select(*_USER_COLUMNS)
        .where(users.c.erased.is_(None), tenant_of(conn, users))
        .order_by(users.c.created, users.c.token)
        .offset(offset)
        .limit(limit)
    )
    return [_user(row) for row in conn.execute(query)]


# -- access tokens -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AccessTokenRow:
    kind: str
    user_token: str | None
    expires: int
    # The tenant the token belongs to (and acts in: only the default tenant's root token
    # may act in another).
    tenant: int


def insert_access_token(
    conn: Connection,
    *,
    token_hash: bytes,
    kind: str,
    user_token: str | None,
    now: int,
    expires: int = 0,
    tenant: int | None = None,
) -> None:
    """Store a token's hash; it belongs to ``tenant``, by default the transaction's."""
    conn.execute(
        access_tokens.insert().values(
            token_hash=token_hash,
            tenant_id=owner(conn) if tenant is None else tenant,
            kind=kind,
            user_token=user_token,
            created=now,
            expires=expires,
        )
    )


_FIND_ACCESS_TOKEN = Prepared(
    sa.select(
        access_tokens.c.kind,
        access_tokens.c.user_token,
        access_tokens.c.expires,
        access_tokens.c.tenant_id,
    ).where(access_tokens.c.token_hash == sa.bindparam("token_hash"))
)


def find_access_token(conn: Connection, token_hash: bytes) -> AccessTokenRow | None:
    row = _FIND_ACCESS_TOKEN.first(conn, {"token_hash": token_hash})
    return AccessTokenRow(*row) if row else None


def has_root_token(conn: Connection) -> bool:
    """Whether the tenant of the transaction (the default one under ``EVERY_TENANT``) has
    its root token."""
    query = sa.select(sa.func.count()).select_from(access_tokens)
    query = query.where(access_tokens.c.kind == "root", access_tokens.c.tenant_id == owner(conn))
    return bool(conn.execute(query).scalar_one())


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


def _event_tenant(conn: Connection, user_token: str | None) -> int:
    """The tenant an event belongs to: the transaction's; for a job's (which spans the
    tenants) the tenant of the person it is about."""
    tenant = scope(conn)
    if tenant != EVERY_TENANT:
        return tenant
    found = tenant_of_user(conn, user_token) if user_token is not None else None
    return owner(conn) if found is None else found


def tenant_of_user(conn: Connection, user_token: str) -> int | None:
    """The tenant a person belongs to (for a job, which spans the tenants), or None."""
    found = conn.execute(
        sa.select(users.c.tenant_id).where(users.c.token == user_token, tenant_of(conn, users))
    ).scalar_one_or_none()
    return None if found is None else int(found)


def _audit_values(conn: Connection, row: AuditRow) -> dict[str, Any]:
    values = {name: getattr(row, name) for name in AuditRow.__slots__}
    values["tenant_id"] = _event_tenant(conn, row.user_token)
    return values


def insert_audit(conn: Connection, row: AuditRow) -> None:
    """Write an event as the next link of the audit chain (``storage/audit_chain.py``).
    Its key is a fresh random token: this insert breaks no unique index."""
    audit_chain.append(conn, _audit_values(conn, row))


def insert_audits(conn: Connection, rows: Sequence[AuditRow]) -> None:
    """Write events as the next links of the audit chain, in one insert."""
    audit_chain.append_many(conn, [_audit_values(conn, row) for row in rows])


@dataclass(frozen=True, slots=True)
class TitleKind:
    """The titles that begin with one of ``prefixes`` and with none of ``except_prefixes``."""

    prefixes: tuple[str, ...]
    except_prefixes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Which events an audit listing keeps: ``title_contains`` matches the title without
    regard to case, and an event of one of ``title_kinds`` is kept as well; ``since`` and
    ``until`` bound the event time (Unix seconds, until excluded)."""

    title_contains: str | None = None
    since: int | None = None
    until: int | None = None
    title_kinds: tuple[TitleKind, ...] = ()


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _begins(prefixes: tuple[str, ...]) -> sa.ColumnElement[bool]:
    return sa.or_(
        sa.false(), *(audit.c.title.like(f"{_like_escaped(p)}%", escape="\\") for p in prefixes)
    )


def _title_filter(query: AuditQuery) -> sa.ColumnElement[bool] | None:
    wanted: list[sa.ColumnElement[bool]] = []
    if query.title_contains:
        escaped = _like_escaped(query.title_contains.lower())
        wanted.append(sa.func.lower(audit.c.title).like(f"%{escaped}%", escape="\\"))
    for kind in query.title_kinds:
        wanted.append(sa.and_(_begins(kind.prefixes), sa.not_(_begins(kind.except_prefixes))))
    if not wanted:
        return None
    return sa.or_(*wanted)


def _audit_filter(
    conn: Connection, user_token: str | None, query: AuditQuery | None = None
) -> Sequence[sa.ColumnElement[bool]]:
    found: list[sa.ColumnElement[bool]] = [tenant_of(conn, audit)]
    if user_token is not None:
        found.append(audit.c.user_token == user_token)
    if query is not None:
        titled = _title_filter(query)
        if titled is not None:
            found.append(titled)
        if query.since is not None:
            found.append(audit.c.created >= query.since)
        if query.until is not None:
            found.append(audit.c.created < query.until)
    return found


def count_audit(
    conn: Connection, *, user_token: str | None = None, query: AuditQuery | None = None
) -> int:
    counted = (
        sa.select(sa.func.count()).select_from(audit).where(*_audit_filter(conn, user_token, query))
    )
    return int(conn.execute(counted).scalar_one())


def list_audit(
    conn: Connection,
    *,
    user_token: str | None = None,
    offset: int,
    limit: int | None,
    query: AuditQuery | None = None,
) -> list[AuditRow]:
    selected = (
        sa.select(*_AUDIT_COLUMNS)
        .where(*_audit_filter(conn, user_token, query))
        .order_by(audit.c.created.desc(), audit.c.seq.desc())
        .offset(offset)
    )
    if limit is not None:
        selected = selected.limit(limit)
    return [AuditRow(**row._mapping) for row in conn.execute(selected)]


def iter_audit(conn: Connection, *, user_token: str, batch: int = 500) -> Iterator[AuditRow]:
    """A person's events in ``list_audit``'s order, all of them, streamed from one statement
    (one consistent read; ``batch`` rows in memory at a time). Run no other statement on the
    connection until it is exhausted (MariaDB's streamed results hold it)."""
    selected = (
        sa.select(*_AUDIT_COLUMNS)
        .where(*_audit_filter(conn, user_token))
        .order_by(audit.c.created.desc(), audit.c.seq.desc())
        .execution_options(stream_results=True, yield_per=batch)
    )
    result = conn.execute(selected)
    try:
        for row in result:
            yield AuditRow(**row._mapping)
    finally:
        result.close()


def get_audit(conn: Connection, atoken: str) -> AuditRow | None:
    selected = sa.select(*_AUDIT_COLUMNS).where(audit.c.atoken == atoken, tenant_of(conn, audit))
    row = conn.execute(selected).one_or_none()
    return AuditRow(**row._mapping) if row else None


def shred_audit_payloads(conn: Connection, user_token: str) -> None:
    """Erasure: drop every ciphertext of a person's audit trail, keep who-when-what (and
    the digest of the values, so the audit chain still verifies)."""
    conn.execute(
        audit.update()
        .where(audit.c.user_token == user_token, tenant_of(conn, audit))
        .values(who=None, before=None, after=None)
    )


def wrapped_keys(conn: Connection, tokens: Iterable[str]) -> dict[str, bytes | None]:
    wanted = list(set(tokens))
    if not wanted:
        return {}
    rows = conn.execute(
        sa.select(users.c.token, users.c.data_key).where(
            users.c.token.in_(wanted), tenant_of(conn, users)
        )
    )
    return {token: key for token, key in rows}


def delete_user_access_tokens(conn: Connection, user_token: str) -> None:
    conn.execute(
        access_tokens.delete().where(
            access_tokens.c.user_token == user_token, tenant_of(conn, access_tokens)
        )
    )


@contextmanager
def _unique_indexes(
    conn: Connection, indexes: dict[str, bytes | None], owner: str | None
) -> Iterator[None]:
    """A write refused for a lookup index another record holds becomes 409 ``duplicate
    index: <field>``, naming the first such field in ``INDEX_FIELDS`` order. On PostgreSQL
    the transaction is then aborted: a caller that goes on runs the write under a savepoint."""
    try:
        yield
    except sa.exc.IntegrityError as exc:
        raise _duplicate_index(conn, exc, indexes, owner) from exc


def _duplicate_index(
    conn: Connection,
    exc: sa.exc.IntegrityError,
    indexes: dict[str, bytes | None],
    owner: str | None,
) -> Conflict:
    # PostgreSQL names the constraint it checked first (users_login_idx_key), in the order
    # of INDEX_FIELDS, and its transaction can run nothing more. SQLite checks its indexes
    # in an order of its own, but only the failed statement was undone: ask which field
    # another record holds. So do MariaDB and MySQL.
    if conn.dialect.name != "postgresql":
        for field in INDEX_FIELDS:
            digest = indexes.get(field)
            holder = index_owner(conn, field, digest) if digest is not None else None
            if holder is not None and holder != owner:
                return Conflict(f"duplicate index: {field}")
    diagnostics = getattr(exc.orig, "diag", None)
    named = getattr(diagnostics, "constraint_name", None) or str(exc.orig)
    for field in INDEX_FIELDS:
        if f"{field}_idx" in named:
            return Conflict(f"duplicate index: {field}")
    return Conflict("duplicate index")


def purge_audit_before(conn: Connection, cutoff: int) -> int:
    """Retention: events written before ``cutoff`` go; the chain stays verifiable."""
    return audit_chain.purge_before(conn, cutoff)
