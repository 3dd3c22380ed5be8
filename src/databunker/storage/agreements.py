"""Repository of agreements (consents given or refused by a person for a legal basis)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from databunker.storage.dialects import update_returning
from databunker.storage.prepared import Prepared
from databunker.storage.tables import agreements

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
    query = sa.select(agreements).where(agreements.c.brief == brief, condition)
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).one_or_none()
    return _row(row) if row else None


def insert(conn: Connection, values: dict[str, Any]) -> int:
    result = conn.execute(agreements.insert().values(**values))
    key: Any = result.inserted_primary_key
    return int(key[0])


def update(conn: Connection, row_id: int, values: dict[str, Any]) -> None:
    conn.execute(agreements.update().where(agreements.c.id == row_id).values(**values))


def delete(conn: Connection, row_id: int) -> None:
    conn.execute(agreements.delete().where(agreements.c.id == row_id))


def of_user(conn: Connection, user_token: str) -> list[AgreementRow]:
    query = (
        sa.select(agreements)
        .where(agreements.c.user_token == user_token)
        .order_by(agreements.c.created, agreements.c.id)
    )
    return [_row(row) for row in conn.execute(query)]


def _unbound_query(count: int) -> Prepared:
    names: list[sa.BindParameter[Any]] = [sa.bindparam(f"who{number}") for number in range(count)]
    return Prepared(
        sa.select(agreements)
        .where(agreements.c.user_token.is_(None), agreements.c.who_idx.in_(names))
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
    return [AgreementRow(*row) for row in query.all(conn, values)]


_ANY_UNBOUND = Prepared(
    sa.select(agreements.c.id)
    .where(agreements.c.user_token.is_(None))
    .limit(sa.literal_column("1"))
    .offset(sa.literal_column("0"))
)


def any_unbound(conn: Connection) -> bool:
    """Whether any agreement waits for its owner's record (a bulk create asks once)."""
    return _ANY_UNBOUND.first(conn, {}) is not None


def count_for_brief(conn: Connection, brief: str) -> int:
    query = sa.select(sa.func.count()).select_from(agreements)
    return int(conn.execute(query.where(agreements.c.brief == brief)).scalar_one())


def revoke_brief(conn: Connection, brief: str, now: int) -> int:
    result = conn.execute(
        agreements.update()
        .where(agreements.c.brief == brief, agreements.c.status == YES)
        .values(status="revoked", updated=now)
    )
    return int(result.rowcount)


def rename_brief(conn: Connection, old: str, new: str) -> None:
    conn.execute(agreements.update().where(agreements.c.brief == old).values(brief=new))


def expire_due(conn: Connection, now: int) -> list[AgreementRow]:
    """Mark every given agreement whose end time has passed as expired; returns those rows.

    One statement: with several servers running it at once, each row changes (and is
    returned) in exactly one of them.
    """
    result = update_returning(
        conn,
        agreements,
        sa.and_(agreements.c.status == YES, agreements.c.endtime > 0, agreements.c.endtime <= now),
        {"status": "expired", "updated": now},
        list(agreements.c),
    )
    return [_row(row) for row in result]


def forget_identities(conn: Connection, user_token: str) -> None:
    conn.execute(agreements.update().where(agreements.c.user_token == user_token).values(who=None))
