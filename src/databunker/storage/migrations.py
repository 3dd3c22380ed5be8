"""Schema migrations: an ordered list, applied once each, recorded in ``meta``.

Each migration states its own DDL (it is a snapshot of its time, not a view of
``tables.py``), so a database made by any earlier release upgrades step by step. Several
servers starting at once are safe: PostgreSQL takes an advisory lock, SQLite's
``BEGIN IMMEDIATE`` serialises the upgrade.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from databunker.storage.database import Database

_LOCK_ID = 0x4442_756E  # any constant; names this application's advisory lock
_VERSION_KEY = "schema_version"

Migration = Callable[[Operations], None]


def _v1_core_vault(op: Operations) -> None:
    op.create_table(
        "meta",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("token", sa.String(36), primary_key=True),
        sa.Column("data_key", sa.LargeBinary, nullable=True),
        sa.Column("profile", sa.LargeBinary, nullable=True),
        sa.Column("login_idx", sa.LargeBinary, nullable=True, unique=True),
        sa.Column("email_idx", sa.LargeBinary, nullable=True, unique=True),
        sa.Column("phone_idx", sa.LargeBinary, nullable=True, unique=True),
        sa.Column("custom_idx", sa.LargeBinary, nullable=True, unique=True),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
        sa.Column("erased", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "access_tokens",
        sa.Column("token_hash", sa.LargeBinary, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("user_token", sa.String(36), nullable=True),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("expires", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.create_index("ix_access_tokens_user_token", "access_tokens", ["user_token"])
    op.create_table(
        "audit",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("atoken", sa.String(36), nullable=False, unique=True),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("user_token", sa.String(36), nullable=True),
        sa.Column("mode", sa.String(16), nullable=True),
        sa.Column("who", sa.LargeBinary, nullable=True),
        sa.Column("accessor", sa.String(80), nullable=True),
        sa.Column("app", sa.String(64), nullable=True),
        sa.Column("title", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("msg", sa.Text, nullable=True),
        sa.Column("debug", sa.Text, nullable=True),
        sa.Column("before", sa.LargeBinary, nullable=True),
        sa.Column("after", sa.LargeBinary, nullable=True),
    )
    op.create_index("ix_audit_created", "audit", ["created"])
    op.create_index("ix_audit_user_token", "audit", ["user_token"])


MIGRATIONS: tuple[Migration, ...] = (_v1_core_vault,)
LATEST_VERSION = len(MIGRATIONS)


def schema_version(conn: Connection) -> int:
    if not sa.inspect(conn).has_table("meta"):
        return 0
    value = conn.execute(
        sa.text("SELECT value FROM meta WHERE name = :name"), {"name": _VERSION_KEY}
    ).scalar_one_or_none()
    return int(value) if value is not None else 0


def migrate(database: Database) -> int:
    """Bring the schema to the latest version; returns the version reached."""
    with database.transaction() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
        current = schema_version(conn)
        if current > LATEST_VERSION:
            raise RuntimeError(
                f"the database schema (version {current}) is newer than this server "
                f"(version {LATEST_VERSION}); upgrade the server"
            )
        op = Operations(MigrationContext.configure(conn))
        for version in range(current + 1, LATEST_VERSION + 1):
            MIGRATIONS[version - 1](op)
            _set_version(conn, version, first=version == 1)
        return LATEST_VERSION


def _set_version(conn: Connection, version: int, *, first: bool) -> None:
    params = {"name": _VERSION_KEY, "value": str(version)}
    if first:
        conn.execute(sa.text("INSERT INTO meta (name, value) VALUES (:name, :value)"), params)
    else:
        conn.execute(sa.text("UPDATE meta SET value = :value WHERE name = :name"), params)
