"""Statements of the hottest paths, compiled once per dialect and run on the driver's cursor.

SQLAlchemy builds and compiles each statement here once; running it afterwards skips the
per-call work of a Core ``execute`` (cache-key lookup, execution context, result wrapping),
which costs several times what SQLite spends on the query itself. The statement still runs
on the connection of the caller's transaction, with bound parameters only. On PostgreSQL,
psycopg prepares a statement on the server once a connection has run it a few times.

Driver errors are wrapped as SQLAlchemy wraps them (``IntegrityError`` for a broken unique
index, ...), with the parameters hidden, so callers see the same exceptions either way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.expression import Executable

from databunker.storage import tenancy


class Prepared:
    """One statement with named bound parameters, compiled lazily for each dialect."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None]] = {}

    def _compile(self, dialect: Dialect) -> tuple[str, tuple[str, ...] | None]:
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self.statement.compile(dialect=dialect)  # type: ignore[attr-defined]
            order = tuple(compiled.positiontup) if compiled.positional else None
            found = (compiled.string, order)
            self._compiled[dialect.name] = found
        return found

    def _run(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        sql, order = self._compile(conn.dialect)
        arguments: Any = [params[name] for name in order] if order is not None else params
        return self._cursor_run(conn, sql, lambda cursor: cursor.execute(sql, arguments))

    def execute_many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run the statement once per row, as one driver call (a bulk insert)."""
        if not rows:
            return
        sql, order = self._compile(conn.dialect)
        arguments: Any = (
            [[row[name] for name in order] for row in rows] if order is not None else rows
        )
        cursor = self._cursor_run(conn, sql, lambda cursor: cursor.executemany(sql, arguments))
        cursor.close()

    @staticmethod
    def _cursor_run(conn: Connection, sql: str, run: Callable[[Any], Any]) -> Any:
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            run(cursor)
        except conn.dialect.loaded_dbapi.Error as exc:
            cursor.close()
            raise sa.exc.DBAPIError.instance(
                sql,
                None,
                exc,
                conn.dialect.loaded_dbapi.Error,
                hide_parameters=True,
                dialect=conn.dialect,
            ) from exc
        return cursor

    def first(self, conn: Connection, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The first row, as a tuple in the statement's column order (None when there is none)."""
        cursor = self._run(conn, params)
        try:
            row = cursor.fetchone()
        finally:
            cursor.close()
        return None if row is None else tuple(row)

    def all(self, conn: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Every row, as tuples in the statement's column order."""
        cursor = self._run(conn, params)
        try:
            return [tuple(row) for row in cursor.fetchall()]
        finally:
            cursor.close()

    def execute(self, conn: Connection, params: Mapping[str, Any]) -> int:
        """Run a statement that returns no rows; the number of rows it touched."""
        cursor = self._run(conn, params)
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()


def driver_sql(conn: Connection, sql: str) -> None:
    """A fixed statement without parameters (a savepoint, say) on the driver's cursor."""
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
    finally:
        cursor.close()


# Under this key of ``conn.connection.info``, a callable that forgets what the connection
# keeps in memory about its open transaction (the audit chain's newest link, say), which a
# rollback to a savepoint makes stale.
FORGET_ON_ROLLBACK = "databunker_forget_on_rollback"


@contextmanager
def savepoint(conn: Connection, name: str = "unit") -> Iterator[None]:
    """A savepoint on the driver (cheaper than SQLAlchemy's): rolled back if the block raises."""
    driver_sql(conn, f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        driver_sql(conn, f"ROLLBACK TO SAVEPOINT {name}")
        driver_sql(conn, f"RELEASE SAVEPOINT {name}")
        forget = conn.connection.info.get(FORGET_ON_ROLLBACK)
        if forget is not None:
            forget()
        tenancy.forget_setting(conn)
        raise
    driver_sql(conn, f"RELEASE SAVEPOINT {name}")
