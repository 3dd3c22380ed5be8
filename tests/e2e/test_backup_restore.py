"""Backups through the real commands: ``databunker backup`` of a SQLite vault while it
serves writes, ``databunker restore`` into an empty database, and the restored vault opening
with the same key and every record reading back, its audit chain intact; the refusals; and
PostgreSQL's ``pg_dump``/``pg_restore`` and MariaDB's ``mariadb-dump``, as the README tells,
giving the same."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from support.mariadb import TemporaryMariaDB
from support.postgres import TemporaryPostgres
from support.server import ServerProcess, child_env, run_cli

pytestmark = pytest.mark.e2e


def _init(url: str, cwd: Path) -> dict[str, str]:
    init = run_cli(["init", "--db", url], cwd=cwd)
    assert init.returncode == 0, init.stderr
    values = dict(line.split("=", 1) for line in init.stdout.splitlines() if "=" in line)
    return {name: values[name] for name in ("DATABUNKER_MASTERKEY", "DATABUNKER_ROOTTOKEN")}


def _create(client: httpx.Client, count: int, prefix: str) -> dict[str, str]:
    people = {}
    for number in range(count):
        email = f"{prefix}{number}@example.com"
        answer = client.post("/v1/user", json={"email": email, "name": f"Person {number}"})
        assert answer.status_code == 200, answer.text
        people[answer.json()["token"]] = email
    return people


def _all_read_back(url: str, env: dict[str, str], cwd: Path, people: dict[str, str]) -> None:
    root = {"X-Bunker-Token": env["DATABUNKER_ROOTTOKEN"]}
    with (
        ServerProcess(["serve", "--db", url], env, cwd=cwd) as server,
        httpx.Client(base_url=server.url, headers=root, timeout=30) as client,
    ):
        for token, email in people.items():
            answer = client.get(f"/v1/user/token/{token}")
            assert answer.status_code == 200, answer.text
            assert answer.json()["data"]["email"] == email
            by_email = client.get(f"/v1/user/email/{email}")
            assert by_email.json()["token"] == token
    verified = run_cli(["audit", "verify", "--db", url], env, cwd=cwd)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith("audit chain intact: ")


def _served_people(url: str, cwd: Path, prefix: str) -> tuple[dict[str, str], dict[str, str]]:
    """A vault initialised at ``url`` that served 20 new people; its keys and those people.
    ``databunker backup`` refuses it, pointing to the database's own tool."""
    env = _init(url, cwd)
    root = {"X-Bunker-Token": env["DATABUNKER_ROOTTOKEN"]}
    with (
        ServerProcess(["serve", "--db", url], env, cwd=cwd) as server,
        httpx.Client(base_url=server.url, headers=root, timeout=30) as client,
    ):
        people = _create(client, 20, prefix)
    refused = run_cli(["backup", str(cwd / f"{prefix}.backup"), "--db", url], cwd=cwd)
    assert refused.returncode == 1
    assert "use pg_dump and pg_restore, for MariaDB mariadb-dump" in refused.stderr
    return env, people


def test_a_backup_taken_while_serving_restores_into_a_vault_that_opens_and_reads_back(
    tmp_path: Path,
) -> None:
    source = f"sqlite:///{tmp_path}/vault.db"
    env = _init(source, tmp_path)
    root = {"X-Bunker-Token": env["DATABUNKER_ROOTTOKEN"]}
    backup_file = tmp_path / "vault.backup"
    stop, failures = threading.Event(), []
    with (
        ServerProcess(["serve", "--db", source], env, cwd=tmp_path) as server,
        httpx.Client(base_url=server.url, headers=root, timeout=30) as client,
    ):
        before = _create(client, 40, "before")

        def keep_writing() -> None:
            with httpx.Client(base_url=server.url, headers=root, timeout=30) as writer:
                number = 0
                while not stop.is_set():
                    number += 1
                    answer = writer.post("/v1/user", json={"email": f"during{number}@x.test"})
                    if answer.status_code != 200:
                        failures.append(answer.text)

        writer = threading.Thread(target=keep_writing)
        writer.start()
        try:
            taken = run_cli(["backup", str(backup_file), "--db", source], cwd=tmp_path)
        finally:
            stop.set()
            writer.join(30)
    assert failures == []
    assert taken.returncode == 0, taken.stderr
    assert f"backup written to {backup_file}" in taken.stdout
    assert "keep the master key apart" in taken.stdout
    assert not list(tmp_path.glob(".*.partial"))

    restored = f"sqlite:///{tmp_path}/restored.db"
    done = run_cli(["restore", str(backup_file), "--db", restored], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    _all_read_back(restored, env, tmp_path, before)


def test_backup_and_restore_refuse_what_would_lose_or_mix_data(tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path}/vault.db"
    env = _init(source, tmp_path)
    backup_file = tmp_path / "vault.backup"
    assert run_cli(["backup", str(backup_file), "--db", source], cwd=tmp_path).returncode == 0
    written = backup_file.read_bytes()

    again = run_cli(["backup", str(backup_file), "--db", source], cwd=tmp_path)
    assert again.returncode == 1
    assert again.stderr == f"databunker: {backup_file} exists already: choose a new file\n"
    assert backup_file.read_bytes() == written

    into_a_vault = run_cli(["restore", str(backup_file), "--db", source], cwd=tmp_path)
    assert into_a_vault.returncode == 1
    assert into_a_vault.stderr == (
        "databunker: the database is not empty: restore only into a new database\n"
    )
    _all_read_back(source, env, tmp_path, {})  # the vault is as it was

    junk = tmp_path / "junk.backup"
    junk.write_bytes(b"not a database at all" * 100)
    refused = run_cli(["restore", str(junk), "--db", f"sqlite:///{tmp_path}/new.db"], cwd=tmp_path)
    assert refused.returncode == 1
    assert refused.stderr == f"databunker: {junk} is not a databunker backup (or it is damaged)\n"

    empty = run_cli(
        ["backup", str(tmp_path / "x.backup"), "--db", f"sqlite:///{tmp_path}/e.db"], cwd=tmp_path
    )
    assert empty.returncode == 1
    assert "not initialised" in empty.stderr


@pytest.fixture(scope="module")
def postgres() -> Iterator[TemporaryPostgres]:
    with TemporaryPostgres() as server:
        yield server


def test_postgresql_is_backed_up_by_pg_dump_and_restored_by_pg_restore(
    postgres: TemporaryPostgres, tmp_path: Path
) -> None:
    source = postgres.create_database("vault_source")
    env, people = _served_people(source, tmp_path, "pg")

    dump = tmp_path / "vault.dump"
    tools = postgres.bin_dir
    subprocess.run(
        [str(tools / "pg_dump"), "--format=custom", f"--file={dump}", source],
        env=child_env(),
        check=True,
        capture_output=True,
    )
    restored = postgres.create_database("vault_restored")
    subprocess.run(
        [str(tools / "pg_restore"), "--no-owner", f"--dbname={restored}", str(dump)],
        env=child_env(),
        check=True,
        capture_output=True,
    )
    _all_read_back(restored, env, tmp_path, people)


@pytest.fixture(scope="module")
def mariadb() -> Iterator[TemporaryMariaDB]:
    with TemporaryMariaDB() as server:
        yield server


def test_mariadb_is_backed_up_by_mariadb_dump_and_restored_by_the_mariadb_client(
    mariadb: TemporaryMariaDB, tmp_path: Path
) -> None:
    source = mariadb.create_database("vault_source")
    env, people = _served_people(source, tmp_path, "maria")

    login = ["--no-defaults", "-h127.0.0.1", f"-P{mariadb.port}", "-uroot"]
    dump = tmp_path / "vault.sql"
    with dump.open("wb") as out:
        subprocess.run(
            ["mariadb-dump", *login, "--single-transaction", "--routines", "vault_source"],
            stdout=out,
            check=True,
        )
    restored = mariadb.create_database("vault_restored")
    with dump.open("rb") as sql:
        subprocess.run(["mariadb", *login, "vault_restored"], stdin=sql, check=True)
    _all_read_back(restored, env, tmp_path, people)
