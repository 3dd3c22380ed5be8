"""The periodic job runner."""

from __future__ import annotations

import sqlalchemy as sa

from databunker.jobs import Job, run_jobs
from databunker.services.context import Vault, Work
from support.vaults import Clock


def test_jobs_run_in_order_with_the_vault_clock_and_survive_a_failing_job(
    vault: Vault, clock: Clock
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
