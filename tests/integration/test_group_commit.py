"""SQLite's shared write transactions: each caller still sees a unit of work of its own.

The units submitted in one turn of the event loop run together in one transaction.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from databunker.storage import Database
from databunker.storage.group_commit import GroupCommit
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


def commits_of(database: Database) -> list[int]:
    """A list that grows by one at every commit of the database."""
    counted: list[int] = []
    sa.event.listen(database.engine, "commit", lambda _conn: counted.append(1))
    return counted


async def one_turn(
    database: Database, units: list[Callable[[Connection], str]]
) -> list[str | BaseException]:
    """Submit every unit in the same turn of the event loop, then wait for all of them."""
    futures = [database.run_async(unit) for unit in units]
    return await asyncio.gather(*futures, return_exceptions=True)


def test_the_units_of_one_turn_share_one_commit(database: Database) -> None:
    commits = commits_of(database)
    results = asyncio.run(one_turn(database, [note("a"), note("b"), note("c")]))
    assert results == ["a", "b", "c"]
    assert len(commits) == 1
    assert stored(database) == ["a", "b", "c"]


def test_a_failing_unit_is_rolled_back_alone(database: Database) -> None:
    def fails(conn: Connection) -> str:
        conn.execute(notes.insert(), {"text": "half-done"})
        raise ValueError("refused")

    commits = commits_of(database)
    first, failed, last = asyncio.run(one_turn(database, [note("a"), fails, note("b")]))
    assert (first, last) == ("a", "b")
    assert isinstance(failed, ValueError)
    assert len(commits) == 1
    assert stored(database) == ["a", "b"]


def test_a_database_error_in_one_unit_leaves_the_others_committed(database: Database) -> None:
    database.run(note("taken"))
    duplicate, free = asyncio.run(one_turn(database, [note("taken"), note("free")]))
    assert isinstance(duplicate, sa.exc.IntegrityError)
    assert free == "free"
    assert stored(database) == ["free", "taken"]


def test_no_result_is_handed_over_before_its_batch_commits(database: Database) -> None:
    seen: dict[str, object] = {}

    async def scenario() -> None:
        early = asyncio.ensure_future(database.run_async(note("early")))

        def later(conn: Connection) -> str:
            # "early" ran before this unit, in the same transaction, still open.
            seen["early done"] = early.done()
            seen["stored"] = stored(database)
            return note("later")(conn)

        # Both submit in the same turn, "early" first (its task was scheduled first).
        await asyncio.gather(early, database.run_async(later))

    asyncio.run(scenario())
    assert seen == {"early done": False, "stored": []}
    assert stored(database) == ["early", "later"]


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

    results = asyncio.run(one_turn(database, [note("innocent"), orphan]))
    assert all(isinstance(result, sa.exc.IntegrityError) for result in results)
    assert stored(database) == []
    assert database.run(note("later")) == "later"


def test_a_unit_cannot_wait_for_another(database: Database) -> None:
    with pytest.raises(RuntimeError, match="cannot wait"):
        database.run(lambda _conn: database.run(note("nested")))
    assert stored(database) == []


def test_threads_outside_the_loop_run_their_units_at_once(database: Database) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda n: database.run(note(f"n{n}")), range(8)))
    assert results == [f"n{n}" for n in range(8)]
    assert stored(database) == sorted(results)


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


def test_postgresql_units_wait_for_a_pooled_connection_rather_than_open_more(
    postgres_server: TemporaryPostgres,
) -> None:
    database = Database(postgres_server.create_database(f"g_{uuid.uuid4().hex[:16]}"), pool_size=2)
    opened: list[int] = []
    sa.event.listen(database.engine, "connect", lambda *_args: opened.append(1))

    def slow(conn: Connection) -> int:
        # Long enough on the server that the units overlap.
        return int(conn.exec_driver_sql("SELECT 1 FROM pg_sleep(0.05)").scalar_one())

    async def burst() -> list[int]:
        return await asyncio.gather(*(database.run_async(slow) for _ in range(10)))

    try:
        assert asyncio.run(burst()) == [1] * 10
        # At most the pool's size at once: no overflow connection opened and closed again.
        assert len(opened) <= 2
    finally:
        database.dispose()


def test_the_loop_does_not_wait_while_a_thread_holds_the_writer_lock(database: Database) -> None:
    held, release = threading.Event(), threading.Event()

    def job() -> None:  # a periodic job writing on its own thread
        with database.transaction() as conn:
            conn.execute(notes.insert(), {"text": "job"})
            held.set()
            release.wait(TIMEOUT)

    async def scenario() -> tuple[str, int]:
        worker = threading.Thread(target=job)
        worker.start()
        assert held.wait(TIMEOUT)
        submitted = asyncio.ensure_future(database.run_async(note("request")))
        ticks = 0
        for _ in range(5):  # the loop keeps serving while the unit waits for the lock
            await asyncio.sleep(0.02)
            ticks += 1
        assert not submitted.done()
        release.set()
        result = await asyncio.wait_for(submitted, TIMEOUT)
        worker.join(TIMEOUT)
        return result, ticks

    assert asyncio.run(scenario()) == ("request", 5)
    assert stored(database) == ["job", "request"]


def test_turns_that_wait_for_a_held_writer_lock_join_one_batch(database: Database) -> None:
    held, release = threading.Event(), threading.Event()

    def job() -> None:  # another writer (a job's thread, or another process) holds the lock
        with database.transaction() as conn:
            conn.execute(notes.insert(), {"text": "job"})
            held.set()
            release.wait(TIMEOUT)

    async def scenario() -> list[str]:
        worker = threading.Thread(target=job)
        worker.start()
        assert held.wait(TIMEOUT)
        submitted = []
        for text in ("first", "second", "third"):  # three turns of the loop
            submitted.append(asyncio.ensure_future(database.run_async(note(text))))
            await asyncio.sleep(0.02)
        release.set()
        results = await asyncio.wait_for(asyncio.gather(*submitted), TIMEOUT)
        worker.join(TIMEOUT)
        return results

    commits = commits_of(database)
    assert asyncio.run(scenario()) == ["first", "second", "third"]
    # The job's commit, then one for the three turns that waited: not one per turn.
    assert len(commits) == 2
    assert stored(database) == ["first", "job", "second", "third"]


class LockThatFailsOnce:
    """A writer lock that is always taken elsewhere, and whose first wait fails."""

    def __init__(self) -> None:
        self.failed = False

    def try_acquire(self) -> bool:
        return False

    def release(self) -> None:
        pass

    def __enter__(self) -> None:
        if not self.failed:
            self.failed = True
            raise OSError("the lock file cannot be locked")

    def __exit__(self, *_exc: object) -> None:
        pass


def test_a_wait_for_the_lock_that_fails_answers_its_callers_and_leaves_no_batch_behind(
    database: Database,
) -> None:
    runner = GroupCommit(database.transaction, LockThatFailsOnce())

    async def scenario() -> tuple[object, str]:
        lost = asyncio.ensure_future(runner.run_async(note("lost")))
        (failed,) = await asyncio.wait_for(asyncio.gather(lost, return_exceptions=True), 5)
        kept = await asyncio.wait_for(runner.run_async(note("kept")), 5)
        return failed, kept

    failed, kept = asyncio.run(scenario())
    assert isinstance(failed, OSError)
    assert kept == "kept"
    assert stored(database) == ["kept"]
