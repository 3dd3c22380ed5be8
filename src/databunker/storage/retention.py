"""Repository of data retention: the ``exp_*`` columns of the users table.

The expiration token reaches the anonymous retain/delete links, so it is stored only as a
keyed hash. Every change that consumes the token is a single conditional UPDATE that
re-checks the state it expects, so two requests (or a request and the expiry job) racing
for the same person change the row once: the loser updates nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from databunker.storage.dialects import update_returning
from databunker.storage.tables import users
from databunker.storage.tenancy import tenant_of

WAIT = "wait"
RETAIN = "retain"
EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Expiration:
    status: str | None
    time: int
    started_by: str | None


def get_expiration(conn: Connection, user_token: str) -> Expiration | None:
    query = sa.select(users.c.exp_status, users.c.exp_time, users.c.exp_started_by).where(
        users.c.token == user_token, tenant_of(conn, users)
    )
    row = conn.execute(query).one_or_none()
    if row is None:
        return None
    return Expiration(
        status=row.exp_status, time=int(row.exp_time or 0), started_by=row.exp_started_by
    )


def start_expiration(
    conn: Connection,
    user_token: str,
    *,
    status: str,
    time: int,
    token_hash: bytes | None,
    started_by: str,
) -> None:
    conn.execute(
        users.update()
        .where(users.c.token == user_token, tenant_of(conn, users))
        .values(
            exp_status=status,
            exp_time=time,
            exp_token_hash=token_hash,
            exp_started_by=started_by,
        )
    )


def clear_expiration(conn: Connection, user_token: str) -> None:
    conn.execute(
        users.update()
        .where(users.c.token == user_token, tenant_of(conn, users))
        .values(exp_status=None, exp_time=0, exp_token_hash=None, exp_started_by=None)
    )


def retain_by_token(conn: Connection, token_hash: bytes) -> str | None:
    """Consume the token: the person's data is kept. Answers the person's token, or None."""
    rows = update_returning(
        conn,
        users,
        sa.and_(users.c.exp_token_hash == token_hash, tenant_of(conn, users)),
        {"exp_status": RETAIN, "exp_time": 0, "exp_token_hash": None},
        [users.c.token],
    )
    return str(rows[0].token) if rows else None


def expire_by_token(conn: Connection, token_hash: bytes) -> str | None:
    """Consume the token: the person is marked expired (the caller erases them)."""
    rows = update_returning(
        conn,
        users,
        sa.and_(users.c.exp_token_hash == token_hash, tenant_of(conn, users)),
        {"exp_status": EXPIRED, "exp_token_hash": None},
        [users.c.token],
    )
    return str(rows[0].token) if rows else None


def _due(now: int) -> sa.ColumnElement[bool]:
    return sa.and_(users.c.exp_status == WAIT, users.c.exp_time > 0, users.c.exp_time <= now)


def due_for_expiry(conn: Connection, now: int, limit: int) -> list[str]:
    """Tokens of people whose retention ran out, locked (other servers skip them)."""
    query = (
        sa.select(users.c.token)
        .where(_due(now), tenant_of(conn, users))
        .order_by(users.c.exp_time, users.c.token)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [str(token) for token in conn.execute(query).scalars()]


def claim_expiry(conn: Connection, user_token: str, now: int) -> bool:
    """Mark one due person expired; False when someone else got there first."""
    result = conn.execute(
        users.update()
        .where(users.c.token == user_token, _due(now), tenant_of(conn, users))
        .values(exp_status=EXPIRED, exp_token_hash=None)
    )
    return result.rowcount == 1
