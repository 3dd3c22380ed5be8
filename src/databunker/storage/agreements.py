"""Repository of agreements (consents given or refused by a person for a legal basis)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from databunker.storage.dialects import update_returning
from databunker.storage.prepared import Prepared
from databunker.storage.tables import agreements
from databunker.storage.tenancy import (
    bound_filter,
    data_columns,
    owner,
    tenant_of,
    with_scope,
)

YES = "yes"


@dataclass(slots=True)
class AgreementRow:
    id: int
    brief: str
    user_token: str | None
    who_idx: bytes | None
    who: bytes | None
    mode: str
    status: str
    referencecode: str | None
    lastmodifiedby: str | None
    agreementmethod: str | None
    created: int
    starttime: int
    endtime: int
    updated: int


_COLUMNS = data_columns(agreements)


def _row(row: Any) -> AgreementRow:
    return AgreementRow(**row._mapping)


def find(
    conn: Connection,
    brief: str,
    *,
    user_token: str | None = None,
    who_idx: bytes | None = None,
    for_update: bool = False,
) -> AgreementRow | None:
    """The agreement for ``brief`` of a person (by token) or of an identity (by blind index)."""
    if user_token is not None:
        condition = agreements.c.user_token == user_token
    elif who_idx is not None:
        condition = sa.and_(agreements.c.who_idx == who_idx, agreements.c.user_token.is_(None))
    else:
        return None
    query = sa.select(*_COLUMNS).where(
        agreements.c.brief == brief, condition, tenant_of(conn, agreements)
    )
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).one_or_none()
    return _row(row) if row else None


def insert(conn: Connection, values: dict[str, Any]) -> int:
    result = conn.execute(agreements.insert().values(**values, tenant_id=owner(conn)))
    key: Any = result.inserted_primary_key
    return int(key[0])


def update(conn: Connection, row_id: int, values: dict[str, Any]) -> None:
    mine = (agreements.c.id == row_id, tenant_of(conn, agreements))
    conn.execute(agreements.update().where(*mine).values(**values))


def delete(conn: Connection, row_id: int) -> None:
    conn.execute(agreements.delete().where(agreements.c.id == row_id, tenant_of(conn, agreements)))


def of_user(conn: Connection, user_token: str) -> list[AgreementRow]:
    query = (
        sa.select(*_COLUMNS)
        .where(agreements.c.user_token == user_token, tenant_of(conn, agreements))
        .order_by(agreements.c.created, agreements.c.id)
    )
    return [_row(row) for row in conn.execute(query)]


def _unbound_query(count: int) -> Prepared:
    names: list[sa.BindParameter[Any]] = [sa.bindparam(f"who{number}") for number in range(count)]
    return Prepared(
        sa.select(*_COLUMNS)
        .where(
            agreements.c.user_token.is_(None),
            agreements.c.who_idx.in_(names),
            bound_filter(agreements),
        )
        .order_by(agreements.c.updated.desc(), agreements.c.id.desc())
    )


# Asked at every user creation: built once for an email, a phone, or both.
_UNBOUND = {count: _unbound_query(count) for count in (1, 2)}


def unbound_for(conn: Connection, who_indexes: list[bytes]) -> list[AgreementRow]:
    """Agreements given under these identities before their owner had a record."""
    if not who_indexes:
        return []
    query = _UNBOUND.get(len(who_indexes)) or _unbound_query(len(who_indexes))
    values = {f"who{number}": digest for number, digest in enumerate(who_indexes)}
    return [AgreementRow(*row) for row in query.all(conn, with_scope(conn, values))]


_ANY_UNBOUND = Prepared(
    sa.select(agreements.c.id)
    .where(agreements.c.user_token.is_(None), bound_filter(agreements))
    .limit(sa.literal_column("1"))
    .offset(sa.literal_column("0"))
)


def any_unbound(conn: Connection) -> bool:
    """Whether any agreement waits for its owner's record (a bulk create asks once)."""
    return _ANY_UNBOUND.first(conn, with_scope(conn, {})) is not None


def count_for_brief(conn: Connection, brief: str) -> int:
    query = sa.select(sa.func.count()).select_from(agreements)
    query = query.where(agreements.c.brief == brief, tenant_of(conn, agreements))
    return int(conn.execute(query).scalar_one())


def revoke_brief(conn: Connection, brief: str, now: int) -> int:
    result = conn.execute(
        agreements.update()
        .where(agreements.c.brief == brief, agreements.c.status == YES, tenant_of(conn, agreements))
        .values(status="revoked", updated=now)
    )
    return int(result.rowcount)


def rename_brief(conn: Connection, old: str, new: str) -> None:
    mine = (agreements.c.brief == old, tenant_of(conn, agreements))
    conn.execute(agreements.update().where(*mine).values(brief=new))


def expire_due(conn: Connection, now: int) -> list[AgreementRow]:
    """Mark every given agreement whose end time has passed as expired; returns those rows.

    One statement: with several servers running it at once, each row changes (and is
    returned) in exactly one of them.
    """
    result = update_returning(
        conn,
        agreements,
        sa.and_(
            agreements.c.status == YES,
            agreements.c.endtime > 0,
            agreements.c.endtime <= now,
            tenant_of(conn, agreements),
        ),
        {"status": "expired", "updated": now},
        _COLUMNS,
    )
    return [_row(row) for row in result]


def forget_identities(conn: Connection, user_token: str) -> None:
    mine = (agreements.c.user_token == user_token, tenant_of(conn, agreements))
    conn.execute(agreements.update().where(*mine).values(who=None))
