"""SQLite's shared write transactions: each caller still sees a unit of work of its own.

Batches are formed by holding the group-commit thread inside a first unit (on an Event) while
the next units queue up behind it; they then run together in the next transaction.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from databunker.storage import Database
from support.postgres import TemporaryPostgres

TIMEOUT = 30
notes = sa.table("notes", sa.column("text", sa.String))


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path}/vault.db")
    with database.transaction() as conn:
        conn.exec_driver_sql("CREATE TABLE notes (text TEXT NOT NULL UNIQUE)")
    yield database
    database.dispose()


def note(text: str) -> Callable[[Connection], str]:
    def unit(conn: Connection) -> str:
        conn.execute(notes.insert(), {"text": text})
        return text

    return unit


def stored(database: Database) -> list[str]:
    """What another reader sees (a plain connection: the vault's own begin with a write lock)."""
    if database.is_sqlite:
        reader = sqlite3.connect(str(database.url.database))
        try:
            return sorted(text for (text,) in reader.execute("SELECT text FROM notes"))
        finally:
            reader.close()
    with database.engine.connect() as conn:
        return sorted(conn.execute(sa.select(notes.c.text)).scalars())


class Gate:
    """A unit that keeps the group-commit thread busy until opened."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()

    def __call__(self, conn: Connection) -> str:
        self.entered.set()
        assert self.opened.wait(TIMEOUT)
        conn.execute(notes.insert(), {"text": "gate"})
        return "gate"


def queue_behind_gate(
    database: Database, units: list[Callable[[Connection], str]]
) -> tuple[Gate, Future[str], list[Future[str]]]:
    gate = Gate()
    gate_future = database._group_commit.submit(gate)  # type: ignore[union-attr]
    assert gate.entered.wait(TIMEOUT)
    futures = [database._group_commit.submit(unit) for unit in units]  # type: ignore[union-attr]
    return gate, gate_future, futures


def test_a_failing_unit_is_rolled_back_alone(database: Database) -> None:
    def fails(conn: Connection) -> str:
        conn.execute(notes.insert(), {"text": "half-done"})
        raise ValueError("refused")

    gate, first, futures = queue_behind_gate(database, [note("a"), fails, note("b")])
    gate.opened.set()
    assert first.result(TIMEOUT) == "gate"
    assert futures[0].result(TIMEOUT) == "a"
    with pytest.raises(ValueError, match="refused"):
        futures[1].result(TIMEOUT)
    assert futures[2].result(TIMEOUT) == "b"
    assert stored(database) == ["a", "b", "gate"]


def test_a_database_error_in_one_unit_leaves_the_others_committed(database: Database) -> None:
    database.run(note("taken"))
    gate, _first, futures = queue_behind_gate(database, [note("taken"), note("free")])
    gate.opened.set()
    with pytest.raises(sa.exc.IntegrityError):
        futures[0].result(TIMEOUT)
    assert futures[1].result(TIMEOUT) == "free"
    assert stored(database) == ["free", "gate", "taken"]


def test_no_result_is_handed_over_before_its_batch_commits(database: Database) -> None:
    second_gate = Gate()
    gate, _first, futures = queue_behind_gate(database, [note("early"), second_gate])
    gate.opened.set()
    assert second_gate.entered.wait(TIMEOUT)
    # "early" ran, but the transaction holding it is still open.
    assert not futures[0].done()
    assert "early" not in stored(database)
    second_gate.opened.set()
    assert futures[0].result(TIMEOUT) == "early"
    assert "early" in stored(database)


def test_a_failed_commit_fails_every_unit_of_the_batch(database: Database) -> None:
    with database.transaction() as conn:
        conn.exec_driver_sql("CREATE TABLE parents (id INTEGER PRIMARY KEY)")
        conn.exec_driver_sql(
            "CREATE TABLE children (parent INTEGER REFERENCES parents(id)"
            " DEFERRABLE INITIALLY DEFERRED)"
        )

    def orphan(conn: Connection) -> str:
        conn.exec_driver_sql("INSERT INTO children (parent) VALUES (42)")
        return "orphan"  # the foreign key is checked only at COMMIT

    gate, first, futures = queue_behind_gate(database, [note("innocent"), orphan])
    gate.opened.set()
    assert first.result(TIMEOUT) == "gate"
    for future in futures:
        with pytest.raises(sa.exc.IntegrityError):
            future.result(TIMEOUT)
    assert "innocent" not in stored(database)
    assert database.run(note("later")) == "later"  # the thread carries on


def test_a_unit_cannot_wait_for_another(database: Database) -> None:
    with pytest.raises(RuntimeError, match="cannot wait"):
        database.run(lambda _conn: database.run(note("nested")))
    assert stored(database) == []


def test_the_event_loop_gets_results_and_errors(database: Database) -> None:
    async def scenario() -> tuple[str, str]:
        first = await database.run_async(note("one"))
        try:
            await database.run_async(note("one"))
        except sa.exc.IntegrityError:
            return first, "refused"
        return first, "accepted"

    assert asyncio.run(scenario()) == ("one", "refused")
    assert stored(database) == ["one"]


def test_writers_of_other_processes_queue_on_a_lock_file(database: Database) -> None:
    lock_path = Path(str(database.url.database) + "-lock")
    other = os.open(lock_path, os.O_RDWR)
    try:
        # Another process (here: another open file) cannot take the writer's lock...
        with database.transaction(), pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # ...until the transaction ends.
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(other, fcntl.LOCK_UN)
    finally:
        os.close(other)
    assert lock_path.read_bytes() == b""


def test_postgresql_runs_each_unit_in_a_transaction_of_its_own(
    postgres_server: TemporaryPostgres,
) -> None:
    database = Database(postgres_server.create_database(f"g_{uuid.uuid4().hex[:16]}"))
    try:
        with database.transaction() as conn:
            conn.exec_driver_sql("CREATE TABLE notes (text TEXT NOT NULL UNIQUE)")
        assert database.run(note("a")) == "a"
        with pytest.raises(sa.exc.IntegrityError):
            database.run(note("a"))
        assert asyncio.run(database.run_async(note("b"))) == "b"
        assert stored(database) == ["a", "b"]
    finally:
        database.dispose()
