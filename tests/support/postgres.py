"""A throw-away PostgreSQL server for the test suite.

``TemporaryPostgres`` runs ``initdb`` into a fresh temporary directory, starts a
server on a free port of 127.0.0.1 with durability switched off (fast, and the
data is thrown away anyway), and removes everything again on ``stop()``.

PostgreSQL refuses to run as root, so when the tests run as root the server
commands are run as the ``postgres`` user (or ``nobody``) through ``runuser``.
The server binaries come from the highest ``/usr/lib/postgresql/*/bin`` (the
Debian layout) or else from ``PATH``; ``scripts/test`` installs them.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg
from psycopg import sql

_TOOLS = ("initdb", "pg_ctl", "pg_dump", "pg_restore")
_SERVER_OPTIONS = (
    "-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
    " -c full_page_writes=off -c max_connections=200"
)


def find_bin_dir() -> Path:
    """Return the directory holding initdb, pg_ctl and pg_dump."""

    def version_key(path: Path) -> tuple[int, ...]:
        parts = path.parent.name.split(".")
        return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else (-1,)

    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version_key, reverse=True)
    for bin_dir in candidates:
        if all(os.access(bin_dir / tool, os.X_OK) for tool in _TOOLS):
            return bin_dir
    found = [shutil.which(tool) for tool in _TOOLS]
    if all(found) and len({Path(str(f)).parent for f in found}) == 1:
        return Path(str(found[0])).parent
    raise RuntimeError(
        "PostgreSQL server binaries (initdb, pg_ctl, pg_dump) were not found in "
        "/usr/lib/postgresql/*/bin or on PATH. Run ./scripts/test, which installs them "
        "and runs the whole test suite."
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _clean_env() -> dict[str, str]:
    """The environment without PG* variables that could redirect the tools."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


class TemporaryPostgres:
    """A PostgreSQL server living in a temporary directory, for tests only."""

    def __init__(self) -> None:
        self.bin_dir = find_bin_dir()
        self.port = 0
        self.base_dir: Path | None = None
        self._started = False
        self._user: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
                self._user = "postgres"
            except KeyError:
                self._user = "nobody"

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> None:
        """Create a cluster and start the server; raise RuntimeError with the log on failure."""
        if self._started:
            return
        base = Path(tempfile.mkdtemp(prefix="databunker-pg-"))
        self.base_dir = base
        try:
            if self._user is not None:
                entry = pwd.getpwnam(self._user)
                os.chown(base, entry.pw_uid, entry.pw_gid)
            data, log = str(base / "data"), str(base / "log")
            initdb_args = ["-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C"]
            self._run_as_server("initdb", "-D", data, *initdb_args, "--no-sync")
            ctl_args = ["-D", data, "-l", log, "-w"]
            for attempt in range(3):  # another process may grab the free port before we bind it
                self.port = _free_port()
                options = f"-p {self.port} -k {base} {_SERVER_OPTIONS}"
                try:
                    self._run_as_server("pg_ctl", *ctl_args, "-o", options, "start")
                    break
                except RuntimeError as error:
                    if attempt == 2 or "already in use" not in str(error):
                        raise
            self._started = True
        except BaseException:
            self._remove_dir()
            raise

    def restart(self) -> None:
        """Stop the server (ending every session, as an administrator's restart does) and
        start it again on the same port and data; what was committed is still there."""
        if not self._started or self.base_dir is None:
            raise RuntimeError("the server is not running")
        base = self.base_dir
        options = f"-p {self.port} -k {base} {_SERVER_OPTIONS}"
        self._run_as_server(
            "pg_ctl",
            "-D",
            str(base / "data"),
            "-l",
            str(base / "log"),
            "-m",
            "fast",
            "-w",
            "-o",
            options,
            "restart",
        )

    def stop(self) -> None:
        """Stop the server at once (no clean shutdown needed) and delete its directory."""
        try:
            if self._started and self.base_dir is not None:
                self._run_as_server(
                    "pg_ctl", "-D", str(self.base_dir / "data"), "-m", "immediate", "-w", "stop"
                )
        finally:
            self._started = False
            self._remove_dir()

    def __enter__(self) -> TemporaryPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- databases ---------------------------------------------------------
    def url(self, dbname: str) -> str:
        """A libpq/psycopg URL for database ``dbname`` on this server."""
        self._require_started()
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        """Create database ``name`` and return its URL."""
        self._admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` (if it exists), disconnecting its sessions."""
        self._admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def dump(self, dbname: str) -> str:
        """Return ``pg_dump``'s plain-text dump (schema and data) of ``dbname``."""
        self._require_started()
        result = subprocess.run(
            [str(self.bin_dir / "pg_dump"), "--no-password", "--format=plain", self.url(dbname)],
            capture_output=True,
            text=True,
            env=_clean_env(),
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"pg_dump of {dbname!r} failed:\n{result.stderr}")
        return result.stdout

    # -- helpers -----------------------------------------------------------
    def _admin(self, statement: sql.Composed) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(statement)

    def _require_started(self) -> None:
        if not self._started:
            raise RuntimeError("TemporaryPostgres is not started; call start() first")

    def _run_as_server(self, tool: str, *args: str) -> None:
        command = [str(self.bin_dir / tool), *args]
        if self._user is not None:
            command = ["runuser", "-u", self._user, "--", *command]
        result = subprocess.run(
            command,
            cwd=self.base_dir,
            capture_output=True,
            text=True,
            env=_clean_env(),
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{tool} failed (exit {result.returncode}) running {command}:\n"
                f"{result.stdout}{result.stderr}\n--- server log ---\n{self._log()}"
            )

    def _log(self) -> str:
        if self.base_dir is None:
            return "(no log)"
        try:
            return (self.base_dir / "log").read_text(errors="replace")
        except OSError:
            return "(no log)"

    def _remove_dir(self) -> None:
        if self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            self.base_dir = None


class ReusableDatabase:
    """A migrated database that can be emptied back to its never-initialised state."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn = psycopg.connect(url)
        # A connection a previous test left in a transaction must fail this test, not hang it.
        self._conn.execute("SET lock_timeout = '10s'")
        query = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1"
        self._tables = [str(row[0]) for row in self._conn.execute(query)]
        self._inserts: list[tuple[sql.Composed, list[tuple[Any, ...]]]] = []
        for table in self._tables:
            cursor = self._conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table)))
            rows = cursor.fetchall()
            if rows:
                columns = [column.name for column in cursor.description or ()]
                insert = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                    sql.Identifier(table),
                    sql.SQL(", ").join(sql.Identifier(c) for c in columns),
                    sql.SQL(", ").join(sql.Placeholder() for _ in columns),
                )
                self._inserts.append((insert, rows))
        self._conn.commit()

    def empty(self) -> None:
        """Delete every row, then put back the rows the migration itself wrote."""
        with self._conn.transaction():
            # DELETE, not TRUNCATE: on tables this small it is several times faster.
            for table in self._tables:
                self._conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))
            for insert, rows in self._inserts:
                self._conn.cursor().executemany(insert, rows)

    def close(self) -> None:
        self._conn.close()
