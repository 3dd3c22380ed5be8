"""An operator's mistake in a ``databunker`` command: one line on stderr, never a traceback.

Each case runs the real command as a process, as an operator would, and checks what they see:
a non-zero exit status and one line that names what to fix.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.postgres import TemporaryPostgres
from support.server import COMMAND, child_env, free_port, run_cli

pytestmark = pytest.mark.e2e

MASTER_KEY = {"DATABUNKER_MASTERKEY": "5a" * 32}
# Every command that opens a database, with the arguments it needs besides --db.
DATABASE_COMMANDS = {
    "init": [],
    "serve": ["--port", "1"],
    "import": ["users.jsonl"],
    "export": ["-"],
}


def refusal(result: subprocess.CompletedProcess[str]) -> str:
    """The one line the command printed on stderr, checked to be a refusal."""
    assert "Traceback" not in result.stderr
    assert result.returncode in (1, 2), result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("databunker: ")
    assert result.stdout == ""  # in particular no secrets of a vault that was not created
    return lines[0]


def run(command: str, database_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    (cwd / "users.jsonl").write_text('{"email": "ann@example.com"}\n')
    return run_cli(
        [command, "--db", database_url, *DATABASE_COMMANDS[command]], MASTER_KEY, cwd=cwd
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port of 127.0.0.1 that refuses connections: bound, never listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def without_root_powers() -> list[str]:
    """A prefix that runs a command without root's power to override file permissions (in a
    user namespace of its own, still owning its files), so that read-only files and folders
    refuse a test run as root as they refuse everyone else."""
    if os.geteuid() != 0:
        return []
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "--user", "true"], check=False).returncode:
        pytest.skip("running as root, and without user namespaces to drop root's powers")
    return [unshare, "--user", "--"]


def run_without_root_powers(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*without_root_powers(), *COMMAND, *args],
        env=child_env(MASTER_KEY),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# --- SQLite files and folders ---------------------------------------------------------------


@pytest.mark.parametrize("command", DATABASE_COMMANDS)
def test_a_missing_folder_is_named_with_the_absolute_spelling(command: str, workdir: Path) -> None:
    result = run(command, "sqlite:///var/lib/databunker/vault.db", workdir)

    line = refusal(result)
    assert line == (
        f"databunker: cannot open the database: folder {workdir}/var/lib/databunker does not "
        "exist (sqlite:///var/lib/databunker/vault.db is a path relative to the current "
        "folder; write sqlite:////var/lib/databunker/vault.db for /var/lib/databunker/vault.db)"
    )
    assert not (workdir / "var").exists()


def test_a_missing_absolute_folder_is_named(workdir: Path) -> None:
    line = refusal(run("init", f"sqlite:///{workdir}/missing/vault.db", workdir))

    assert line == f"databunker: cannot open the database: folder {workdir}/missing does not exist"


def test_a_file_where_the_folder_should_be_is_named(workdir: Path) -> None:
    (workdir / "notes").write_text("not a folder")

    line = refusal(run("init", "sqlite:///notes/vault.db", workdir))

    assert line == f"databunker: cannot open the database: {workdir}/notes is not a folder"


def test_a_file_that_is_not_a_database_is_named(workdir: Path) -> None:
    (workdir / "vault.db").write_text("these are not the pages of a SQLite database\n" * 100)

    line = refusal(run("serve", "sqlite:///vault.db", workdir))

    assert (
        line == f"databunker: cannot open the database: {workdir}/vault.db is not a SQLite database"
    )


def test_an_unwritable_folder_is_named(workdir: Path) -> None:
    folder = workdir / "readonly"
    folder.mkdir()
    folder.chmod(0o555)

    line = refusal(
        run_without_root_powers(["init", "--db", "sqlite:///readonly/vault.db"], workdir)
    )

    assert line == (
        f"databunker: cannot open the database: folder {folder} is not writable (Permission denied)"
    )
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("command", ["init", "serve"])
def test_an_unwritable_database_file_is_named(command: str, workdir: Path) -> None:
    created = run_cli(["init", "--db", "sqlite:///vault.db"], cwd=workdir)
    assert created.returncode == 0, created.stderr
    (workdir / "vault.db").chmod(0o444)

    line = refusal(run_without_root_powers([command, "--db", "sqlite:///vault.db"], workdir))

    assert line == f"databunker: cannot open the database: {workdir}/vault.db is not writable"


# --- database URLs --------------------------------------------------------------------------


@pytest.mark.parametrize("command", DATABASE_COMMANDS)
@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a database URL", "database URL is not valid"),
        ("postgresql://vault@127.0.0.1:port/vault", "database URL is not valid"),
        (
            "oracle://vault@127.0.0.1/vault",
            "database URL must start with sqlite:///, postgresql://, mariadb:// or mysql://",
        ),
    ],
)
def test_a_bad_database_url_is_refused(command: str, url: str, message: str, workdir: Path) -> None:
    assert refusal(run(command, url, workdir)) == f"databunker: {message}"


@pytest.mark.parametrize("scheme", ["mariadb", "mysql"])
def test_an_unreachable_mariadb_server_is_named(
    scheme: str, closed_port: int, workdir: Path
) -> None:
    url = f"{scheme}://vault:secret-password@127.0.0.1:{closed_port}/vault"

    line = refusal(run("init", url, workdir))

    assert line == (
        "databunker: cannot connect to the database: (2003, \"Can't connect to MySQL server "
        "on '127.0.0.1' ([Errno 111] Connection refused)\")"
    )
    assert "secret-password" not in line


# --- PostgreSQL -----------------------------------------------------------------------------


@pytest.mark.parametrize("command", DATABASE_COMMANDS)
def test_an_unreachable_postgresql_server_is_named(
    command: str, closed_port: int, workdir: Path
) -> None:
    url = f"postgresql://vault:secret-password@127.0.0.1:{closed_port}/vault"

    line = refusal(run(command, url, workdir))

    assert line == (
        "databunker: cannot connect to the database: connection to server at "
        f'"127.0.0.1", port {closed_port} failed: Connection refused'
    )
    assert "secret-password" not in line


@pytest.mark.parametrize(
    ("user", "database", "reason"),
    [
        ("postgres", "no_such_database", 'database "no_such_database" does not exist'),
        ("no_such_role", "postgres", 'role "no_such_role" does not exist'),
    ],
)
def test_a_refusal_by_postgresql_is_named(
    postgres_server: TemporaryPostgres, user: str, database: str, reason: str, workdir: Path
) -> None:
    url = f"postgresql://{user}@127.0.0.1:{postgres_server.port}/{database}"

    line = refusal(run("init", url, workdir))

    assert line.startswith("databunker: cannot connect to the database: connection to server at")
    assert line.endswith(reason)


# --- the server itself ----------------------------------------------------------------------


@pytest.mark.parametrize("command", ["demo", "serve"])
def test_a_port_in_use_is_named(command: str, workdir: Path) -> None:
    created = run_cli(["init", "--db", "sqlite:///vault.db"], cwd=workdir)
    key = created.stdout.split("DATABUNKER_MASTERKEY=")[1].split()[0]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", free_port()))
        taken.listen()
        port = taken.getsockname()[1]
        database = [] if command == "demo" else ["--db", "sqlite:///vault.db"]
        result = run_cli(
            [command, *database, "--host", "127.0.0.1", "--port", str(port)],
            {"DATABUNKER_MASTERKEY": key},
            cwd=workdir,
        )

    # The server's log lines come first; the command's verdict is the last line.
    assert "Traceback" not in result.stderr
    assert result.returncode == 1
    last = result.stderr.splitlines()[-1]
    assert last.startswith("databunker: cannot start the server: ")
    assert f"('127.0.0.1', {port})" in last
    assert last.endswith("address already in use")
