"""The periodic job runner."""

from __future__ import annotations

import sqlalchemy as sa

from databunker.jobs import Job, run_jobs
from databunker.services.context import Context, Work
from support.vaults import Clock, VaultFactory, client_for


def test_jobs_run_in_order_with_the_vault_clock_and_survive_a_failing_job(
    vault: Context, clock: Clock
) -> None:
    seen: list[tuple[str, int]] = []

    def broken(work: Work) -> int:
        work.conn.execute(sa.text("INSERT INTO meta (name, value) VALUES ('job-broken', 'x')"))
        raise RuntimeError("boom")

    def counting(work: Work) -> int:
        seen.append(("counting", work.now))
        return 3

    clock.advance(90)
    handled = run_jobs(vault, [Job("broken", broken), Job("counting", counting)])

    assert handled == {"counting": 3}
    assert seen == [("counting", clock.now)]
    with vault.database.transaction() as conn:
        leftover = conn.execute(sa.text("SELECT count(*) FROM meta WHERE name = 'job-broken'"))
        assert leftover.scalar_one() == 0  # the failing job's transaction rolled back


def test_audit_events_older_than_the_retention_period_are_purged(
    make_vault: VaultFactory, clock: Clock
) -> None:
    vault = make_vault(policy={"max_audit_retention_period": "10d"})
    with client_for(vault) as api:
        token = api.post("/v1/user", json={"login": "old"}).json()["token"]
        clock.advance(9 * 86400)
        api.get(f"/v1/user/token/{token}")
        clock.advance(2 * 86400)

        run_jobs(vault)

        titles = [row["title"] for row in api.get(f"/v1/audit/list/{token}").json()["rows"]]
    # the creation (11 days old) is gone; the read (2 days old) and this listing remain
    assert "create user record" not in titles
    assert "get user record by token" in titles
