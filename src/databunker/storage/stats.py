"""Counts for the system statistics: one aggregate query per kind of record.

Only counts leave this module, never rows: the statistics reveal how much the vault holds,
not whom.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from databunker.storage.tables import (
    agreements,
    audit,
    requests,
    sessions,
    shared_records,
    user_apps,
    users,
)
from databunker.storage.tenancy import tenant_of


@dataclass(frozen=True, slots=True)
class VaultCounts:
    """How many of each kind of record the vault holds now: living (not erased) users,
    live sessions and shared records, app records, agreements, open requests, audit events."""

    users: int
    sessions: int
    shared_records: int
    app_records: int
    agreements: int
    open_requests: int
    audit_events: int


def _count(conn: Connection, table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
    query = sa.select(sa.func.count()).select_from(table).where(tenant_of(conn, table), *where)
    return int(conn.execute(query).scalar_one())


def vault_counts(conn: Connection, now: int) -> VaultCounts:
    return VaultCounts(
        users=_count(conn, users, users.c.erased.is_(None)),
        sessions=_count(conn, sessions, sessions.c.expires > now),
        shared_records=_count(conn, shared_records, shared_records.c.expires > now),
        app_records=_count(conn, user_apps),
        agreements=_count(conn, agreements),
        open_requests=_count(conn, requests, requests.c.status == "open"),
        audit_events=_count(conn, audit),
    )
