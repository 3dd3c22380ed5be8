"""Online backup and restore of a SQLite vault, with SQLite's own backup API.

A backup is a SQLite database file: a consistent snapshot of the vault taken while it keeps
serving (the copy runs in one read transaction, which the write-ahead log lets writers work
beside), written beside its destination and renamed into place only when complete. A restore
copies such a file into an empty database and refuses any other. Neither holds a key: the
rows are as stored, sealed; the master key or its shares are kept apart.

PostgreSQL and MariaDB have native tools that do this better (``pg_dump``/``pg_restore``,
``mariadb-dump``): the README says how, and the tests check that a vault restored by them
opens.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

import sqlalchemy as sa

from databunker.storage.database import Database


class BackupError(Exception):
    """The backup or restore cannot be done as asked; the message says why."""


def _require_sqlite_file(database: Database) -> None:
    """Refuse a database that is not a SQLite file, naming the tool that backs it up."""
    name = database.url.database
    if not database.is_sqlite or not name or name == ":memory:":
        raise BackupError(
            "databunker backup and restore work on SQLite; for PostgreSQL use pg_dump and "
            "pg_restore, for MariaDB mariadb-dump (see the README, Backups)"
        )


def backup(database: Database, target: Path) -> int:
    """Write a consistent snapshot of ``database`` to ``target`` (which must not exist);
    returns its size in bytes."""
    _require_sqlite_file(database)
    if target.exists():
        raise BackupError(f"{target} exists already: choose a new file")
    partial = target.with_name(f".{target.name}.partial")
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    try:
        with database.engine.connect() as conn:
            source = _driver_connection(conn)
            copy = sqlite3.connect(partial)
            try:
                source.backup(copy)  # every page in one step: one read transaction
            finally:
                copy.close()
        os.replace(partial, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        raise
    return target.stat().st_size


def _driver_connection(conn: sa.Connection) -> sqlite3.Connection:
    found = conn.connection.driver_connection
    if not isinstance(found, sqlite3.Connection):
        raise BackupError("this database is not SQLite")
    return found


def _is_backup(path: Path) -> bool:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            if conn.execute("PRAGMA integrity_check").fetchone() != ("ok",):
                return False
            found = conn.execute("SELECT 1 FROM meta WHERE name = 'key_check'").fetchone()
            return found is not None
    except sqlite3.DatabaseError:
        return False


def restore(database: Database, source: Path) -> None:
    """Copy the backup ``source`` into ``database``, which must be empty (no table)."""
    _require_sqlite_file(database)
    if not source.is_file():
        raise BackupError(f"{source} is not a file")
    if not _is_backup(source):
        raise BackupError(f"{source} is not a databunker backup (or it is damaged)")
    with database.engine.connect() as conn:
        tables = sa.inspect(conn).get_table_names()
        conn.rollback()  # the copy needs the destination with no transaction open
        if tables:
            raise BackupError("the database is not empty: restore only into a new database")
        target = _driver_connection(conn)
        with contextlib.closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as backup_db:
            backup_db.backup(target)
