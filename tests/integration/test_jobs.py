"""The periodic job runner."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa

from databunker import app as app_module
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


def test_stopping_the_server_waits_for_the_round_of_jobs_in_progress(
    make_vault: VaultFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A round still working (a webhook on its way) when the server stops: the shutdown tells
    # it to stop and waits for it, rather than leaving its thread to run on without a pool.
    vault = make_vault(server={"jobs_interval": 1})
    running = threading.Event()
    ended: list[bool] = []

    def slow_round(_vault: Context, *_args: Any, stop: threading.Event) -> dict[str, int]:
        running.set()
        told = stop.wait(timeout=30)
        time.sleep(0.2)  # the request in flight, answered after the stop
        ended.append(told)
        return {}

    monkeypatch.setattr(app_module, "run_jobs", slow_round)
    with client_for(vault) as api:  # runs the lifespan, and with it the periodic jobs
        assert api.get("/v1/status").status_code == 200
        assert running.wait(timeout=30)
    assert ended == [True]
