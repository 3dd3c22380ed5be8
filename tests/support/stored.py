"""What a refused request must leave as it was: every table a request could change."""

from __future__ import annotations

import sqlalchemy as sa

from databunker.services.context import Context
from databunker.storage import tables

# The audit trail, rate-limit counters, login codes and the outbox record attempts: they may
# grow when a request is refused, and are left out.
STATE_TABLES = (
    tables.users,
    tables.user_apps,
    tables.sessions,
    tables.shared_records,
    tables.requests,
    tables.legal_bases,
    tables.processing_activities,
    tables.activity_legal_bases,
    tables.agreements,
)


def stored_state(vault: Context) -> dict[str, list[str]]:
    """Every row of the state tables, comparable before and after a request."""
    with vault.database.transaction() as conn:
        return {
            table.name: sorted(repr(tuple(row)) for row in conn.execute(sa.select(table)))
            for table in STATE_TABLES
        }
