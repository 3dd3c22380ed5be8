"""PostgreSQL keeps the tenants apart by row-level security, under the storage layer's own
filters: a query that forgot its tenant filter still sees, and writes, one tenant only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from databunker.services.context import Context
from databunker.storage import Database
from databunker.storage.migrations import migrate
from databunker.storage.tenancy import DEFAULT_TENANT, EVERY_TENANT, GUARDED, RESTRICTED_ROLE
from support.v2 import ANN, BOB, call
from support.vaults import client_for

ON_POSTGRES = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@pytest.fixture
def two_tenants(vault: Context) -> Iterator[int]:
    """A person in the default tenant and two (with a session, an app record, an
    agreement and audit events) in a tenant of their own; yields that tenant's id."""
    with client_for(vault) as root:
        created = call(root, "TenantCreate", {"tenantname": "acme", "tenantorg": "Acme"}).json()
        assert call(root, "UserCreate", {"profile": BOB}).status_code == 200
        acme = {"X-Bunker-Tenant": "acme"}
        for profile in (ANN, {"login": "zoe"}):
            made = call(root, "UserCreate", {"profile": profile}, **acme).json()
            person = {"mode": "token", "identity": made["token"]}
            appdata = {**person, "appname": "shop", "appdata": {"n": 1}}
            assert call(root, "AppdataCreate", appdata, **acme).status_code == 200
            agreed = {**person, "brief": "core-send-email-on-login"}
            assert call(root, "AgreementAccept", agreed, **acme).status_code == 200
        session = {"sessionuuid": "0d5e3c55-8f7a-4a51-9a38-5b1f2a7c9e11", "sessiondata": {"a": 1}}
        assert call(root, "SessionUpsert", session, **acme).status_code == 200
    return int(created["tenantid"])


def _tenants_seen(conn: sa.Connection, table: sa.Table) -> set[int]:
    # Deliberately unfiltered: what the database itself lets the transaction see.
    return {int(t) for t in conn.execute(sa.text(f"SELECT tenant_id FROM {table.name}")).scalars()}  # noqa: S608


@ON_POSTGRES
def test_an_unfiltered_query_sees_only_the_transactions_tenant(
    vault: Context, two_tenants: int
) -> None:
    database = vault.database
    with database.transaction(EVERY_TENANT) as conn:
        assert _tenants_seen(conn, GUARDED[0]) == {DEFAULT_TENANT, two_tenants}
    for tenant in (DEFAULT_TENANT, two_tenants):
        with database.transaction(tenant) as conn:
            assert conn.execute(sa.text("SELECT current_user")).scalar_one() == RESTRICTED_ROLE
            for table in GUARDED:
                assert _tenants_seen(conn, table) <= {tenant}, table.name
            count = conn.execute(sa.text("SELECT count(*) FROM users")).scalar_one()
            assert count == (1 if tenant == DEFAULT_TENANT else 2)
    # and the tables the fixture filled are really filled in the tenant
    with database.transaction(two_tenants) as conn:
        for name in ("users", "user_apps", "agreements", "sessions", "audit"):
            assert _tenants_seen(conn, sa.table(name)) == {two_tenants}, name


@ON_POSTGRES
def test_an_unfiltered_change_reaches_only_the_transactions_tenant(
    vault: Context, two_tenants: int
) -> None:
    database = vault.database
    with database.transaction(two_tenants) as conn:
        # an UPDATE and a DELETE without any tenant filter
        changed = conn.execute(sa.text("UPDATE users SET updated = updated + 1")).rowcount
        removed = conn.execute(sa.text("DELETE FROM sessions")).rowcount
    assert (changed, removed) == (2, 1)
    with database.transaction(DEFAULT_TENANT) as conn:
        assert conn.execute(sa.text("DELETE FROM user_apps")).rowcount == 0
    with database.transaction(EVERY_TENANT) as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM user_apps")).scalar_one() == 2


@ON_POSTGRES
def test_a_row_cannot_be_written_into_another_tenant(vault: Context, two_tenants: int) -> None:
    refused = pytest.raises(sa.exc.ProgrammingError, match="row-level security")
    with refused, vault.database.transaction(two_tenants) as conn:
        conn.execute(
            sa.text(
                "INSERT INTO sessions (tenant_id, session, data_key, data, created, "
                "updated, expires) VALUES (1, 's', '', '', 0, 0, 0)"
            )
        )
    refused = pytest.raises(sa.exc.ProgrammingError, match="row-level security")
    with refused, vault.database.transaction(two_tenants) as conn:
        conn.execute(sa.text("UPDATE users SET tenant_id = 1"))


@ON_POSTGRES
def test_a_session_that_entered_no_tenant_sees_nothing(vault: Context, two_tenants: int) -> None:
    # A new session, not one of the vault's pool (a pooled one keeps its last tenant).
    engine = sa.create_engine(vault.database.engine.url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"SET ROLE {RESTRICTED_ROLE}")
            for table in GUARDED:
                assert _tenants_seen(conn, table) == set(), table.name
    finally:
        engine.dispose()


@ON_POSTGRES
def test_tenants_alternating_on_the_pooled_connections_stay_apart(
    vault: Context, two_tenants: int
) -> None:
    acme = {"X-Bunker-Tenant": "acme"}
    with client_for(vault) as root:
        for _ in range(3):
            assert call(root, "AppdataListAppNames", {}).json()["apps"] == []
            assert call(root, "AppdataListAppNames", {}, **acme).json()["apps"] == ["shop"]
            # a failed (rolled back) unit in one tenant, then the other tenant again
            refused = call(root, "UserCreate", {"profile": BOB}, **acme)
            assert call(root, "UserCreate", {"profile": BOB}, **acme).status_code == 409
            assert refused.status_code in (200, 409)
            assert call(root, "AppdataListAppNames", {}).json()["apps"] == []


@pytest.mark.parametrize("fresh_database_url", ["postgresql"], indirect=True)
def test_a_database_upgraded_to_tenants_restricts_its_pooled_connections(
    fresh_database_url: str,
) -> None:
    # The restricted role exists on this server (other databases made it), but has no
    # grants in a database from before tenants: its connections keep their login role
    # until the migration has run, then restrict themselves.
    database = Database(fresh_database_url, pool_size=1)
    try:
        migrate(database, target=6)
        # as the release before tenants left it: no grants to the role
        engine = sa.create_engine(database.engine.url, poolclass=sa.pool.NullPool)
        with engine.begin() as owner:
            owner.exec_driver_sql(
                f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {RESTRICTED_ROLE}"
            )
        engine.dispose()
        with database.transaction() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM users")).scalar_one() == 0
            assert conn.execute(sa.text("SELECT current_user")).scalar_one() != RESTRICTED_ROLE
        migrate(database)
        with database.transaction() as conn:
            assert conn.execute(sa.text("SELECT current_user")).scalar_one() == RESTRICTED_ROLE
    finally:
        database.dispose()
