"""What one request costs PostgreSQL: statements, round trips, bytes and server CPU.

    .venv/bin/python bench/pg_cost.py [--requests 2000]

Starts a temporary PostgreSQL server (as the test suite does), builds a vault on it with a
connection pool of one, and sends each scenario's requests through the application in
process, one after another. Counted on the client: the statements each request sends and
the round trips they make (each statement, and each BEGIN and COMMIT). Read from the server
process that serves the one connection (``/proc/<pid>``): its CPU time and the bytes it
read and wrote (the socket, and the write-ahead log it writes itself). Prints one line per
scenario.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from databunker.config import Settings
from databunker.crypto import Keyring, MasterKey
from databunker.services.context import Context, system_clock
from databunker.services.system import initialise
from databunker.storage import Database
from databunker.storage.prepared import Prepared
from support.postgres import TemporaryPostgres
from support.vaults import MASTER_KEY_HEX, ROOT_TOKEN, client_for

TICKS = 100  # clock ticks per second of /proc/<pid>/stat


class _Counter:
    """Statements sent through SQLAlchemy and those the hot paths run on the cursor."""

    def __init__(self, engine: sa.Engine) -> None:
        self.statements = 0
        self.transactions = 0
        sa.event.listen(engine, "before_cursor_execute", self._statement)
        sa.event.listen(engine, "begin", self._begin)
        original = Prepared._cursor_run

        def counted(conn: Any, sql: str, run: Any) -> Any:
            self.statements += 1
            return original(conn, sql, run)

        Prepared._cursor_run = staticmethod(counted)  # type: ignore[method-assign]

    def _statement(self, *_args: Any) -> None:
        self.statements += 1

    def _begin(self, *_args: Any) -> None:
        self.transactions += 1


def _server_usage(pid: int) -> tuple[float, int]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
    io = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    return cpu, int(io["rchar"]) + int(io["wchar"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    with TemporaryPostgres() as server:
        database = Database(server.create_database("cost"), pool_size=1)
        keyring = Keyring(MasterKey.from_hex(MASTER_KEY_HEX))
        initialise(database, keyring, ROOT_TOKEN, system_clock())
        vault = Context(Settings(), database, keyring, system_clock)
        counter = _Counter(database.engine)
        with database.engine.connect() as conn:
            pid = int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())
        with client_for(vault) as api:
            token = api.post("/v1/user", json={"login": "ann", "email": "a@example.com"}).json()

            def get(_number: int) -> None:
                assert api.get(f"/v1/user/token/{token['token']}").status_code == 200

            def create(number: int) -> None:
                profile = {"login": f"u{number}-{time.monotonic_ns()}", "name": "N"}
                assert api.post("/v1/user", json=profile).status_code == 200

            for name, run in (("get user by token", get), ("create user", create)):
                for number in range(50):  # psycopg prepares on the server after a few runs
                    run(-number - 1)
                statements, transactions = counter.statements, counter.transactions
                cpu, moved = _server_usage(pid)
                started = time.perf_counter()
                for number in range(args.requests):
                    run(number)
                elapsed = time.perf_counter() - started
                cpu_after, moved_after = _server_usage(pid)
                n = args.requests
                sent = (counter.statements - statements) / n
                units = (counter.transactions - transactions) / n
                print(
                    f"{name}: {sent:.1f} statements, {sent + 2 * units:.1f} round trips, "
                    f"{(moved_after - moved) / n:,.0f} bytes, "
                    f"{(cpu_after - cpu) / n * 1e6:,.0f} µs server CPU per request; "
                    f"{elapsed / n * 1e6:,.0f} µs wall per request, one at a time"
                )
        database.dispose()


if __name__ == "__main__":
    main()
