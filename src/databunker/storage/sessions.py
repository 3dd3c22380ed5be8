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


@dataclass(frozen=True, slots=True)
class SessionRow:
    session: str
    user_token: str | None
    data_key: bytes
    data: bytes
    created: int
    updated: int
    expires: int


def _row(row: Any) -> SessionRow:
    return SessionRow(**row._mapping)


def _upsert_statement(dialect_name: str) -> Prepared:
    columns = ("user_token", "data_key", "data", "updated", "expires")
    statement = upsert(
        dialect_name,
        sessions,
        [sessions.c.session],
        lambda offered: [(name, offered[name]) for name in columns],
    )
    return Prepared(statement)


# Built once per dialect: building a statement costs more than running it.
_UPSERT = {name: _upsert_statement(name) for name in ("postgresql", "sqlite", "mariadb", "mysql")}
_GET = Prepared(sa.select(sessions).where(sessions.c.session == sa.bindparam("session")))


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
    row = _GET.first(conn, {"session": session})
    return SessionRow(*row) if row else None


def delete_session(conn: Connection, session: str) -> SessionRow | None:
    """Remove a session; returns what was removed (None when there was nothing)."""
    removed = get_session(conn, session)
    if removed is not None:
        conn.execute(sessions.delete().where(sessions.c.session == session))
    return removed


def count_live_user_sessions(conn: Connection, user_token: str, now: int) -> int:
    query = (
        sa.select(sa.func.count())
        .select_from(sessions)
        .where(sessions.c.user_token == user_token, sessions.c.expires > now)
    )
    return int(conn.execute(query).scalar_one())


def live_user_sessions(
    conn: Connection, user_token: str, now: int, *, offset: int, limit: int
) -> list[SessionRow]:
    """A page of the person's live sessions, most recently written first."""
    query = (
        sa.select(sessions)
        .where(sessions.c.user_token == user_token, sessions.c.expires > now)
        .order_by(sessions.c.updated.desc(), sessions.c.session)
        .offset(offset)
        .limit(limit)
    )
    return [_row(row) for row in conn.execute(query)]


def purge_expired_sessions(conn: Connection, now: int) -> int:
    """Delete every session whose time is up; returns how many went."""
    result = conn.execute(sessions.delete().where(sessions.c.expires <= now))
    return int(result.rowcount)
