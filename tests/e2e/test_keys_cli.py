"""The key providers end to end, through the real command: ``init --shares``, a sealed
``serve --workers 2`` unsealed by one series of shares, commands reading shares on standard
input, ``init --kms`` against moto's KMS server, and ``keys rekey`` refusing the old secret."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from support.kms import kms_server, new_kms_key
from support.server import ServerProcess, run_cli

pytestmark = pytest.mark.e2e


def _values(stdout: str) -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in stdout.splitlines() if line.startswith("DATABUNKER_")
    )


def _wait_for(client: httpx.Client, path: str, status: int, *, tries: int = 60) -> None:
    """Until ``tries`` answers in a row (spread over the workers) are ``status``."""
    deadline = time.monotonic() + 15
    streak = 0
    while streak < tries:
        streak = streak + 1 if client.get(path).status_code == status else 0
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not settle on {status}")
        time.sleep(0.01)


@pytest.fixture(scope="module")
def kms_env() -> Iterator[dict[str, str]]:
    with kms_server() as env:
        yield env


def test_shares_unseal_every_worker_and_feed_the_commands(
    database_url: str, tmp_path: Path
) -> None:
    init = run_cli(
        ["init", "--db", database_url, "--shares", "5", "--threshold", "3"], cwd=tmp_path
    )
    assert init.returncode == 0, init.stderr
    values = _values(init.stdout)
    assert sorted(values) == sorted(
        [*(f"DATABUNKER_SHARE_{n}" for n in range(1, 6)), "DATABUNKER_ROOTTOKEN"]
    )
    shares = [values[f"DATABUNKER_SHARE_{n}"] for n in range(1, 6)]
    root = {"X-Bunker-Token": values["DATABUNKER_ROOTTOKEN"]}

    args = ["serve", "--db", database_url, "--workers", "2"]
    with (
        ServerProcess(args, {}, cwd=tmp_path, sealed=True) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        assert client.get("/v1/status").json() == {
            "status": "error",
            "message": "vault is sealed",
            "sealed": True,
        }
        for share in (shares[4], shares[1]):
            assert client.post("/v1/sys/unseal", json={"share": share}).status_code == 200
        # Progress is the server's, whichever worker answers.
        assert client.get("/v1/sys/seal").json()["progress"] == 2
        last = client.post("/v1/sys/unseal", json={"share": shares[2]})
        assert last.json()["sealed"] is False
        _wait_for(client, "/v1/status", 200)
        created = client.post("/v1/user", json={"email": "a@example.com"}, headers=root)
        assert created.status_code == 200, created.text

        # Commands of the share-protected vault read shares on standard input.
        rotate = run_cli(
            ["keys", "rotate", "--db", database_url],
            cwd=tmp_path,
            stdin="\n".join(shares[:3]) + "\n",
            timeout=120,
        )
        assert rotate.returncode == 0, rotate.stderr
        assert "current version: 2" in rotate.stdout
        assert "rewrapped 1/1" in rotate.stderr

        token = created.json()["token"]
        for _ in range(20):  # every worker reads it after the rotation
            assert client.get(f"/v1/user/token/{token}", headers=root).status_code == 200

        assert client.post("/v1/sys/seal", headers=root).json()["sealed"] is True
        _wait_for(client, f"/v1/user/token/{token}", 503)
        assert server.stderr.count(shares[0]) == 0

    status = run_cli(["keys", "status", "--db", database_url], cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "master key provider: Shamir shares (3 of 5)" in status.stdout
    assert "version 2 (current): wraps 1 data keys" in status.stdout

    exported = run_cli(
        ["export", "-", "--db", database_url], cwd=tmp_path, stdin="\n".join(shares[2:]) + "\n"
    )
    assert exported.returncode == 0, exported.stderr
    assert "a@example.com" in exported.stdout

    wrong = run_cli(
        ["export", "-", "--db", database_url],
        cwd=tmp_path,
        stdin="\n".join([shares[0], shares[1], shares[1]]) + "\n",
    )
    assert wrong.returncode == 1
    assert "give 3 on standard input" in wrong.stderr


def test_rekey_prints_a_new_master_key_and_the_old_one_is_refused(
    database_url: str, tmp_path: Path
) -> None:
    init = run_cli(["init", "--db", database_url], cwd=tmp_path)
    old = {"DATABUNKER_MASTERKEY": _values(init.stdout)["DATABUNKER_MASTERKEY"]}

    rekey = run_cli(["keys", "rekey", "--db", database_url], old, cwd=tmp_path)
    assert rekey.returncode == 0, rekey.stderr
    new = {"DATABUNKER_MASTERKEY": _values(rekey.stdout)["DATABUNKER_MASTERKEY"]}
    assert new != old

    refused = run_cli(["serve", "--db", database_url], old, cwd=tmp_path)
    assert refused.returncode == 1
    assert refused.stderr.strip() == "databunker: the master key does not match this database"
    with ServerProcess(["serve", "--db", database_url], new, cwd=tmp_path) as server:
        assert httpx.get(f"{server.url}/v1/status").status_code == 200

    to_shares = run_cli(
        ["keys", "rekey", "--db", database_url, "--shares", "3", "--threshold", "2"],
        new,
        cwd=tmp_path,
    )
    assert to_shares.returncode == 0, to_shares.stderr
    assert "DATABUNKER_MASTERKEY" not in to_shares.stdout
    assert to_shares.stdout.count("DATABUNKER_SHARE_") == 3


def test_a_kms_protected_vault_starts_with_its_kms_key_only(
    database_url: str, tmp_path: Path, kms_env: dict[str, str]
) -> None:
    first, second = new_kms_key(kms_env), new_kms_key(kms_env)
    init = run_cli(
        ["init", "--db", database_url, "--kms", f"aws-kms:{first}"], kms_env, cwd=tmp_path
    )
    assert init.returncode == 0, init.stderr
    assert "DATABUNKER_MASTERKEY" not in init.stdout
    root = {"X-Bunker-Token": _values(init.stdout)["DATABUNKER_ROOTTOKEN"]}

    with_first = {**kms_env, "DATABUNKER_KMS": f"aws-kms:{first}"}
    with ServerProcess(["serve", "--db", database_url], with_first, cwd=tmp_path) as server:
        created = httpx.post(f"{server.url}/v1/user", json={"email": "k@example.com"}, headers=root)
        assert created.status_code == 200, created.text
    token = created.json()["token"]

    missing = run_cli(["serve", "--db", database_url], kms_env, cwd=tmp_path)
    assert missing.returncode == 1
    assert "set DATABUNKER_KMS=aws-kms:<key>" in missing.stderr
    with_second = {**kms_env, "DATABUNKER_KMS": f"aws-kms:{second}"}
    wrong = run_cli(["serve", "--db", database_url], with_second, cwd=tmp_path)
    assert wrong.returncode == 1
    assert "AWS KMS cannot decrypt" in wrong.stderr
    assert "Traceback" not in wrong.stderr

    rekey = run_cli(
        ["keys", "rekey", "--db", database_url, "--kms", f"aws-kms:{second}"],
        with_first,
        cwd=tmp_path,
    )
    assert rekey.returncode == 0, rekey.stderr
    assert run_cli(["serve", "--db", database_url], with_first, cwd=tmp_path).returncode == 1
    with ServerProcess(["serve", "--db", database_url], with_second, cwd=tmp_path) as server:
        person = httpx.get(f"{server.url}/v1/user/token/{token}", headers=root)
        assert person.json()["data"]["email"] == "k@example.com"
