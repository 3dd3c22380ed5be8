"""Connections the database server cut: no unit fails for them, and no unit pays a ping
for a connection in steady use.

PostgreSQL and MariaDB only: SQLite has no server to lose. A connection is cut the way a
server restart or an administrator cuts it, from another session (``pg_terminate_backend``,
``KILL``); the restart test restarts a private PostgreSQL server under a running app.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from databunker.config import Settings
from databunker.crypto import Keyring, MasterKey
from databunker.services.context import Context
from databunker.services.system import initialise
from databunker.storage import Database, migrate
from databunker.storage import database as database_module
from support.postgres import TemporaryPostgres
from support.vaults import ROOT_TOKEN, Clock, VaultFactory, client_for

SERVERS = pytest.mark.parametrize("database_url", ["postgresql", "mariadb"], indirect=True)
MARKER = "connection-loss"


def backend_id(conn: Connection) -> int:
    """The server's id of the session this connection is."""
    mysql = conn.dialect.name != "postgresql"
    query = "SELECT CONNECTION_ID()" if mysql else "SELECT pg_backend_pid()"
    return int(conn.exec_driver_sql(query).scalar_one())


def cut(database: Database, session: int) -> None:
    """End a session of the server from another one, as an administrator would."""
    engine = sa.create_engine(database.url, poolclass=sa.NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as admin:
            if database.dialect == "postgresql":
                admin.exec_driver_sql(f"SELECT pg_terminate_backend({session})")
            else:
                admin.exec_driver_sql(f"KILL {session}")
    finally:
        engine.dispose()
    time.sleep(0.2)  # the session's end reaches its socket


def count_pings(database: Database, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    pings: list[int] = []
    dialect = database.engine.dialect
    ping = dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings.append(1)
        return ping(dbapi_connection)

    monkeypatch.setattr(dialect, "do_ping", counted)
    return pings


def marking(runs: list[int]) -> Callable[[Connection], int]:
    """A unit that writes one row and says on which session it ran; ``runs`` counts its runs."""

    def unit(conn: Connection) -> int:
        runs.append(1)
        conn.execute(sa.text("INSERT INTO meta (name, value) VALUES (:n, 'x')"), {"n": MARKER})
        return backend_id(conn)

    return unit


def marked_rows(database: Database) -> int:
    with database.transaction() as conn:
        query = sa.text("SELECT count(*) FROM meta WHERE name = :n")
        return int(conn.execute(query, {"n": MARKER}).scalar_one())


@SERVERS
def test_a_unit_whose_connection_was_cut_runs_again_on_a_fresh_one_and_is_kept_once(
    make_vault: VaultFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = make_vault().database
    pings = count_pings(database, monkeypatch)
    session = database.run(backend_id)  # the connection the pool hands out next
    for _ in range(5):
        assert database.run(backend_id) == session
    cut(database, session)

    runs: list[int] = []
    ran_on = database.run(marking(runs))

    assert ran_on != session
    assert marked_rows(database) == 1
    assert len(runs) == 2  # the first run found its connection cut, and kept nothing
    assert pings == []  # a connection in steady use is handed out without a round trip


@SERVERS
def test_a_connection_left_idle_is_pinged_before_use_and_replaced_when_it_is_gone(
    make_vault: VaultFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database_module, "PING_AFTER_IDLE_SECONDS", 0.5)
    database = make_vault().database
    pings = count_pings(database, monkeypatch)
    session = database.run(backend_id)
    assert database.run(backend_id) == session
    assert pings == []
    time.sleep(0.6)
    assert database.run(backend_id) == session  # idle: pinged, alive, kept
    assert len(pings) == 1

    time.sleep(0.6)
    cut(database, session)
    runs: list[int] = []
    assert database.run(marking(runs)) != session
    assert len(runs) == 1  # the ping found it gone: the unit ran once, on a new connection
    assert marked_rows(database) == 1


def test_a_postgresql_restart_costs_the_running_vault_no_request(clock: Clock) -> None:
    with TemporaryPostgres() as server:
        database = Database(server.create_database("restart"))
        migrate(database)
        keyring = Keyring(MasterKey.generate())
        initialise(database, keyring, ROOT_TOKEN, clock())
        vault = Context(Settings(), database, keyring, clock, None)
        try:
            with client_for(vault) as api:
                created = api.post("/v1/user", json={"email": "ann@example.com", "name": "Ann"})
                token = created.json()["token"]

                server.restart()

                read = api.get(f"/v1/user/token/{token}")
                assert (read.status_code, read.json()["data"]["name"]) == (200, "Ann")
                other = api.post("/v1/user", json={"email": "bob@example.com"})
                assert (other.status_code, other.json()["status"]) == (200, "ok")
                assert api.get("/v1/user/email/bob@example.com").status_code == 200
        finally:
            database.dispose()
