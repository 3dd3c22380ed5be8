"""A throw-away MariaDB server for the test suite.

``TemporaryMariaDB`` runs ``mariadb-install-db`` into a fresh temporary directory, starts
``mariadbd`` on a free port of 127.0.0.1 (and a socket in that directory) with durability
switched off (fast, and the data is thrown away anyway), and removes everything again on
``stop()``. The server runs as the ``mysql`` user (or ``nobody``) when the tests run as
root; Debian's ``mariadb-server`` package (``scripts/test`` installs it) provides it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import pymysql

_SERVER = ("/usr/sbin/mariadbd", "mariadbd")
_INSTALL = ("/usr/bin/mariadb-install-db", "mariadb-install-db")
_DUMP = ("/usr/bin/mariadb-dump", "mariadb-dump")
_SERVER_OPTIONS = (
    "--skip-grant-tables",
    "--skip-name-resolve",
    "--bind-address=127.0.0.1",
    "--innodb-flush-log-at-trx-commit=0",
    "--innodb-doublewrite=0",
    "--sync-binlog=0",
    "--innodb-buffer-pool-size=128M",
    "--innodb-log-file-size=64M",
    "--max-connections=300",
    "--character-set-server=utf8mb4",
    "--innodb-lock-wait-timeout=20",
)
# Several servers start at once (one per test worker): each keeps its temporary files in its
# own folder, and none asks for io_uring/libaio, whose locked memory and contexts run out
# when many start together ("Installation of system tables failed").
_PRIVATE_IO = ("--innodb-use-native-aio=0",)


def _tool(candidates: tuple[str, str]) -> str:
    path, name = candidates
    if os.access(path, os.X_OK):
        return path
    found = shutil.which(name)
    if found:
        return found
    raise RuntimeError(
        f"MariaDB's {name} was not found. Run ./scripts/test, which installs Debian's "
        "mariadb-server and runs the whole test suite."
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class TemporaryMariaDB:
    """A MariaDB server living in a temporary directory, for tests only."""

    def __init__(self) -> None:
        self.server = _tool(_SERVER)
        self.install = _tool(_INSTALL)
        self.port = 0
        self.base_dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._user: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("mysql")
                self._user = "mysql"
            except KeyError:
                self._user = "nobody"

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> None:
        """Create a data directory and start the server; raise RuntimeError with the log."""
        if self._process is not None:
            return
        base = Path(tempfile.mkdtemp(prefix="databunker-maria-"))
        self.base_dir = base
        try:
            if self._user is not None:
                entry = pwd.getpwnam(self._user)
                os.chown(base, entry.pw_uid, entry.pw_gid)
            self._install_db(base)
            for attempt in range(3):  # another process may grab the free port before we bind
                self.port = _free_port()
                try:
                    self._launch(base)
                    break
                except RuntimeError:
                    if attempt == 2:
                        raise
        except BaseException:
            self.stop()
            raise

    def _command(self, *command: str) -> list[str]:
        if self._user is not None:
            return ["runuser", "-u", self._user, "--", *command]
        return list(command)

    def _install_db(self, base: Path) -> None:
        command = self._command(
            self.install,
            "--no-defaults",
            f"--datadir={base / 'data'}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--skip-name-resolve",
            f"--tmpdir={base}",
            *_PRIVATE_IO,
        )
        result = subprocess.run(
            command, cwd=base, capture_output=True, text=True, stdin=subprocess.DEVNULL
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"mariadb-install-db failed (exit {result.returncode}):\n"
                f"{result.stdout}{result.stderr}"
            )

    def _launch(self, base: Path) -> None:
        log = base / "log"
        command = self._command(
            self.server,
            "--no-defaults",
            f"--datadir={base / 'data'}",
            f"--socket={base / 'sock'}",
            f"--pid-file={base / 'pid'}",
            f"--log-error={log}",
            f"--port={self.port}",
            f"--tmpdir={base}",
            *_PRIVATE_IO,
            *_SERVER_OPTIONS,
        )
        self._process = subprocess.Popen(
            command,
            cwd=base,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,  # --log-error has it
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                raise RuntimeError(f"mariadbd exited at start:\n{self._log()}")
            try:
                pymysql.connect(host="127.0.0.1", port=self.port, user="root").close()
                return
            except pymysql.err.OperationalError:
                time.sleep(0.1)
        raise RuntimeError(f"mariadbd did not answer within 60 s:\n{self._log()}")

    def stop(self) -> None:
        """Kill the server at once (no clean shutdown needed) and delete its directory."""
        try:
            if self._process is not None:
                self._process.kill()
                self._process.wait(timeout=30)
        finally:
            self._process = None
            if self.base_dir is not None:
                shutil.rmtree(self.base_dir, ignore_errors=True)
                self.base_dir = None

    def __enter__(self) -> TemporaryMariaDB:
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
        """A ``mariadb://`` URL (as an operator writes it) for database ``dbname``."""
        if self._process is None:
            raise RuntimeError("TemporaryMariaDB is not started; call start() first")
        return f"mariadb://root@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        """Create database ``name`` (with the server's defaults) and return its URL."""
        self._admin(f"CREATE DATABASE `{name}`")
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self._admin(f"DROP DATABASE IF EXISTS `{name}`")

    def connect(self, dbname: str | None = None) -> Any:
        return pymysql.connect(
            host="127.0.0.1", port=self.port, user="root", database=dbname, autocommit=True
        )

    def dump(self, dbname: str) -> str:
        """``mariadb-dump``'s plain SQL (schema and data) of ``dbname``."""
        result = subprocess.run(
            [_tool(_DUMP), "--no-defaults", "-h127.0.0.1", f"-P{self.port}", "-uroot", dbname],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"mariadb-dump of {dbname!r} failed:\n{result.stderr}")
        return result.stdout

    def _admin(self, statement: str) -> None:
        conn = self.connect()
        try:
            with conn.cursor() as cursor:
                cursor.execute(statement)
        finally:
            conn.close()

    def _log(self) -> str:
        if self.base_dir is None:
            return "(no log)"
        try:
            return (self.base_dir / "log").read_text(errors="replace")
        except OSError:
            return "(no log)"


class ReusableMariaDB:
    """A migrated database that can be emptied back to its never-initialised state."""

    def __init__(self, server: TemporaryMariaDB, name: str) -> None:
        self.url = server.url(name)
        self._conn = server.connect(name)
        with self._conn.cursor() as cursor:
            # A connection a previous test left in a transaction must fail this test.
            cursor.execute("SET SESSION innodb_lock_wait_timeout = 10")
            cursor.execute("SHOW TABLES")
            self._tables = sorted(str(row[0]) for row in cursor.fetchall())
            self._inserts: list[tuple[str, list[tuple[Any, ...]]]] = []
            for table in self._tables:
                cursor.execute(f"SELECT * FROM `{table}`")  # noqa: S608 (names from SHOW TABLES)
                rows = list(cursor.fetchall())
                if rows:
                    columns = [str(d[0]) for d in cursor.description]
                    insert = "INSERT INTO `{}` ({}) VALUES ({})".format(  # noqa: S608
                        table,
                        ", ".join(f"`{c}`" for c in columns),
                        ", ".join("%s" for _ in columns),
                    )
                    self._inserts.append((insert, rows))

    def empty(self) -> None:
        """Delete every row, then put back the rows the migration itself wrote."""
        with self._conn.cursor() as cursor:
            cursor.execute("SET foreign_key_checks = 0")
            for table in self._tables:
                cursor.execute(f"DELETE FROM `{table}`")  # noqa: S608
            for insert, rows in self._inserts:
                cursor.executemany(insert, rows)
            cursor.execute("SET foreign_key_checks = 1")

    def close(self) -> None:
        self._conn.close()
