"""Migrations build exactly the schema that ``storage/tables.py`` describes."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from databunker.storage import LATEST_VERSION, Database, migrate, schema_version
from databunker.storage.dialects import compare_type
from databunker.storage.tables import metadata


@pytest.fixture
def database(fresh_database_url: str) -> Iterator[Database]:
    db = Database(fresh_database_url)
    yield db
    db.dispose()


def test_migrated_schema_matches_the_table_definitions(database: Database) -> None:
    migrate(database)
    with database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": compare_type})
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_migrate_is_idempotent_and_records_the_version(database: Database) -> None:
    assert migrate(database) == LATEST_VERSION
    assert migrate(database) == LATEST_VERSION
    with database.engine.connect() as conn:
        assert schema_version(conn) == LATEST_VERSION


def test_servers_starting_at_once_migrate_once(fresh_database_url: str) -> None:
    databases = [Database(fresh_database_url) for _ in range(4)]
    errors: list[BaseException] = []

    def start(db: Database) -> None:
        try:
            migrate(db)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(db,)) for db in databases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        with databases[0].engine.connect() as conn:
            assert schema_version(conn) == LATEST_VERSION
            count = conn.execute(sa.text("SELECT count(*) FROM meta")).scalar_one()
        assert count == 1
    finally:
        for db in databases:
            db.dispose()


def test_a_newer_schema_is_refused(database: Database) -> None:
    migrate(database)
    with database.transaction() as conn:
        conn.execute(sa.text("UPDATE meta SET value = '999' WHERE name = 'schema_version'"))
    with pytest.raises(RuntimeError, match="newer than this server"):
        migrate(database)
