"""Repository of sessions: caller-chosen ids, each with its own wrapped data key.

``data`` is ciphertext under the session's key; ``data_key`` is that key wrapped by the KEK.
A session is live while ``expires > now``; expired rows are invisible to every read here and
are removed by the periodic purge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from databunker.storage.dialects import upsert
from databunker.storage.prepared import Prepared
from databunker.storage.tables import sessions
from databunker.storage.tenancy import bound_filter, data_columns, owner, tenant_of, with_scope


@dataclass(frozen=True, slots=True)
class SessionRow:
    session: str
    user_token: str | None
    data_key: bytes
    data: bytes
    created: int
    updated: int
    expires: int


_COLUMNS = data_columns(sessions)


def _row(row: Any) -> SessionRow:
    return SessionRow(**row._mapping)


def _upsert_statement(dialect_name: str) -> Prepared:
    columns = ("user_token", "data_key", "data", "updated", "expires")
    statement = upsert(
        dialect_name,
        sessions,
        [sessions.c.tenant_id, sessions.c.session],
        lambda offered: [(name, offered[name]) for name in columns],
    )
    return Prepared(statement)


# Built once per dialect: building a statement costs more than running it.
_UPSERT = {name: _upsert_statement(name) for name in ("postgresql", "sqlite", "mariadb", "mysql")}
_GET = Prepared(
    sa.select(*_COLUMNS).where(
        sessions.c.session == sa.bindparam("session"), bound_filter(sessions)
    )
)


def upsert_session(
    conn: Connection,
    *,
    session: str,
    user_token: str | None,
    data_key: bytes,
    data: bytes,
    now: int,
    expires: int,
) -> None:
    """Create the session, or overwrite its owner, key, data and expiry (one statement)."""
    values = {
        "tenant_id": owner(conn),
        "session": session,
        "user_token": user_token,
        "data_key": data_key,
        "data": data,
        "created": now,
        "updated": now,
        "expires": expires,
    }
    _UPSERT[conn.dialect.name].execute(conn, values)


def get_session(conn: Connection, session: str) -> SessionRow | None:
    """The session, expired or not (callers decide what expiry means to them)."""
    row = _GET.first(conn, with_scope(conn, {"session": session}))
    return SessionRow(*row) if row else None


def delete_session(conn: Connection, session: str) -> SessionRow | None:
    """Remove a session; returns what was removed (None when there was nothing)."""
    removed = get_session(conn, session)
    if removed is not None:
        mine = (sessions.c.session == session, tenant_of(conn, sessions))
        conn.execute(sessions.delete().where(*mine))
    return removed


def count_live_user_sessions(conn: Connection, user_token: str, now: int) -> int:
    query = (
        sa.select(sa.func.count())
        .select_from(sessions)
        .where(
            sessions.c.user_token == user_token,
            sessions.c.expires > now,
            tenant_of(conn, sessions),
        )
    )
    return int(conn.execute(query).scalar_one())


def live_user_sessions(
    conn: Connection, user_token: str, now: int, *, offset: int, limit: int
) -> list[SessionRow]:
    """A page of the person's live sessions, most recently written first."""
    query = (
        sa.select(*_COLUMNS)
        .where(
            sessions.c.user_token == user_token,
            sessions.c.expires > now,
            tenant_of(conn, sessions),
        )
        .order_by(sessions.c.updated.desc(), sessions.c.session)
        .offset(offset)
        .limit(limit)
    )
    return [_row(row) for row in conn.execute(query)]


def purge_expired_sessions(conn: Connection, now: int) -> int:
    """Delete every session whose time is up; returns how many went."""
    expired = (sessions.c.expires <= now, tenant_of(conn, sessions))
    result = conn.execute(sessions.delete().where(*expired))
    return int(result.rowcount)
