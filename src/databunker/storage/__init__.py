"""Storage: SQLAlchemy Core tables, repositories and migrations for SQLite and PostgreSQL."""

from databunker.storage.database import Database, DatabaseURLError
from databunker.storage.migrations import (
    LATEST_VERSION,
    migrate,
    probe_schema_version,
    schema_version,
)

__all__ = [
    "LATEST_VERSION",
    "Database",
    "DatabaseURLError",
    "migrate",
    "probe_schema_version",
    "schema_version",
]
