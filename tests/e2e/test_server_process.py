"""The real command as an operator runs it: ``init``, ``serve`` and ``demo`` as processes.

Each test talks to a started server over HTTP (or reads the command's output), on SQLite and
on PostgreSQL, and checks what an operator or an API client would observe: the printed
secrets, the refusals, the answers, the bytes at rest and the log lines.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import signal
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2 as httpx
import pytest

from support.postgres import TemporaryPostgres
from support.server import ServerProcess, free_port, run_cli

pytestmark = pytest.mark.e2e

ANN = {
    "email": "Ann.Smith@Example.com",
    "phone": "+44 7700 900123",
    "login": "annsmith",
    "name": "Annabel Smith",
}
CITY = "Reykjavik"
# Every spelling of Ann's personal data that must never be found at rest or in a log.
ANN_PII = [*ANN.values(), "+447700900123", "7700900123", "Smith", CITY]

MASTER_KEY_LINE = re.compile(r"DATABUNKER_MASTERKEY=[0-9a-f]{64}")
UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
USER_ROUTE = "/v1/user/{mode}/{identity}"
# A graceful stop on SIGTERM: uvicorn shuts down, then re-raises the signal it received.
CLEAN_EXIT = (0, -signal.SIGTERM)


# --- databases ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Database:
    """One empty database; ``raw_bytes`` is everything it holds, as stored."""

    url: str
    raw_bytes: Callable[[], bytes]


class Databases:
    """Fresh databases of one kind for a test, removed afterwards."""

    def __init__(self, kind: str, folder: Path, postgres: TemporaryPostgres | None) -> None:
        self.kind = kind
        self.folder = folder
        self.postgres = postgres
        self._names: list[str] = []
        self._count = itertools.count(1)

    def new(self) -> Database:
        if self.postgres is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / f"vault-{next(self._count)}.db"
            return Database(f"sqlite:///{path}", lambda: _sqlite_bytes(path))
        postgres = self.postgres
        name = f"e2e_{uuid.uuid4().hex[:16]}"
        url = postgres.create_database(name)
        self._names.append(name)
        return Database(url, lambda: postgres.dump(name).encode())

    def drop_all(self) -> None:
        if self.postgres is not None:
            for name in self._names:
                self.postgres.drop_database(name)
        self._names.clear()


def _sqlite_bytes(path: Path) -> bytes:
    """The database file and its write-ahead log, shared-memory and rollback journal files."""
    assert path.is_file(), f"no database file at {path}"
    parts = [path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))]
    return b"".join(p.read_bytes() for p in parts if p.is_file())


def _databases(request: pytest.FixtureRequest, kind: str, folder: Path) -> Databases:
    postgres = request.getfixturevalue("postgres_server") if kind == "postgresql" else None
    return Databases(kind, folder, postgres)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def databases(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Iterator[Databases]:
    found = _databases(request, backend, tmp_path / "data")
    yield found
    found.drop_all()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """The processes' working directory: empty, so no ./databunker.yaml is picked up."""
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


# --- vaults ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class InitialisedVault:
    """An initialised database and the secrets ``init`` printed for it."""

    database: Database
    master_key: str
    root_token: str

    def serve(self, cwd: Path, master_key: str | None = None) -> ServerProcess:
        env = {"DATABUNKER_MASTERKEY": master_key or self.master_key}
        return ServerProcess(["serve", "--db", self.database.url], env, cwd=cwd)


def printed(output: str, name: str) -> list[str]:
    """Every line of ``output`` that shows a value of ``name``."""
    return [line for line in output.splitlines() if f"{name}=" in line]


def initialise(database: Database, cwd: Path) -> InitialisedVault:
    result = run_cli(["init", "--db", database.url], cwd=cwd)
    assert result.returncode == 0, result.stderr
    keys = printed(result.stdout, "DATABUNKER_MASTERKEY")
    tokens = printed(result.stdout, "DATABUNKER_ROOTTOKEN")
    assert len(keys) == 1, result.stdout
    assert len(tokens) == 1, result.stdout
    return InitialisedVault(
        database, keys[0].partition("=")[2].strip(), tokens[0].partition("=")[2].strip()
    )


@pytest.fixture
def fresh_vault(databases: Databases, workdir: Path) -> InitialisedVault:
    """A freshly initialised vault of the test's own."""
    return initialise(databases.new(), workdir)


@pytest.fixture(scope="module")
def shared_vault(
    request: pytest.FixtureRequest, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InitialisedVault]:
    """One initialised vault per backend for the tests that never change it."""
    folder = tmp_path_factory.mktemp(f"shared-{backend}")
    found = _databases(request, backend, folder / "data")
    work = folder / "work"
    work.mkdir()
    yield initialise(found.new(), work)
    found.drop_all()


def client(server: ServerProcess, token: str | None) -> httpx.Client:
    headers = {"X-Bunker-Token": token} if token else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=10.0)


def serve_args(database: Database) -> list[str]:
    """``serve`` arguments that can only bind to a free loopback port, should it start."""
    return ["serve", "--db", database.url, "--host", "127.0.0.1", "--port", str(free_port())]


def random_key() -> str:
    return secrets.token_hex(32)


# --- the user flow --------------------------------------------------------------------------


def user_path(mode: str, identity: str) -> str:
    return f"/v1/user/{mode}/{quote(identity, safe='')}"


def create_ann(api: httpx.Client) -> str:
    response = api.post("/v1/user", json=ANN)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    token: str = body["token"]
    assert UUID_TEXT.fullmatch(token), token
    return token


def get_user(api: httpx.Client, mode: str, identity: str) -> dict[str, Any]:
    response = api.get(user_path(mode, identity))
    assert response.status_code == 200, (mode, identity, response.text)
    body: dict[str, Any] = response.json()
    assert body["status"] == "ok"
    return body


def exercise_user_flow(api: httpx.Client) -> None:
    """Create, find by every identity, change, audit and erase Ann, checking every answer."""
    token = create_ann(api)

    lookups = [
        ("token", token),
        ("email", ANN["email"]),
        ("email", ANN["email"].lower()),
        ("phone", ANN["phone"]),
        ("phone", "+447700900123"),
        ("login", ANN["login"]),
    ]
    for mode, identity in lookups:
        body = get_user(api, mode, identity)
        assert body["token"] == token, (mode, identity)
        assert body["data"] == ANN, (mode, identity)

    response = api.put(user_path("token", token), json={"city": CITY})
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "token": token}
    assert get_user(api, "token", token)["data"] == {**ANN, "city": CITY}
    assert get_user(api, "login", ANN["login"])["data"] == {**ANN, "city": CITY}

    response = api.get(f"/v1/audit/list/{token}", params={"limit": 100})
    assert response.status_code == 200, response.text
    audit = response.json()
    assert audit["status"] == "ok"
    assert audit["total"] == len(audit["rows"]) >= len(lookups) + 3
    assert {row["record"] for row in audit["rows"]} == {token}
    titles = {row["title"] for row in audit["rows"]}
    assert {
        "create user record",
        "get user record by token",
        "get user record by email",
        "get user record by phone",
        "get user record by login",
        "change user record by token",
    } <= titles, titles

    response = api.delete(user_path("token", token))
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "result": "done"}

    after = get_user(api, "token", token)
    assert after["data"] == {}
    response = api.get(user_path("email", ANN["email"]))
    assert response.status_code == 404, response.text
    assert response.json()["status"] == "error"


def spellings(values: list[str]) -> set[str]:
    return {variant for value in values for variant in (value, value.lower(), value.upper())}


# --- 1. init --------------------------------------------------------------------------------


def test_init_prints_the_secrets_once_and_refuses_to_initialise_again(
    databases: Databases, workdir: Path
) -> None:
    database = databases.new()

    first = run_cli(["init", "--db", database.url], cwd=workdir)

    assert first.returncode == 0, first.stderr
    keys = printed(first.stdout + first.stderr, "DATABUNKER_MASTERKEY")
    tokens = printed(first.stdout + first.stderr, "DATABUNKER_ROOTTOKEN")
    assert len(keys) == 1, first.stdout
    assert MASTER_KEY_LINE.fullmatch(keys[0]), keys
    assert len(tokens) == 1, first.stdout
    token = tokens[0].removeprefix("DATABUNKER_ROOTTOKEN=")
    assert UUID_TEXT.fullmatch(token), tokens
    assert tokens[0] == f"DATABUNKER_ROOTTOKEN={uuid.UUID(token)}"

    second = run_cli(["init", "--db", database.url], cwd=workdir)

    assert second.returncode != 0
    assert "already initialised" in second.stderr
    output = second.stdout + second.stderr
    assert printed(output, "DATABUNKER_MASTERKEY") == []
    assert printed(output, "DATABUNKER_ROOTTOKEN") == []


def test_init_takes_the_root_token_from_the_environment(
    databases: Databases, workdir: Path
) -> None:
    database = databases.new()
    chosen = str(uuid.uuid4())

    result = run_cli(["init", "--db", database.url], {"DATABUNKER_ROOTTOKEN": chosen}, cwd=workdir)

    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert chosen not in output
    assert printed(output, "DATABUNKER_ROOTTOKEN") == []
    keys = printed(output, "DATABUNKER_MASTERKEY")
    assert len(keys) == 1
    assert MASTER_KEY_LINE.fullmatch(keys[0]), keys
    vault = InitialisedVault(database, keys[0].removeprefix("DATABUNKER_MASTERKEY="), chosen)

    with vault.serve(workdir) as server:
        with client(server, chosen) as root:
            assert root.get("/v1/sys/configuration").status_code == 200
            create_ann(root)
        with client(server, str(uuid.uuid4())) as stranger:
            response = stranger.get("/v1/sys/configuration")
            assert response.status_code == 403, response.text


@pytest.mark.parametrize("token", ["not-a-uuid", "11111111-2222-4333-8444-55555555555"])
def test_init_refuses_a_malformed_root_token(
    databases: Databases, workdir: Path, token: str
) -> None:
    database = databases.new()

    result = run_cli(["init", "--db", database.url], {"DATABUNKER_ROOTTOKEN": token}, cwd=workdir)

    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert printed(output, "DATABUNKER_MASTERKEY") == []
    assert printed(output, "DATABUNKER_ROOTTOKEN") == []
    # The refusal leaves the database as it was: a proper init still works.
    initialise(database, workdir)


# --- 2. serve refuses -----------------------------------------------------------------------


def test_serve_refuses_without_a_master_key(shared_vault: InitialisedVault, workdir: Path) -> None:
    result = run_cli(serve_args(shared_vault.database), cwd=workdir)

    assert result.returncode != 0
    assert "DATABUNKER_MASTERKEY" in result.stderr


def test_serve_refuses_a_master_key_that_is_not_the_databases(
    shared_vault: InitialisedVault, workdir: Path
) -> None:
    result = run_cli(
        serve_args(shared_vault.database), {"DATABUNKER_MASTERKEY": random_key()}, cwd=workdir
    )

    assert result.returncode != 0
    assert "does not match" in result.stderr


@pytest.mark.parametrize(
    "key",
    [
        "zz" * 32,  # right length, not hexadecimal
        "abcdef",  # too short
        "ab" * 33,  # too long
    ],
)
def test_serve_refuses_a_malformed_master_key(
    shared_vault: InitialisedVault, workdir: Path, key: str
) -> None:
    result = run_cli(serve_args(shared_vault.database), {"DATABUNKER_MASTERKEY": key}, cwd=workdir)

    assert result.returncode != 0
    assert "DATABUNKER_MASTERKEY" in result.stderr
    assert key not in result.stdout + result.stderr


def test_serve_refuses_an_uninitialised_database(databases: Databases, workdir: Path) -> None:
    result = run_cli(
        serve_args(databases.new()), {"DATABUNKER_MASTERKEY": random_key()}, cwd=workdir
    )

    assert result.returncode != 0
    assert "not initialised" in result.stderr


def test_serve_refuses_a_config_file_with_an_unknown_key(
    shared_vault: InitialisedVault, workdir: Path, tmp_path: Path
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("server:\n  port: 3000\ngeneric:\n  no_such_option: true\n")

    result = run_cli(
        [*serve_args(shared_vault.database), "--config", str(config)],
        {"DATABUNKER_MASTERKEY": shared_vault.master_key},
        cwd=workdir,
    )

    assert result.returncode != 0
    assert "generic.no_such_option" in result.stderr


# --- 3. the flow over HTTP ------------------------------------------------------------------


def test_user_flow_over_http(fresh_vault: InitialisedVault, workdir: Path) -> None:
    with fresh_vault.serve(workdir) as server, client(server, fresh_vault.root_token) as api:
        exercise_user_flow(api)


def test_records_survive_a_restart_and_another_key_is_refused(
    fresh_vault: InitialisedVault, workdir: Path
) -> None:
    with fresh_vault.serve(workdir) as server, client(server, fresh_vault.root_token) as api:
        token = create_ann(api)

    with fresh_vault.serve(workdir) as server, client(server, fresh_vault.root_token) as api:
        assert get_user(api, "token", token)["data"] == ANN
        assert get_user(api, "email", ANN["email"])["token"] == token

    refused = run_cli(
        serve_args(fresh_vault.database), {"DATABUNKER_MASTERKEY": random_key()}, cwd=workdir
    )
    assert refused.returncode != 0
    assert "does not match" in refused.stderr


# --- 4. no personal data at rest ------------------------------------------------------------


def test_personal_data_is_not_stored_in_clear(fresh_vault: InitialisedVault, workdir: Path) -> None:
    with fresh_vault.serve(workdir) as server, client(server, fresh_vault.root_token) as api:
        token = create_ann(api)
        response = api.put(user_path("token", token), json={"city": CITY})
        assert response.status_code == 200, response.text
        assert get_user(api, "email", ANN["email"])["data"] == {**ANN, "city": CITY}
    assert server.returncode in CLEAN_EXIT, server.stderr

    stored = fresh_vault.database.raw_bytes()

    # The search works: a value known to be stored as it is is found in the same bytes.
    assert token.encode() in stored
    found = sorted(s for s in spellings(ANN_PII) if s.encode("utf-8") in stored)
    assert found == []


# --- 5. demo --------------------------------------------------------------------------------


def test_demo_serves_with_the_demo_token(workdir: Path) -> None:
    person = {"email": "demo.person@example.org", "name": "Demo Person"}

    with ServerProcess(["demo"], cwd=workdir) as server:
        with client(server, "DEMO") as api:
            status = api.get("/v1/status")
            assert status.status_code == 200
            assert status.json()["status"] == "ok"
            response = api.post("/v1/user", json=person)
            assert response.status_code == 200, response.text
            token = response.json()["token"]
            assert get_user(api, "token", token)["data"] == person
        with client(server, None) as anonymous:
            response = anonymous.get(user_path("token", token))
            assert response.status_code == 403, response.text
            assert response.json()["status"] == "error"
            assert anonymous.post("/v1/user", json=person).status_code == 403
        assert "demo mode" in server.stderr.lower()


def test_demo_deletes_its_database_when_stopped(workdir: Path) -> None:
    scratch = workdir / "scratch"
    scratch.mkdir()

    with ServerProcess(["demo"], {"TMPDIR": str(scratch)}, cwd=workdir) as server:
        with client(server, "DEMO") as api:
            assert api.post("/v1/user", json={"email": "gone@example.org"}).status_code == 200
        assert [p.name for p in scratch.iterdir() if p.name.startswith("databunker-demo-")]

    assert server.returncode == 0
    assert list(scratch.iterdir()) == []


# --- 6. no personal data in the logs ---------------------------------------------------------


def test_logs_carry_routes_but_no_personal_data(
    fresh_vault: InitialisedVault, workdir: Path
) -> None:
    with fresh_vault.serve(workdir) as server, client(server, fresh_vault.root_token) as api:
        exercise_user_flow(api)
    log = server.stderr

    leaked = sorted(s for s in spellings(ANN_PII) if s in log)
    assert leaked == []
    assert fresh_vault.root_token not in log
    assert fresh_vault.master_key.lower() not in log.lower()

    assert server.returncode in CLEAN_EXIT, log
    # Structured: every line is one JSON object.
    entries = [json.loads(line) for line in log.splitlines() if line.strip()]
    assert all(isinstance(entry, dict) for entry in entries)
    routes = {entry.get("route") for entry in entries}
    assert {"/v1/user", USER_ROUTE, "/v1/audit/list/{token}"} <= routes, routes
    user_requests = [e for e in entries if e.get("route") == USER_ROUTE]
    assert {e.get("method") for e in user_requests} == {"GET", "PUT", "DELETE"}
    assert {200, 404} <= {e.get("status") for e in user_requests}
