"""The outbox's rows: queued in the transaction of the change they report, then claimed
under a lease by a deliverer, which records the outcome.

A rollback therefore sends nothing, and a crash after commit loses nothing. Payloads are
encrypted under the ``outbox`` service key, since they may outlive the person they concern.

Invariant: a row is handed to at most one deliverer at a time. A claim sets ``locked_until``
(the lease) in a short transaction; on PostgreSQL concurrent claimers skip each other's
locked rows (``FOR UPDATE SKIP LOCKED``), on SQLite ``BEGIN IMMEDIATE`` serialises them. A
deliverer that dies keeps its rows only until the lease runs out; then anyone may claim them
again, which is why delivery is at-least-once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from databunker.crypto import DataKey, value_context
from databunker.storage.tables import outbox
from databunker.storage.tenancy import owner

WEBHOOK = "webhook"
EMAIL = "email"
SMS = "sms"

# The width of ``outbox.last_error``.
MAX_ERROR_LENGTH = 200

__all__ = [
    "EMAIL",
    "SMS",
    "WEBHOOK",
    "ClaimedRow",
    "claim_due",
    "delete_delivered_before",
    "delete_row",
    "delete_stale",
    "enqueue",
    "mark_delivered",
    "mark_failed",
    "next_due",
    "open_payload",
    "payload_context",
    "release",
]


@dataclass(frozen=True, slots=True)
class ClaimedRow:
    id: int
    # Ciphertext under the outbox service key.
    payload: bytes = field(repr=False)
    # Attempts made before this claim.
    attempts: int
    # When the row was queued.
    created: int = 0


def _due(kind: str, now: int) -> sa.ColumnElement[bool]:
    return sa.and_(
        outbox.c.kind == kind,
        outbox.c.delivered.is_(None),
        outbox.c.next_attempt <= now,
        outbox.c.locked_until <= now,
    )


def claim_due(
    conn: Connection, *, kind: str, now: int, lease_until: int, limit: int
) -> list[ClaimedRow]:
    """Lease up to ``limit`` rows of ``kind`` that are due at ``now``, oldest first."""
    query = (
        sa.select(outbox.c.id, outbox.c.payload, outbox.c.attempts, outbox.c.created)
        .where(_due(kind, now))
        .order_by(outbox.c.next_attempt, outbox.c.id)
        .limit(limit)
    )
    if conn.dialect.name != "sqlite":  # SQLite: one writer at a time
        query = query.with_for_update(skip_locked=True)
    rows = [
        ClaimedRow(int(r.id), bytes(r.payload), int(r.attempts), int(r.created))
        for r in conn.execute(query)
    ]
    if rows:
        conn.execute(
            sa.update(outbox)
            .where(outbox.c.id.in_([row.id for row in rows]))
            .values(locked_until=lease_until)
        )
    return rows


def mark_delivered(conn: Connection, row_id: int, *, now: int) -> None:
    conn.execute(
        sa.update(outbox)
        .where(outbox.c.id == row_id, outbox.c.delivered.is_(None))
        .values(
            delivered=now,
            attempts=outbox.c.attempts + 1,
            locked_until=0,
            last_error=None,
        )
    )


def mark_failed(conn: Connection, row_id: int, *, next_attempt: int, error: str) -> None:
    """Count a failed attempt and schedule the next; a row delivered meanwhile stays so."""
    conn.execute(
        sa.update(outbox)
        .where(outbox.c.id == row_id, outbox.c.delivered.is_(None))
        .values(
            attempts=outbox.c.attempts + 1,
            next_attempt=next_attempt,
            locked_until=0,
            last_error=error[:MAX_ERROR_LENGTH],
        )
    )


def release(conn: Connection, row_ids: list[int]) -> None:
    """Give back leased rows that were not attempted (the deliverer is stopping)."""
    if row_ids:
        conn.execute(
            sa.update(outbox)
            .where(outbox.c.id.in_(row_ids), outbox.c.delivered.is_(None))
            .values(locked_until=0)
        )


def next_due(conn: Connection, *, kind: str) -> int | None:
    """The earliest time an undelivered row of ``kind`` may be claimed, or None if none waits."""
    ready_at = sa.case(
        (outbox.c.locked_until > outbox.c.next_attempt, outbox.c.locked_until),
        else_=outbox.c.next_attempt,
    )
    value = conn.execute(
        sa.select(sa.func.min(ready_at)).where(outbox.c.kind == kind, outbox.c.delivered.is_(None))
    ).scalar_one()
    return None if value is None else int(value)


def delete_delivered_before(conn: Connection, cutoff: int) -> int:
    """Delete rows acknowledged before ``cutoff``; return how many went."""
    result = conn.execute(
        sa.delete(outbox).where(outbox.c.delivered.is_not(None), outbox.c.delivered < cutoff)
    )
    return int(result.rowcount)


def delete_row(conn: Connection, row_id: int) -> None:
    """Delete one row (a delivered or abandoned message that must not be kept)."""
    conn.execute(sa.delete(outbox).where(outbox.c.id == row_id))


def delete_stale(conn: Connection, *, kinds: list[str], created_before: int) -> int:
    """Delete undelivered rows of ``kinds`` queued before ``created_before``; return how many."""
    result = conn.execute(
        sa.delete(outbox).where(
            outbox.c.kind.in_(kinds),
            outbox.c.delivered.is_(None),
            outbox.c.created < created_before,
        )
    )
    return int(result.rowcount)


def payload_context(row_id: int | str) -> bytes:
    return value_context("outbox", "payload", str(row_id), "outbox")


def enqueue(
    conn: Connection,
    key: DataKey,
    kind: str,
    payload: dict[str, Any],
    now: int,
    *,
    void: bool = False,
) -> int:
    """Insert a sealed row; a ``void`` one is written as delivered, so it is never sent."""
    # The row id is part of the associated data, so the row is inserted first and sealed after.
    inserted: Any = conn.execute(
        outbox.insert().values(
            kind=kind,
            payload=b"",
            created=now,
            next_attempt=now,
            delivered=now if void else None,
            tenant_id=owner(conn),
        )
    ).inserted_primary_key
    row_id = int(inserted[0])
    sealed = key.encrypt(orjson.dumps(payload), payload_context(row_id))
    conn.execute(sa.update(outbox).where(outbox.c.id == row_id).values(payload=sealed))
    return int(row_id)


def open_payload(key: DataKey, row_id: int, sealed: bytes) -> dict[str, Any]:
    payload: dict[str, Any] = orjson.loads(key.decrypt(sealed, payload_context(row_id)))
    return payload
