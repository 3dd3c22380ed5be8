"""Repository of shared records.

A shared record's token is a capability handed to a third party, so it is stored only as a
keyed hash (``record_hash``): a guess costs one primary-key lookup and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from databunker.storage.tables import shared_records
from databunker.storage.tenancy import data_columns, owner, tenant_of


@dataclass(frozen=True, slots=True)
class ShareableRecord:
    record_hash: bytes
    user_token: str
    partner: str | None
    app: str | None
    session: str | None
    # Comma-separated dot paths; None or "" shares the whole source.
    fields: str | None
    created: int
    expires: int


def insert_shared_record(conn: Connection, record: ShareableRecord) -> None:
    conn.execute(
        shared_records.insert().values(
            record_hash=record.record_hash,
            user_token=record.user_token,
            partner=record.partner,
            app=record.app,
            session=record.session,
            fields=record.fields,
            created=record.created,
            expires=record.expires,
            tenant_id=owner(conn),
        )
    )


def find_shared_record(conn: Connection, record_hash: bytes) -> ShareableRecord | None:
    query = sa.select(*data_columns(shared_records)).where(
        shared_records.c.record_hash == record_hash, tenant_of(conn, shared_records)
    )
    row = conn.execute(query).one_or_none()
    return ShareableRecord(**row._mapping) if row else None


def delete_expired_shared_records(conn: Connection, now: int) -> int:
    """One set-based statement: safe when several servers run it at the same moment."""
    expired = (shared_records.c.expires <= now, tenant_of(conn, shared_records))
    result = conn.execute(shared_records.delete().where(*expired))
    return int(result.rowcount or 0)
