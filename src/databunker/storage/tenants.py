"""Repository of tenants: their names, organisations and (encrypted) contact emails, and
the removal of everything a tenant holds when it is deleted.

The tenants table itself belongs to no tenant: a name is resolved to its tenant before the
transaction enters it (``find_by_name``). Tenant 1, the default one, is made by the
migration that brought tenants and can be neither renamed away nor deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from databunker.storage.prepared import Prepared
from databunker.storage.tables import (
    access_tokens,
    activity_legal_bases,
    agreements,
    audit,
    legal_bases,
    login_codes,
    outbox,
    processing_activities,
    requests,
    sessions,
    shared_records,
    tenants,
    user_apps,
    users,
)


@dataclass(frozen=True, slots=True)
class TenantRow:
    id: int
    name: str
    org: str
    email: bytes | None
    created: int
    updated: int


def _row(row: Any) -> TenantRow:
    return TenantRow(**row._mapping)


_BY_NAME = Prepared(sa.select(tenants.c.id).where(tenants.c.name == sa.bindparam("name")))


def find_by_name(conn: Connection, name: str) -> int | None:
    """The id of the tenant called ``name``, or None."""
    row = _BY_NAME.first(conn, {"name": name})
    return int(row[0]) if row else None


def get(conn: Connection, tenant_id: int) -> TenantRow | None:
    row = conn.execute(sa.select(tenants).where(tenants.c.id == tenant_id)).one_or_none()
    return _row(row) if row else None


def insert(conn: Connection, *, name: str, org: str, now: int) -> int | None:
    """A new tenant's id; None if the name is taken (also by a concurrent insert: the
    unique index decides, under a savepoint so the transaction goes on)."""
    if find_by_name(conn, name) is not None:
        return None
    try:
        with conn.begin_nested():
            result = conn.execute(
                tenants.insert().values(name=name, org=org, created=now, updated=now)
            )
    except sa.exc.IntegrityError:
        return None
    key: Any = result.inserted_primary_key
    return int(key[0])


def update(conn: Connection, tenant_id: int, values: dict[str, Any]) -> bool:
    """Change the tenant; False if a new name is taken."""
    name = values.get("name")
    if name is not None and find_by_name(conn, str(name)) not in (None, tenant_id):
        return False
    try:
        with conn.begin_nested():
            conn.execute(tenants.update().where(tenants.c.id == tenant_id).values(**values))
    except sa.exc.IntegrityError:
        return False
    return True


def count(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(tenants)).scalar_one())


def page(conn: Connection, *, offset: int, limit: int) -> list[TenantRow]:
    query = sa.select(tenants).order_by(tenants.c.id).offset(offset).limit(limit)
    return [_row(row) for row in conn.execute(query)]


# What a tenant holds besides its people's records and its audit trail, in an order that
# deletes what refers to something before the thing referred to.
_HELD: tuple[sa.Table, ...] = (
    sessions,
    shared_records,
    user_apps,
    requests,
    agreements,
    login_codes,
    outbox,
    activity_legal_bases,
    processing_activities,
    legal_bases,
    access_tokens,
)


def delete_tenant(conn: Connection, tenant_id: int, now: int) -> int:
    """Crypto-shred the tenant and delete it; returns how many people it held.

    Each person's wrapped data key, profile and lookup indexes go (preserved fields too:
    the whole tenant is forgotten), so nothing of theirs can be decrypted again; their
    tokens stay as tombstones, and the audit trail stays without its encrypted values (it
    is evidence, and its chain still verifies). Everything else the tenant holds, its
    access tokens among it, is deleted. The transaction must be in the tenant (or in every
    tenant) for PostgreSQL's policies to let these statements see its rows.
    """
    mine = users.c.tenant_id == tenant_id
    living = sa.select(sa.func.count()).select_from(users).where(mine, users.c.erased.is_(None))
    people = int(conn.execute(living).scalar_one())
    conn.execute(
        users.update()
        .where(mine)
        .values(
            data_key=None,
            profile=None,
            erased=sa.func.coalesce(users.c.erased, now),
            updated=now,
            version=users.c.version + 1,
            exp_status=None,
            exp_token_hash=None,
            **{column.name: None for column in users.columns if column.name.endswith("_idx")},
        )
    )
    conn.execute(
        audit.update()
        .where(audit.c.tenant_id == tenant_id)
        .values(who=None, before=None, after=None)
    )
    for table in _HELD:
        conn.execute(table.delete().where(table.c.tenant_id == tenant_id))
    conn.execute(tenants.delete().where(tenants.c.id == tenant_id))
    return people
