"""Engine creation and the one transaction a request or job runs in.

SQLite (the embedded default) runs in WAL mode and every transaction starts with
``BEGIN IMMEDIATE``: a request that reads and then writes never works from a stale snapshot,
and writers queue on the busy timeout instead of failing. PostgreSQL uses its default READ
COMMITTED isolation with row locks (``SELECT ... FOR UPDATE``) where a row is read to be
changed; MariaDB and MySQL are set to the same READ COMMITTED isolation. SQL statements
never carry literal values: everything is a bound parameter, and parameters are hidden
from SQLAlchemy's error messages so no value reaches a log.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError

from databunker.storage import tenancy
from databunker.storage.dialects import MYSQL_DIALECTS
from databunker.storage.group_commit import GroupCommit
from databunker.storage.runners import ThreadedRunner, UnitRunner

DEFAULT_URL = "sqlite:///databunker.db"
# Execution option of a SQLite connection whose transaction only reads (``Database.snapshot``).
_SNAPSHOT = "databunker_snapshot"
# PostgreSQL, MariaDB, MySQL: a pooled connection unused this long is pinged before use.
PING_AFTER_IDLE_SECONDS = 10.0
# Under this key of a DBAPI connection's pool info: when it was last given back.
_LAST_USED = "databunker_last_used"
T = TypeVar("T")


class DatabaseURLError(ValueError):
    """The database URL is not one this server can use."""


def normalise_url(url: str) -> sa.URL:
    """Accept ``sqlite:///path``, ``postgresql://...`` and ``mariadb://`` / ``mysql://``;
    choose the drivers we ship (PyMySQL for MariaDB and MySQL)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseURLError("database URL is not valid") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+pysqlite")
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg")
    if backend in MYSQL_DIALECTS:
        query = {"charset": "utf8mb4", **parsed.query}
        return parsed.set(drivername=f"{backend}+pymysql", query=query)
    raise DatabaseURLError(
        "database URL must start with sqlite:///, postgresql://, mariadb:// or mysql://"
    )


class Database:
    """A connection pool, the transactions opened on it, and the way units of work run on
    it (``runner``, chosen once here by the database: see ``storage/runners.py``)."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = normalise_url(url)
        self.dialect = self.url.get_backend_name()
        kwargs: dict[str, Any] = {"hide_parameters": True}
        if self.dialect == "sqlite":
            kwargs.update(
                connect_args={"check_same_thread": False, "timeout": 30},
                pool_size=pool_size,
                max_overflow=pool_size * 4,
            )
        else:
            # LIFO: requests one after another reuse the connection returned last (warm, and
            # holding its audit-chain lane), instead of going round every pooled connection.
            kwargs.update(
                pool_size=pool_size,
                max_overflow=pool_size // 2,
                pool_use_lifo=True,
            )
        if self.dialect in MYSQL_DIALECTS:
            # PostgreSQL's default: a plain read sees what is committed when it runs, and
            # rows read to be changed are locked (``FOR UPDATE``).
            kwargs.update(isolation_level="READ COMMITTED", pool_recycle=3600)
        self.engine: Engine = sa.create_engine(self.url, **kwargs)
        self.writer: WriterLock | None = None
        self.runner: UnitRunner
        if self.dialect == "sqlite":
            _configure_sqlite(self.engine)
            database_file = self.url.database
            lock_file = None
            if database_file and database_file != ":memory:":
                lock_file = Path(database_file).resolve().as_posix() + "-lock"
            self.writer = WriterLock(lock_file)
            self.runner = GroupCommit(self.transaction, self.writer)
        else:
            _ping_when_idle(self.engine)
            if self.dialect == "postgresql":
                tenancy.watch_postgres(self.engine)
            # No more units at once than the pool holds, so a burst queues here instead of
            # opening and closing overflow connections.
            self.runner = ThreadedRunner(self.transaction, units_at_once=pool_size)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextmanager
    def transaction(self, tenant: int = tenancy.EVERY_TENANT) -> Iterator[Connection]:
        """One unit of work for ``tenant`` (default: jobs and commands, which span the
        tenants; see ``storage/tenancy.py``): committed when the block ends, rolled back on
        any exception.

        SQLite has one writer at a time. Queueing writers on a lock (this process's threads
        on a mutex, processes on a lock file) is far cheaper than letting them poll SQLite's
        busy handler, whose sleeps grow with each retry."""
        if self.writer is None:
            with self.engine.begin() as conn:
                tenancy.enter(conn, tenant)
                yield conn
            return
        with self.writer, self.engine.begin() as conn:
            tenancy.enter(conn, tenant)
            yield conn

    @contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """A read-only transaction that sees one consistent state of the database and holds
        no writer back, for long reads (``databunker audit verify``): a deferred ``BEGIN``
        on SQLite (WAL readers never block the writer), ``REPEATABLE READ READ ONLY`` on
        PostgreSQL, ``REPEATABLE READ`` (one consistent snapshot) on MariaDB and MySQL."""
        with self.engine.connect() as conn:
            if self.is_sqlite:
                conn.execution_options(**{_SNAPSHOT: True})
            elif self.dialect in MYSQL_DIALECTS:
                conn.execution_options(isolation_level="REPEATABLE READ")
            else:
                conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            with conn.begin():
                tenancy.enter(conn, tenancy.EVERY_TENANT)
                yield conn

    def run(self, unit: Callable[[Connection], T]) -> T:
        """Run ``unit`` as one unit of work, on the calling thread: its changes are
        committed when this returns, and rolled back (alone) if it raises."""
        return self.runner.run(unit)

    async def run_async(self, unit: Callable[[Connection], T]) -> T:
        """``run`` for the event loop, which never blocks on a lock or a query meanwhile."""
        return await self.runner.run_async(unit)

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError:
            return False
        return True

    def dispose(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.engine.dispose()


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before handing it out only if it sat unused for
    ``PING_AFTER_IDLE_SECONDS`` (the server, or a firewall, may have dropped it meanwhile);
    a ping refused makes the pool open another. A connection in steady use is not pinged,
    which saves a round trip per unit: one found cut all the same fails its unit before
    the commit, and the runner runs the unit again on a fresh connection (``runners.py``)."""

    def checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info[_LAST_USED] = time.monotonic()

    def checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        last_used = record.info.get(_LAST_USED)  # None: opened just now
        if last_used is None or time.monotonic() - last_used < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise sa.exc.DisconnectionError("the pooled connection is gone") from exc

    sa.event.listen(engine, "checkin", checked_in)
    sa.event.listen(engine, "checkout", checked_out)


class WriterLock:
    """SQLite's writer lock: a mutex for this process's threads, then an exclusive
    ``flock`` on a file beside the database for every process that writes to it.

    Re-entrant on the thread that holds it. ``try_acquire`` never waits, so the event loop
    can take it without blocking (see ``GroupCommit``). The lock file holds nothing and may
    be deleted while no server runs."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._mutex = threading.RLock()
        self._fd: int | None = None
        self._depth = 0  # guarded by the mutex

    def _take_file(self, blocking: bool) -> bool:
        if self.path is None:
            return True
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _acquire(self, blocking: bool) -> bool:
        if not self._mutex.acquire(blocking=blocking):
            return False
        if self._depth == 0 and not self._take_file(blocking):
            self._mutex.release()
            return False
        self._depth += 1
        return True

    def try_acquire(self) -> bool:
        """Take the lock if it is free now (or already this thread's); never waits."""
        return self._acquire(blocking=False)

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._mutex.release()

    def __enter__(self) -> None:
        self._acquire(blocking=True)

    def __exit__(self, *_exc: object) -> None:
        self.release()

    def close(self) -> None:
        with self._mutex:
            if self._fd is not None and self._depth == 0:
                os.close(self._fd)
                self._fd = None


def _configure_sqlite(engine: Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver so that BEGIN below is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        snapshot = conn.get_execution_options().get(_SNAPSHOT, False)
        conn.exec_driver_sql("BEGIN" if snapshot else "BEGIN IMMEDIATE")
