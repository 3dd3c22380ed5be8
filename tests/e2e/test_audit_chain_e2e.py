"""The tamper-evident audit trail as an operator meets it: a server with several worker
processes writes events at once, root anchors ``GET /v1/sys/audit/head``, and
``databunker audit verify`` (a process of its own, run while the server serves) finds the
chain intact, then names the event an editor of the database changed."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx
import pytest
import sqlalchemy as sa

from databunker.storage import Database
from support.server import ServerProcess, run_cli

pytestmark = pytest.mark.e2e

WORKERS = 2
PEOPLE = 40


@pytest.fixture
def initialised(database_url: str, tmp_path: Path) -> tuple[dict[str, str], str]:
    result = run_cli(["init", "--db", database_url], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    values = dict(
        line.split("=", 1) for line in result.stdout.splitlines() if line.startswith("DATABUNKER_")
    )
    return {"DATABUNKER_MASTERKEY": values["DATABUNKER_MASTERKEY"]}, values["DATABUNKER_ROOTTOKEN"]


def test_a_served_vault_verifies_and_a_changed_event_is_named(
    database_url: str, tmp_path: Path, initialised: tuple[dict[str, str], str]
) -> None:
    env, root = initialised
    verify = ["audit", "verify", "--db", database_url]
    args = ["serve", "--db", database_url, "--workers", str(WORKERS)]
    with ServerProcess(args, env, cwd=tmp_path) as server:

        def person(number: int) -> None:
            with httpx.Client(
                base_url=server.url, timeout=30, headers={"X-Bunker-Token": root}
            ) as client:
                answer = client.post("/v1/user", json={"login": f"p{number}"})
                assert answer.status_code == 200, answer.text
                token = answer.json()["token"]
                assert client.get(f"/v1/user/token/{token}").status_code == 200
                assert client.put(f"/v1/user/token/{token}", json={"n": 1}).status_code == 200

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(person, range(PEOPLE)))
        head = httpx.get(f"{server.url}/v1/sys/audit/head", headers={"X-Bunker-Token": root})
        assert head.status_code == 200
        anchor = head.json()
        assert anchor["status"] == "ok"
        assert anchor["count"] == 3 * PEOPLE

        # Verified while the server keeps serving.
        checked = run_cli(
            [*verify, "--anchor", f"{anchor['count']}:{anchor['link']}"], env, cwd=tmp_path
        )
        assert checked.returncode == 0, checked.stderr
        assert checked.stdout == f"audit chain intact: {3 * PEOPLE} events\n"
        assert "Traceback" not in checked.stderr

    database = Database(database_url)
    try:
        with database.transaction() as conn:
            changed = conn.execute(
                sa.text(
                    "SELECT atoken FROM audit WHERE chain_pos IS NOT NULL "
                    "ORDER BY chain_lane, chain_pos LIMIT 1 OFFSET :k"
                ),
                {"k": PEOPLE},
            ).scalar_one()
            conn.execute(
                sa.text("UPDATE audit SET title = 'nothing to see' WHERE atoken = :a"),
                {"a": changed},
            )
    finally:
        database.dispose()
    refused = run_cli(verify, env, cwd=tmp_path)
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert "Traceback" not in refused.stderr
    assert refused.stderr.splitlines()[-1] == (
        f"databunker: audit chain broken at event {changed}: "
        "its link does not match: the event was changed or moved"
    )


def test_verify_needs_the_master_key(
    database_url: str, tmp_path: Path, initialised: object
) -> None:
    verify = ["audit", "verify", "--db", database_url]
    wrong = run_cli(verify, {"DATABUNKER_MASTERKEY": "5a" * 32}, cwd=tmp_path)
    assert wrong.returncode == 1
    assert wrong.stderr.splitlines()[-1] == (
        "databunker: the master key does not match this database"
    )
    missing = run_cli(verify, cwd=tmp_path)
    assert missing.returncode == 1
    assert "DATABUNKER_MASTERKEY" in missing.stderr.splitlines()[-1]
