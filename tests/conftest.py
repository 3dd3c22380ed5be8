"""Shared pytest fixtures.

Integration tests take ``database_url`` (or anything built on it) and so run three times:
on SQLite, and on a real PostgreSQL and a real MariaDB server started for the session.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from databunker.config import Settings
from databunker.crypto import Keyring, MasterKey
from databunker.services.context import Context, Randomness
from databunker.services.keys import unlock
from databunker.services.schema import UserSchema
from databunker.services.system import initialise
from databunker.storage import Database, migrate
from support.mariadb import ReusableMariaDB, TemporaryMariaDB
from support.postgres import ReusableDatabase, TemporaryPostgres
from support.vaults import (
    DATABASES,
    MASTER_KEY_HEX,
    ROOT_TOKEN,
    Clock,
    VaultFactory,
    client_for,
    issue_user_token,
)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[TemporaryPostgres]:
    """A throw-away PostgreSQL server shared by the whole test session."""
    with TemporaryPostgres() as server:
        yield server


@contextmanager
def migrated_postgres(server: TemporaryPostgres) -> Iterator[ReusableDatabase]:
    """A new migrated PostgreSQL database on ``server``, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    url = server.create_database(name)
    database = Database(url)
    migrate(database)
    database.dispose()
    reusable = ReusableDatabase(url)
    yield reusable
    reusable.close()
    server.drop_database(name)


@contextmanager
def migrated_mariadb(server: TemporaryMariaDB) -> Iterator[ReusableMariaDB]:
    """A new migrated MariaDB database on ``server``, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    url = server.create_database(name)
    database = Database(url)
    migrate(database)
    database.dispose()
    reusable = ReusableMariaDB(server, name)
    yield reusable
    reusable.close()
    server.drop_database(name)


@pytest.fixture(scope="session")
def reusable_postgres(postgres_server: TemporaryPostgres) -> Iterator[ReusableDatabase]:
    """One migrated PostgreSQL database for the session, emptied before each test (much
    faster than creating a database per test)."""
    with migrated_postgres(postgres_server) as reusable:
        yield reusable


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[TemporaryMariaDB]:
    """A throw-away MariaDB server shared by the whole test session."""
    with TemporaryMariaDB() as server:
        yield server


@pytest.fixture(scope="session")
def reusable_mariadb(mariadb_server: TemporaryMariaDB) -> Iterator[ReusableMariaDB]:
    """One migrated MariaDB database for the session, emptied before each test."""
    with migrated_mariadb(mariadb_server) as reusable:
        yield reusable


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once for the session, never initialised: each test gets a copy
    (as the server databases are migrated once and emptied before each test)."""
    template = tmp_path_factory.mktemp("sqlite") / "migrated.db"
    database = Database(f"sqlite:///{template}")
    migrate(database)
    database.dispose()  # the last connection's close folds the WAL into the file
    return template


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database, never initialised: a copy of the migrated SQLite file, or the
    emptied PostgreSQL or MariaDB one."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("migrated_sqlite")
        shutil.copyfile(template, tmp_path / "vault.db")
        return f"sqlite:///{tmp_path}/vault.db"
    fixture = "reusable_mariadb" if request.param == "mariadb" else "reusable_postgres"
    reusable: ReusableDatabase | ReusableMariaDB = request.getfixturevalue(fixture)
    reusable.empty()
    return reusable.url


@pytest.fixture(scope="module")
def spare_databases(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str, str], str]]:
    """``spare_databases(kind, name)``: the URL of an empty database of ``kind`` (one of
    ``DATABASES``), never initialised, one for each ``name``, and apart from the one
    ``database_url`` empties before each test: for a module that keeps a vault over several
    of its tests. Each call empties that database again (on SQLite, a new copy of the
    migrated file), so whatever used it before must have let go of it first."""
    with ExitStack() as stack:
        folders: dict[str, Path] = {}
        servers: dict[tuple[str, str], ReusableDatabase | ReusableMariaDB] = {}

        def empty(kind: str, name: str) -> str:
            assert kind in DATABASES, kind
            if kind == "sqlite":
                if name not in folders:
                    folders[name] = tmp_path_factory.mktemp(f"spare-{name}")
                for old in folders[name].iterdir():
                    old.unlink()
                template: Path = request.getfixturevalue("migrated_sqlite")
                shutil.copyfile(template, folders[name] / "vault.db")
                return f"sqlite:///{folders[name]}/vault.db"
            if (kind, name) not in servers:
                if kind == "mariadb":
                    mariadb: TemporaryMariaDB = request.getfixturevalue("mariadb_server")
                    servers[kind, name] = stack.enter_context(migrated_mariadb(mariadb))
                else:
                    postgres: TemporaryPostgres = request.getfixturevalue("postgres_server")
                    servers[kind, name] = stack.enter_context(migrated_postgres(postgres))
            servers[kind, name].empty()
            return servers[kind, name].url

        yield empty


@pytest.fixture(params=DATABASES)
def fresh_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all, for tests of the migrations themselves."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/vault.db"
        return
    server: TemporaryPostgres | TemporaryMariaDB = request.getfixturevalue(
        "mariadb_server" if request.param == "mariadb" else "postgres_server"
    )
    name = f"t_{uuid.uuid4().hex[:16]}"
    url = server.create_database(name)
    yield url
    server.drop_database(name)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_vault(database_url: str, clock: Clock) -> Iterator[VaultFactory]:
    """Build an initialised vault on the test database.

    ``make_vault(generic={"list_users": True}, schema={...})``: settings sections as dicts,
    and an optional user-record JSON Schema document. Every vault built in one test shares
    the database (the first one initialises it), like several servers on one database.
    """
    databases: list[Database] = []

    def factory(
        schema: dict[str, Any] | None = None,
        random: Randomness | None = None,
        **sections: dict[str, Any],
    ) -> Context:
        settings = Settings.model_validate(sections)
        database = Database(database_url)
        databases.append(database)
        keyring = Keyring(MasterKey.from_hex(MASTER_KEY_HEX))
        if len(databases) == 1:
            initialise(database, keyring, ROOT_TOKEN, clock())
        else:
            unlock(database, keyring, keyring.master, clock())
        user_schema = UserSchema.from_document(schema) if schema is not None else None
        context = Context(settings, database, keyring, clock, user_schema)
        return context if random is None else replace(context, random=random)

    yield factory
    for database in databases:
        database.dispose()


@pytest.fixture
def vault(make_vault: VaultFactory) -> Context:
    return make_vault()


@pytest.fixture
def api(vault: Context) -> Iterator[TestClient]:
    """A client of a fresh vault, sending the root token."""
    with client_for(vault) as client:
        yield client


@pytest.fixture
def anonymous(vault: Context) -> Iterator[TestClient]:
    """A client of the same vault sending no token."""
    with client_for(vault, None) as client:
        yield client


@pytest.fixture
def user_client(vault: Context) -> Iterator[Callable[[str], TestClient]]:
    """``user_client(token)``: a client sending a fresh access token of that person."""
    with client_for(vault, None) as client:

        def make(user_token: str) -> TestClient:
            client.headers["X-Bunker-Token"] = issue_user_token(vault, user_token)
            return client

        yield make
