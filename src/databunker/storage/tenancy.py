"""Which tenant a transaction works for, and how every query is kept to it.

A transaction belongs to one tenant (``enter``): a unit of work enters the tenant its
caller acts in, and jobs, commands and migrations enter ``EVERY_TENANT``. Two locks keep
the tenants apart:

* **Every query states its tenant.** Repositories read the transaction's tenant with
  ``scope`` and filter on it (``tenant_of``); inserts store it (``owner``). Under
  ``EVERY_TENANT`` reads span the tenants, and a new row goes to the default tenant unless
  the caller names the owner.
* **PostgreSQL checks it again, by row-level security.** Each tenant-scoped table has a
  policy that shows and accepts only rows of the tenant the connection has set in
  ``app.tenant`` (``*`` for every tenant; unset: none), and ordinary traffic runs under a
  role that cannot bypass it. A query that forgot its filter still sees one tenant only.

The setting is session-wide and changed only when a transaction enters another tenant,
so steady traffic of one tenant costs no extra round trip. What a session has set is
tracked beside it: confirmed by a commit, dropped by a rollback (which gives the session
back its state from before the transaction), and forgotten altogether after any database
error or a rollback to a savepoint, so the next transaction sets it again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from databunker.storage import tables as t

DEFAULT_TENANT = 1
# Jobs, commands and migrations: reads span every tenant.
EVERY_TENANT = 0

_TENANT = "databunker.tenant"
_PG_TENANT = "databunker.pg_tenant"  # as the open transaction set it
_PG_ROLE = "databunker.pg_role"
# The role ordinary PostgreSQL traffic runs under when the login role could bypass the
# policies (a superuser, or BYPASSRLS): it owns nothing and has no such privilege.
RESTRICTED_ROLE = "databunker_tenant"

# The tables whose rows belong to a tenant and that PostgreSQL's policies guard. The
# access tokens carry their tenant too, but are read before the tenant is known (the
# default tenant's root token acts in every tenant): the binding is checked on use.
GUARDED: tuple[sa.Table, ...] = (
    t.users,
    t.audit,
    t.user_apps,
    t.sessions,
    t.shared_records,
    t.requests,
    t.legal_bases,
    t.processing_activities,
    t.activity_legal_bases,
    t.agreements,
    t.outbox,
    t.login_codes,
)


def enter(conn: Connection, tenant: int) -> None:
    """Make ``conn``'s transaction work for ``tenant`` (or ``EVERY_TENANT``)."""
    conn.info[_TENANT] = tenant
    if conn.dialect.name == "postgresql":
        _set_postgres_tenant(conn, tenant)


def scope(conn: Connection) -> int:
    """The tenant the transaction works for; ``EVERY_TENANT`` if none was entered."""
    tenant: int = conn.info.get(_TENANT, EVERY_TENANT)
    return tenant


def tenant_of(conn: Connection, table: sa.Table) -> sa.ColumnElement[bool]:
    """The filter that keeps a query on ``table`` to the transaction's tenant."""
    tenant = scope(conn)
    if tenant == EVERY_TENANT:
        return sa.true()
    return table.c.tenant_id == tenant


def owner(conn: Connection) -> int:
    """The tenant a row inserted by this transaction belongs to."""
    tenant = scope(conn)
    return DEFAULT_TENANT if tenant == EVERY_TENANT else tenant


@contextmanager
def acting_in(conn: Connection, tenant: int) -> Iterator[None]:
    """Work for ``tenant`` for a while within the transaction, then for its own tenant
    again (an operation of one tenant that reaches into another: tenant administration)."""
    before = scope(conn)
    enter(conn, tenant)
    try:
        yield
    except BaseException:
        conn.info[_TENANT] = before  # the transaction is rolled back: no statement now
        raise
    enter(conn, before)


def _setting(tenant: int) -> str:
    return "*" if tenant == EVERY_TENANT else str(tenant)


# What the session has, as of its last commit ("confirmed"), and what the open transaction
# changed it to ("pending"). A rollback gives the session back its confirmed state (so the
# pending one is dropped), a commit confirms the pending one. Only a rollback to a
# savepoint leaves the state unknown: everything is set again next time.
_CONFIRMED = {
    _PG_TENANT: "databunker.pg_tenant.confirmed",
    _PG_ROLE: "databunker.pg_role.confirmed",
}


def _known(info: dict[Any, Any], key: str) -> str | None:
    value: str | None = info.get(key, info.get(_CONFIRMED[key]))
    return value


def _set_postgres_tenant(conn: Connection, tenant: int) -> None:
    info = conn.info
    if _known(info, _PG_ROLE) is None:
        role = _restrict_role(conn)
        if role is not None:
            info[_PG_ROLE] = role
    wanted = _setting(tenant)
    if _known(info, _PG_TENANT) == wanted:
        return
    conn.exec_driver_sql("SELECT set_config('app.tenant', %(tenant)s, false)", {"tenant": wanted})
    info[_PG_TENANT] = wanted


def _restrict_role(conn: Connection) -> str | None:
    """Switch to the restricted role if the login role could bypass the policies. None
    while it could but the restricted role cannot yet be used here (the database is not
    migrated to tenants: the role, made once per server, has no grants in it): asked
    again at the next transaction, so the pool's connections restrict themselves as soon
    as the migration has run."""
    row = conn.exec_driver_sql(
        "SELECT r.rolsuper OR r.rolbypassrls, "
        "CASE WHEN NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %(role)s) THEN false "
        "WHEN to_regclass('users') IS NULL THEN false "
        "ELSE has_table_privilege(%(role)s, 'users', 'SELECT') END "
        "FROM pg_roles r WHERE r.rolname = current_user",
        {"role": RESTRICTED_ROLE},
    ).one()
    bypasses, usable = bool(row[0]), bool(row[1])
    if not bypasses:
        return "session"
    if not usable:
        return None
    conn.exec_driver_sql(f"SET ROLE {RESTRICTED_ROLE}")
    return RESTRICTED_ROLE


def release_role(conn: Connection) -> None:
    """Back to the login role (migrations change the schema, which the restricted role
    may not); the next ``enter`` restricts it again."""
    if conn.dialect.name != "postgresql":
        return
    conn.exec_driver_sql("RESET ROLE")
    forget_setting(conn)


def forget_setting(conn: Connection) -> None:
    """What the session has set is no longer known (a rollback to a savepoint may have
    undone part of it): the next ``enter`` sets everything again."""
    if conn.invalidated:  # the connection is gone, and what it knew with it
        return
    for key, confirmed in _CONFIRMED.items():
        conn.info.pop(key, None)
        conn.info.pop(confirmed, None)


def _committed(info: dict[Any, Any]) -> None:
    for key, confirmed in _CONFIRMED.items():
        if key in info:
            info[confirmed] = info.pop(key)


def _rolled_back(info: dict[Any, Any]) -> None:
    for key in _CONFIRMED:
        info.pop(key, None)


def watch_postgres(engine: Engine) -> None:
    """Keep what each session has set in step with its commits and rollbacks (also the
    pool's own rollback when a connection is handed back)."""

    def committed(conn: Connection) -> None:
        _committed(conn.info)

    def rolled_back(conn: Connection) -> None:
        if not conn.invalidated:
            _rolled_back(conn.info)

    def reset(_dbapi_connection: Any, record: Any, _reset_state: Any) -> None:
        _rolled_back(record.info)

    sa.event.listen(engine, "commit", committed)
    sa.event.listen(engine, "rollback", rolled_back)
    sa.event.listen(engine, "rollback_savepoint", lambda conn, *_a: forget_setting(conn))
    sa.event.listen(engine, "reset", reset)
    # An error (a commit refused, say) leaves the session's state unknown.
    sa.event.listen(engine, "handle_error", _errored)


def _errored(context: Any) -> None:
    conn = context.connection
    if conn is not None:
        forget_setting(conn)


def policy_statements(table: str) -> list[str]:
    """PostgreSQL DDL that puts ``table`` under the tenant policy."""
    setting = "current_setting('app.tenant', true)"
    rule = (
        f"({setting} = '*' OR tenant_id = "
        f"CASE WHEN {setting} ~ '^[0-9]+$' THEN {setting}::integer END)"
    )
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"DROP POLICY IF EXISTS tenant_isolation ON {table}",
        f"CREATE POLICY tenant_isolation ON {table} USING {rule} WITH CHECK {rule}",
    ]


def grant_statements() -> list[str]:
    """PostgreSQL DDL that makes the restricted role (if the login role may create it) and
    lets it use every table; run after each upgrade, as the tables' owner."""
    return [
        "DO $$ BEGIN "
        "IF (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user) "
        "AND NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'databunker_tenant') THEN "
        "CREATE ROLE databunker_tenant NOLOGIN NOSUPERUSER NOBYPASSRLS; END IF; "
        "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$",
        "DO $$ BEGIN "
        "IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'databunker_tenant') THEN "
        "GRANT USAGE ON SCHEMA public TO databunker_tenant; "
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public "
        "TO databunker_tenant; "
        "GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO databunker_tenant; "
        "END IF; END $$",
    ]


def data_columns(table: sa.Table) -> list[sa.Column[Any]]:
    """``table``'s columns but its tenant: what a row of the table holds for its tenant."""
    return [column for column in table.columns if column.name != "tenant_id"]


def bound_filter(table: sa.Table) -> sa.ColumnElement[bool]:
    """``tenant_of`` for a statement built once (``Prepared``): the tenant is the bound
    parameter ``tenant``, which ``with_scope`` fills in; 0 spans every tenant."""
    return sa.or_(
        sa.bindparam("tenant", type_=sa.Integer) == sa.literal_column(str(EVERY_TENANT)),
        table.c.tenant_id == sa.bindparam("tenant", type_=sa.Integer),
    )


def with_scope(conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with the transaction's tenant, for a statement filtered by ``bound_filter``."""
    params["tenant"] = scope(conn)
    return params
