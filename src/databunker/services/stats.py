"""System statistics: how much the vault holds, for an administrator's dashboard.

The counts come from ``storage.stats``: a tenant's root sees its tenant's, the default
tenant's root the whole deployment's (every tenant). This server has no format-preserving
tokens and no licence, so those figures are constant here.
"""

from __future__ import annotations

from dataclasses import dataclass

from databunker.services.access import require_root
from databunker.services.context import Work
from databunker.storage import stats as stat_rows
from databunker.storage import tenancy
from databunker.storage import tenants as tenant_rows


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
    if work.principal.is_main_root and work.tenant == tenancy.DEFAULT_TENANT:
        with tenancy.acting_in(work.conn, tenancy.EVERY_TENANT):
            counts = stat_rows.vault_counts(work.conn, work.now)
        tenants = tenant_rows.count(work.conn)
    else:
        counts, tenants = stat_rows.vault_counts(work.conn, work.now), 1
    return SystemStats(
        users=counts.users,
        tenants=tenants,
        tokens=0,
        sessions=counts.sessions,
        shared_records=counts.shared_records,
        app_records=counts.app_records,
        agreements=counts.agreements,
        open_requests=counts.open_requests,
        audit_events=counts.audit_events,
    )
