"""Schema migrations: an ordered list, applied once each, recorded in ``meta``.

Each migration states its own DDL (it is a snapshot of its time, not a view of
``tables.py``), so a database made by any earlier release upgrades step by step. Several
servers starting at once are safe: PostgreSQL takes an advisory lock, MariaDB and MySQL a
named lock (``GET_LOCK``; their DDL commits as it runs, so a migration there is not undone
as a whole when it fails), SQLite's ``BEGIN IMMEDIATE`` serialises the upgrade.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from databunker.storage import tenancy
from databunker.storage.database import Database
from databunker.storage.dialects import MYSQL_DIALECTS, KeyedBinary, is_mysql

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


def _v2_consent_and_personal_data(op: Operations) -> None:
    # Data retention on the user record; the expiration token is stored only as a keyed hash.
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("exp_status", sa.String(16), nullable=True))
        batch.add_column(sa.Column("exp_token_hash", KeyedBinary, nullable=True))
        batch.add_column(sa.Column("exp_time", sa.BigInteger, nullable=False, server_default="0"))
        batch.add_column(sa.Column("exp_started_by", sa.String(16), nullable=True))
        batch.create_index("ix_users_exp_time", ["exp_time"])
        batch.create_unique_constraint("uq_users_exp_token_hash", ["exp_token_hash"])
    op.create_table(
        "user_apps",
        sa.Column("user_token", sa.String(36), primary_key=True),
        sa.Column("app", sa.String(32), primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_user_apps_app", "user_apps", ["app"])
    op.create_table(
        "sessions",
        sa.Column("session", sa.String(36), primary_key=True),
        sa.Column("user_token", sa.String(36), nullable=True),
        sa.Column("data_key", sa.LargeBinary, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
        sa.Column("expires", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_sessions_user_token", "sessions", ["user_token"])
    op.create_index("ix_sessions_expires", "sessions", ["expires"])
    op.create_table(
        "shared_records",
        sa.Column("record_hash", sa.LargeBinary, primary_key=True),
        sa.Column("user_token", sa.String(36), nullable=False),
        sa.Column("partner", sa.String(128), nullable=True),
        sa.Column("app", sa.String(32), nullable=True),
        sa.Column("session", sa.String(36), nullable=True),
        sa.Column("fields", sa.Text, nullable=True),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("expires", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_shared_records_user_token", "shared_records", ["user_token"])
    op.create_index("ix_shared_records_expires", "shared_records", ["expires"])
    op.create_table(
        "requests",
        sa.Column("rtoken", sa.String(36), primary_key=True),
        sa.Column("user_token", sa.String(36), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("app", sa.String(32), nullable=True),
        sa.Column("brief", sa.String(65), nullable=True),
        sa.Column("change", sa.LargeBinary, nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_requests_user_token", "requests", ["user_token"])
    op.create_index("ix_requests_status", "requests", ["status", "updated"])
    op.create_table(
        "legal_bases",
        sa.Column("brief", sa.String(65), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("module", sa.String(64), nullable=False, server_default=""),
        sa.Column("shortdesc", sa.Text, nullable=False, server_default=""),
        sa.Column("fulldesc", sa.Text, nullable=False, server_default=""),
        sa.Column("basistype", sa.String(64), nullable=False, server_default=""),
        sa.Column("requiredmsg", sa.Text, nullable=False, server_default=""),
        sa.Column("usercontrol", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("requiredflag", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "processing_activities",
        sa.Column("activity", sa.String(65), primary_key=True),
        sa.Column("title", sa.Text, nullable=False, server_default=""),
        sa.Column("script", sa.Text, nullable=False, server_default=""),
        sa.Column("fulldesc", sa.Text, nullable=False, server_default=""),
        sa.Column("applicableto", sa.Text, nullable=False, server_default=""),
        sa.Column("created", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "activity_legal_bases",
        sa.Column("activity", sa.String(65), primary_key=True),
        sa.Column("brief", sa.String(65), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("ix_activity_legal_bases_brief", "activity_legal_bases", ["brief"])
    op.create_table(
        "agreements",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("brief", sa.String(65), nullable=False),
        sa.Column("user_token", sa.String(36), nullable=True),
        sa.Column("who_idx", sa.LargeBinary, nullable=True),
        sa.Column("who", sa.LargeBinary, nullable=True),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("referencecode", sa.Text, nullable=True),
        sa.Column("lastmodifiedby", sa.Text, nullable=True),
        sa.Column("agreementmethod", sa.String(64), nullable=True),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("starttime", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("endtime", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("updated", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("user_token", "brief", name="uq_agreements_user_brief"),
        sa.UniqueConstraint("who_idx", "brief", name="uq_agreements_who_brief"),
    )
    op.create_index("ix_agreements_brief", "agreements", ["brief"])
    op.create_index("ix_agreements_status_endtime", "agreements", ["status", "endtime"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt", sa.BigInteger, nullable=False),
        sa.Column("locked_until", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("delivered", sa.BigInteger, nullable=True),
        sa.Column("last_error", sa.String(200), nullable=True),
    )
    op.create_index("ix_outbox_due", "outbox", ["delivered", "next_attempt"])


def _v3_passwordless_login(op: Operations) -> None:
    op.create_table(
        "captchas",
        sa.Column("id_hash", sa.LargeBinary, primary_key=True),
        sa.Column("answer_hash", sa.LargeBinary, nullable=False),
        sa.Column("expires", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_captchas_expires", "captchas", ["expires"])
    op.create_table(
        "login_codes",
        sa.Column("identity_idx", sa.LargeBinary, primary_key=True),
        sa.Column("user_token", sa.String(36), nullable=False),
        sa.Column("code_hash", sa.LargeBinary, nullable=False),
        sa.Column("expires", sa.BigInteger, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("ix_login_codes_expires", "login_codes", ["expires"])
    op.create_table(
        "rate_limits",
        sa.Column("bucket", sa.LargeBinary, primary_key=True),
        sa.Column("window_start", sa.BigInteger, nullable=False),
        sa.Column("hits", sa.Integer, nullable=False),
    )
    op.create_index("ix_rate_limits_window_start", "rate_limits", ["window_start"])


def _v4_keyring(op: Operations) -> None:
    # The keys the master key wraps; a vault of an earlier version gets its rows when it is
    # first opened with its master key (services/keys.py), since only then are they known.
    op.create_table(
        "keyring",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("sealed", sa.LargeBinary, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
    )


def _v5_audit_chain(op: Operations) -> None:
    # Events already stored stay outside the chain (they were never linked): the heads
    # record the last of them, and the chain starts after it, in 32 lanes.
    op.add_column("audit", sa.Column("chain_lane", sa.Integer, nullable=True))
    op.add_column("audit", sa.Column("chain_pos", sa.BigInteger, nullable=True))
    op.add_column("audit", sa.Column("chain_link", sa.LargeBinary, nullable=True))
    op.add_column("audit", sa.Column("payload_digest", sa.LargeBinary, nullable=True))
    op.create_index("ix_audit_chain", "audit", ["chain_lane", "chain_pos"], unique=True)
    op.create_table(
        "audit_chain",
        sa.Column("lane", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("link", sa.LargeBinary, nullable=False),
        sa.Column("first_position", sa.BigInteger, nullable=False),
        sa.Column("first_prev", sa.LargeBinary, nullable=False),
        sa.Column("legacy_seq", sa.BigInteger, nullable=False),
        sa.Column("seal", sa.LargeBinary, nullable=True),
    )
    conn = op.get_bind()
    last = int(conn.execute(sa.text("SELECT COALESCE(MAX(seq), 0) FROM audit")).scalar_one())
    genesis = bytes(32)
    conn.execute(
        sa.text(
            "INSERT INTO audit_chain (lane, position, link, first_position, first_prev, "
            "legacy_seq) VALUES (:lane, 0, :link, 1, :link, :last)"
        ).bindparams(sa.bindparam("link", type_=sa.LargeBinary)),
        [{"lane": lane, "link": genesis, "last": last} for lane in range(32)],
    )


def _v6_legal_basis_translations(op: Operations) -> None:
    op.add_column(
        "legal_bases",
        sa.Column("translations", sa.Text, nullable=False, server_default=""),
    )


def _v7_tenants(op: Operations) -> None:
    # Every row so far belongs to the default tenant, 1. Four tables are keyed by a name or
    # id that each tenant chooses, so their primary keys take the tenant too.
    conn = op.get_bind()
    tenants = op.create_table(
        "tenants",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("org", sa.Text, nullable=False, server_default=""),
        sa.Column("email", sa.LargeBinary, nullable=True),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
        # A deleted tenant's id is never given again (its audit trail stays).
        sqlite_autoincrement=True,
    )
    now = int(time.time())
    op.bulk_insert(
        tenants, [{"id": 1, "name": "default", "org": "", "created": now, "updated": now}]
    )
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT setval(pg_get_serial_sequence('tenants', 'id'), 1)"))
    for table in _TENANT_TABLES:
        op.add_column(table, sa.Column("tenant_id", sa.Integer, nullable=False, server_default="1"))
    for table, key in _TENANT_KEYS.items():
        op.add_column(table, sa.Column("tenant_id", sa.Integer, nullable=False, server_default="1"))
        with warnings.catch_warnings(), op.batch_alter_table(table, recreate="auto") as batch:
            # SQLite rebuilds the table, and SQLAlchemy warns that the copy's primary key
            # differs from the reflected one: the change this step makes.
            warnings.simplefilter("ignore", sa.exc.SAWarning)
            if conn.dialect.name != "sqlite":
                batch.drop_constraint(_primary_key_name(conn, table), type_="primary")
            batch.create_primary_key(f"pk_{table}", ["tenant_id", *key])
    op.create_index("ix_users_tenant_created", "users", ["tenant_id", "created"])
    op.create_index("ix_audit_tenant_seq", "audit", ["tenant_id", "seq"])
    if conn.dialect.name == "postgresql":
        for table in (*_TENANT_TABLES, *_TENANT_KEYS):
            if table == "access_tokens":
                continue
            for statement in tenancy.policy_statements(table):
                conn.execute(sa.text(statement))


_TENANT_TABLES = (
    "users",
    "access_tokens",
    "audit",
    "user_apps",
    "shared_records",
    "requests",
    "agreements",
    "outbox",
    "login_codes",
)
_TENANT_KEYS = {
    "sessions": ["session"],
    "legal_bases": ["brief"],
    "processing_activities": ["activity"],
    "activity_legal_bases": ["activity", "brief"],
}


def _primary_key_name(conn: Connection, table: str) -> str:
    name = sa.inspect(conn).get_pk_constraint(table).get("name")
    return name or "PRIMARY"


MIGRATIONS: tuple[Migration, ...] = (
    _v1_core_vault,
    _v2_consent_and_personal_data,
    _v3_passwordless_login,
    _v4_keyring,
    _v5_audit_chain,
    _v6_legal_basis_translations,
    _v7_tenants,
)
LATEST_VERSION = len(MIGRATIONS)


def probe_schema_version(database: Database) -> int | None:
    """The schema version, read on a connection of its own; None when the database cannot
    be reached (nothing is locked: no writer lock on SQLite)."""
    try:
        with database.engine.connect() as conn:
            return schema_version(conn)
    except sa.exc.SQLAlchemyError:
        return None


def schema_version(conn: Connection) -> int:
    if not sa.inspect(conn).has_table("meta"):
        return 0
    value = conn.execute(
        sa.text("SELECT value FROM meta WHERE name = :name"), {"name": _VERSION_KEY}
    ).scalar_one_or_none()
    return int(value) if value is not None else 0


def migrate(database: Database, target: int | None = None) -> int:
    """Bring the schema to ``target`` (default: the latest version); returns the version
    reached."""
    if target is None:
        target = len(MIGRATIONS)
    if database.dialect in MYSQL_DIALECTS:
        # DDL commits as it goes there: the lock is a session's of its own, released only
        # once the transaction that records the version has committed.
        with _named_lock(database), database.transaction() as conn:
            return _migrate(conn, target)
    with database.transaction() as conn:
        if conn.dialect.name == "postgresql":
            tenancy.release_role(conn)
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
            reached = _migrate(conn, target)
            for statement in tenancy.grant_statements():
                conn.execute(sa.text(statement))
            return reached
        return _migrate(conn, target)


@contextmanager
def _named_lock(database: Database) -> Iterator[None]:
    name = f"databunker_migrate_{database.url.database}"[:64]  # one per database
    with database.engine.connect() as holder:
        got = holder.execute(sa.text("SELECT GET_LOCK(:name, 600)"), {"name": name}).scalar()
        if got != 1:
            raise RuntimeError("another server held the schema upgrade lock for 10 minutes")
        try:
            yield
        finally:
            holder.execute(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": name})
            holder.rollback()


def _migrate(conn: Connection, target: int) -> int:
    current = schema_version(conn)
    if current > LATEST_VERSION:
        raise RuntimeError(
            f"the database schema (version {current}) is newer than this server "
            f"(version {LATEST_VERSION}); upgrade the server"
        )
    if current == 0 and is_mysql(conn):
        # Tokens, names and keys compare exactly, as on SQLite and PostgreSQL: every
        # table takes the database's (binary) collation.
        conn.execute(sa.text("ALTER DATABASE CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"))
    op = Operations(MigrationContext.configure(conn))
    for version in range(current + 1, target + 1):
        MIGRATIONS[version - 1](op)
        _set_version(conn, version, first=version == 1)
    return max(current, target)


def _set_version(conn: Connection, version: int, *, first: bool) -> None:
    params = {"name": _VERSION_KEY, "value": str(version)}
    if first:
        conn.execute(sa.text("INSERT INTO meta (name, value) VALUES (:name, :value)"), params)
    else:
        conn.execute(sa.text("UPDATE meta SET value = :value WHERE name = :name"), params)
