"""Repository of user requests (changes waiting for a DPO's approval)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from databunker.storage.tables import requests
from databunker.storage.tenancy import data_columns, owner, tenant_of

OPEN = "open"
APPROVED = "approved"
CANCELED = "canceled"


@dataclass(frozen=True, slots=True)
class RequestRow:
    rtoken: str
    user_token: str
    action: str
    status: str
    app: str | None
    brief: str | None
    change: bytes | None
    reason: str | None
    created: int
    updated: int


_COLUMNS = data_columns(requests)


def _row(row: Any) -> RequestRow:
    return RequestRow(**row._mapping)


def find_open(
    conn: Connection, *, user_token: str, action: str, app: str | None, brief: str | None
) -> str | None:
    query = sa.select(requests.c.rtoken).where(
        requests.c.user_token == user_token,
        requests.c.action == action,
        requests.c.status == OPEN,
        requests.c.app.is_(None) if app is None else requests.c.app == app,
        requests.c.brief.is_(None) if brief is None else requests.c.brief == brief,
        tenant_of(conn, requests),
    )
    return conn.execute(query.limit(1)).scalar_one_or_none()


def insert(conn: Connection, row: RequestRow) -> None:
    conn.execute(requests.insert().values(**dataclasses.asdict(row), tenant_id=owner(conn)))


def get(conn: Connection, rtoken: str, *, for_update: bool = False) -> RequestRow | None:
    query = sa.select(*_COLUMNS).where(requests.c.rtoken == rtoken, tenant_of(conn, requests))
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).one_or_none()
    return _row(row) if row else None


def set_status(conn: Connection, rtoken: str, *, status: str, reason: str | None, now: int) -> None:
    conn.execute(
        requests.update()
        .where(requests.c.rtoken == rtoken, tenant_of(conn, requests))
        .values(status=status, reason=reason, updated=now)
    )


def count(conn: Connection, *, user_token: str | None = None, status: str | None = None) -> int:
    query = sa.select(sa.func.count()).select_from(requests).where(tenant_of(conn, requests))
    if user_token is not None:
        query = query.where(requests.c.user_token == user_token)
    if status is not None:
        query = query.where(requests.c.status == status)
    return int(conn.execute(query).scalar_one())


def page(
    conn: Connection,
    *,
    offset: int,
    limit: int,
    user_token: str | None = None,
    status: str | None = None,
) -> list[RequestRow]:
    query = sa.select(*_COLUMNS).where(tenant_of(conn, requests))
    if user_token is not None:
        query = query.where(requests.c.user_token == user_token)
    if status is not None:
        query = query.where(requests.c.status == status)
    query = query.order_by(requests.c.updated.desc(), requests.c.rtoken)
    return [_row(r) for r in conn.execute(query.offset(offset).limit(limit))]


def of_user(conn: Connection, user_token: str) -> list[RequestRow]:
    """Every request of the person, newest first."""
    query = (
        sa.select(*_COLUMNS)
        .where(requests.c.user_token == user_token, tenant_of(conn, requests))
        .order_by(requests.c.updated.desc(), requests.c.rtoken)
    )
    return [_row(r) for r in conn.execute(query)]


def shred_changes(conn: Connection, user_token: str) -> None:
    mine = (requests.c.user_token == user_token, tenant_of(conn, requests))
    conn.execute(requests.update().where(*mine).values(change=None))
