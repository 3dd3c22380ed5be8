"""System statistics: how much the vault holds, for an administrator's dashboard.

The counts come from ``storage.stats``; this open server has one tenant, no
format-preserving tokens and no licence, so those figures are constant here.
"""

from __future__ import annotations

from dataclasses import dataclass

from databunker.services.access import require_root
from databunker.services.context import Work
from databunker.storage import stats as stat_rows


@dataclass(frozen=True, slots=True)
class SystemStats:
    """``records`` is what a licence would count: user records plus tokens."""

    users: int
    tenants: int
    tokens: int
    sessions: int
    shared_records: int
    app_records: int
    agreements: int
    open_requests: int
    audit_events: int

    @property
    def records(self) -> int:
        return self.users + self.tokens


def system_stats(work: Work) -> SystemStats:
    require_root(work.principal)
    counts = stat_rows.vault_counts(work.conn, work.now)
    return SystemStats(
        users=counts.users,
        tenants=1,
        tokens=0,
        sessions=counts.sessions,
        shared_records=counts.shared_records,
        app_records=counts.app_records,
        agreements=counts.agreements,
        open_requests=counts.open_requests,
        audit_events=counts.audit_events,
    )
