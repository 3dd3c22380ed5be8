"""Rate limits live in the database: two server processes on one PostgreSQL share them."""

from __future__ import annotations

from pathlib import Path

import httpx2 as httpx
import pytest

from databunker.services.login import PRELOGIN_LIMITS
from support.postgres import TemporaryPostgres
from support.server import ServerProcess, run_cli

pytestmark = pytest.mark.e2e

EMAIL = "ann.limits@example.com"


def test_prelogin_limit_holds_across_two_servers(
    postgres_server: TemporaryPostgres, tmp_path: Path
) -> None:
    url = postgres_server.create_database("shared_limits")
    try:
        init = run_cli(["init", "--db", url], cwd=tmp_path)
        assert init.returncode == 0, init.stderr
        values = dict(
            line.split("=", 1)
            for line in init.stdout.splitlines()
            if line.startswith("DATABUNKER_")
        )
        env = {
            "DATABUNKER_MASTERKEY": values["DATABUNKER_MASTERKEY"],
            "GENERIC_LOGIN_CAPTCHA": "false",
        }
        root = {"X-Bunker-Token": values["DATABUNKER_ROOTTOKEN"]}
        with (
            ServerProcess(["serve", "--db", url], env, cwd=tmp_path) as first,
            ServerProcess(["serve", "--db", url], env, cwd=tmp_path) as second,
            httpx.Client(timeout=10) as client,
        ):
            created = client.post(f"{first.url}/v1/user", json={"email": EMAIL}, headers=root)
            assert created.status_code == 200, created.text
            per_identity = PRELOGIN_LIMITS[0]
            answers = [
                client.get(f"{server.url}/v1/prelogin/email/{EMAIL}/0/0")
                for server in [first, second] * per_identity
            ][: per_identity + 1]
    finally:
        postgres_server.drop_database("shared_limits")

    assert [a.status_code for a in answers[:per_identity]] == [200] * per_identity
    assert answers[per_identity].status_code == 429
    assert answers[per_identity].json() == {"status": "error", "message": "too many requests"}
