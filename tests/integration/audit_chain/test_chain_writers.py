"""The chain's order with many writers at once, rolled-back units, databases written before
the chain existed, and the progress display of ``audit verify``."""

from __future__ import annotations

import asyncio
import io
import sys
import threading
import uuid
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from databunker import cli
from databunker.config import Settings
from databunker.crypto import Keyring, MasterKey
from databunker.jobs import run_jobs
from databunker.services import system
from databunker.services.audit import save_event
from databunker.services.context import AuditEvent, Context
from databunker.services.system import initialise, open_vault
from databunker.storage import Database, migrations
from databunker.storage import repositories as repo
from databunker.storage.audit_chain import LANE_LOCK_PREFIX, LANE_LOCK_SPACE, AuditChainError
from databunker.storage.audit_chain import verify as verify_chain
from support.audit_chain import Verifier, broken_at, chained, intact, value, verify
from support.mariadb import TemporaryMariaDB
from support.postgres import TemporaryPostgres
from support.vaults import MASTER_KEY_HEX, ROOT_TOKEN, Clock, VaultFactory, client_for, create_user

__all__ = ["verify"]  # the fixture

WRITERS = 6
REQUESTS_EACH = 12


def test_writers_on_two_servers_at_once_keep_one_intact_chain(
    verify: Verifier, make_vault: VaultFactory
) -> None:
    # Two vaults, each with its own engine and pool, on one database: two servers.
    servers = [make_vault(), make_vault()]
    with client_for(servers[0]) as api:
        people = [create_user(api, {"login": f"p{n}"}) for n in range(WRITERS)]
    errors: list[BaseException] = []
    start = threading.Barrier(WRITERS)

    def writer(number: int) -> None:
        try:
            with client_for(servers[number % 2]) as api:
                start.wait()
                for step in range(REQUESTS_EACH):
                    token = people[(number + step) % WRITERS]
                    if step % 3 == 0:
                        answer = api.put(f"/v1/user/token/{token}", json={"n": step})
                    else:
                        answer = api.get(f"/v1/user/token/{token}")
                    assert answer.status_code == 200, answer.text
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    events = WRITERS + WRITERS * REQUESTS_EACH
    assert len(chained(servers[1])) == events
    intact(verify(), events)


def test_a_unit_rolled_back_leaves_no_gap_in_the_chain(verify: Verifier, vault: Context) -> None:
    # On SQLite the three units share one transaction (group commit), each under a
    # savepoint; the second rolls back after writing its event.
    def unit(title: str, fails: bool = False) -> object:
        def run(conn: sa.Connection) -> None:
            save_event(conn, AuditEvent(title=title), vault.clock())
            if fails:
                raise RuntimeError("the unit fails after its event was written")

        return run

    async def batch() -> list[object]:
        run = vault.database.run_async
        return await asyncio.gather(
            run(unit("first")),  # type: ignore[arg-type]
            run(unit("second", fails=True)),  # type: ignore[arg-type]
            run(unit("third")),  # type: ignore[arg-type]
            return_exceptions=True,
        )

    outcomes = asyncio.run(batch())
    assert outcomes[0] is None
    assert isinstance(outcomes[1], RuntimeError)
    assert outcomes[2] is None
    titles = [
        value(vault, "SELECT title FROM audit WHERE atoken = :a", a=a) for a in chained(vault)
    ]
    assert sorted(titles) == ["first", "third"]  # on PostgreSQL, the units ran at once
    intact(verify(), 2)
    with client_for(vault) as api:
        create_user(api, {"login": "ann"})
    intact(verify(), 3)


def test_writers_share_lanes_when_every_lane_is_claimed(
    postgres_server: TemporaryPostgres, clock: Clock
) -> None:
    # More connections than lanes (many servers): the connections that could claim no lane
    # take whichever lane no transaction holds at the moment.
    name = f"l_{uuid.uuid4().hex[:16]}"
    url = postgres_server.create_database(name)
    database = Database(url)
    keyring = Keyring(MasterKey.from_hex(MASTER_KEY_HEX))
    initialise(database, keyring, ROOT_TOKEN, clock())
    vault = Context(Settings(), database, keyring, clock)
    holder = psycopg.connect(url, autocommit=True)
    try:
        for lane in range(32):
            holder.execute("SELECT pg_advisory_lock(%s, %s)", (LANE_LOCK_SPACE, lane))
        with client_for(vault) as api:
            for number in range(5):
                create_user(api, {"login": f"p{number}"})
        holder.close()
        found = verify_chain(database, keyring.audit_chain_key())
        assert found.intact, found
        assert found.events == 5
    finally:
        holder.close()
        database.dispose()
        postgres_server.drop_database(name)


def test_a_database_opened_without_the_chain_key_writes_no_event(database_url: str) -> None:
    database = Database(database_url)
    try:
        initialise(database, Keyring(MasterKey.from_hex(MASTER_KEY_HEX)), ROOT_TOKEN, 1)
        row = repo.AuditRow(
            str(uuid.uuid4()), 1, None, None, None, None, None, "t", "ok", None, None, None, None
        )
        with pytest.raises(AuditChainError), database.transaction() as conn:
            repo.insert_audit(conn, row)
    finally:
        database.dispose()


# -- a database written by a release without the chain ---------------------------------------
OLD_EVENTS = 3


class _TokensBeforeTenants:
    """The access tokens as that release stored them: with no tenant."""

    @staticmethod
    def has_root_token(conn: sa.Connection) -> bool:
        found = conn.execute(sa.text("SELECT count(*) FROM access_tokens WHERE kind = 'root'"))
        return bool(found.scalar_one())

    @staticmethod
    def insert_access_token(
        conn: sa.Connection, *, token_hash: bytes, kind: str, user_token: str | None, now: int
    ) -> None:
        conn.execute(
            sa.text(
                "INSERT INTO access_tokens (token_hash, kind, user_token, created, expires) "
                "VALUES (:h, :k, :u, :c, 0)"
            ),
            {"h": token_hash, "k": kind, "u": user_token, "c": now},
        )


@pytest.fixture
def old_database(
    fresh_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> str:
    """A vault initialised by the release before the chain, with audit events it wrote."""
    with monkeypatch.context() as old_release:
        old_release.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:4])
        old_release.setattr(migrations, "LATEST_VERSION", 4)
        # Today's legal-basis rows have columns that schema lacks; that release's seeded
        # bases are not this test's subject.
        old_release.setattr(system, "seed_legal_bases", lambda _conn, _now: None)
        old_release.setattr(system, "access_token_rows", _TokensBeforeTenants)
        database = Database(fresh_database_url)
        try:
            initialise(database, Keyring(MasterKey.from_hex(MASTER_KEY_HEX)), ROOT_TOKEN, clock())
            with database.transaction() as conn:
                for number in range(OLD_EVENTS):
                    conn.execute(
                        sa.text(
                            "INSERT INTO audit (atoken, created, title, status) "
                            "VALUES (:a, :c, 'get user record by token', 'ok')"
                        ),
                        {"a": str(uuid.uuid4()), "c": clock() - 100 + number},
                    )
                assert migrations.schema_version(conn) == 4
        finally:
            database.dispose()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABUNKER_MASTERKEY", MASTER_KEY_HEX)
    return fresh_database_url


def upgraded_vault(url: str, clock: Clock, **sections: dict[str, object]) -> Context:
    database = Database(url)
    keyring = Keyring(MasterKey.from_hex(MASTER_KEY_HEX))
    open_vault(database, keyring)  # what `serve` does at start: the upgrade
    return Context(Settings.model_validate(sections), database, keyring, clock)


def test_events_from_before_the_chain_are_reported_and_the_chain_starts_after_them(
    old_database: str,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = Verifier(old_database, monkeypatch, capsys)
    outcome = run()
    intact(outcome, 0)
    assert outcome.stdout.splitlines()[1] == (
        f"{OLD_EVENTS} earlier events were written before the chain began: not linked"
    )
    vault = upgraded_vault(old_database, clock)
    try:
        with client_for(vault) as api:
            token = create_user(api, {"login": "ann"})
            assert api.get(f"/v1/user/token/{token}").status_code == 200
            assert api.get("/v1/sys/audit/head").json()["count"] == 2
        outcome = run()
        intact(outcome, 2)
        assert f"{OLD_EVENTS} earlier events" in outcome.stdout
        # An event slipped in beside the old ones is not one of them.
        forged = str(uuid.uuid4())
        with vault.database.transaction() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO audit (atoken, created, title, status) VALUES (:a, 1, 'x', 'ok')"
                ),
                {"a": forged},
            )
        assert broken_at(run(), forged) == "it was written outside the chain"
    finally:
        vault.database.dispose()


def test_retention_removes_events_from_before_the_chain_too(
    old_database: str,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    vault = upgraded_vault(old_database, clock, policy={"max_audit_retention_period": "1d"})
    try:
        with client_for(vault) as api:
            create_user(api, {"login": "ann"})
        clock.advance(2 * 86400)
        with client_for(vault) as api:
            create_user(api, {"login": "bob"})
        assert run_jobs(vault)["purge old audit events"] == OLD_EVENTS + 1
        outcome = Verifier(old_database, monkeypatch, capsys)()
        intact(outcome, 1)
        assert len(outcome.stdout.splitlines()) == 1  # nothing left from before the chain
    finally:
        vault.database.dispose()


# -- progress --------------------------------------------------------------------------------
class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_drawn_on_a_terminal(
    verify: Verifier, vault: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    with client_for(vault) as api:
        for number in range(3):
            create_user(api, {"login": f"p{number}"})
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    intact(verify(), 3)
    assert "\rverifying the audit chain: 3 / 3 events\n" in terminal.getvalue()


def test_progress_is_logged_for_a_large_chain_off_a_terminal(
    verify: Verifier, vault: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    with client_for(vault) as api:
        for number in range(3):
            create_user(api, {"login": f"p{number}"})
    monkeypatch.setattr(cli, "LARGE_CHAIN", 3)
    outcome = verify()
    intact(outcome, 3)
    assert "verified 3 of 3 events" in outcome.stderr.splitlines()


# -- the chain key -----------------------------------------------------------------------------
def test_the_chain_key_is_derived_from_the_master_key_alone() -> None:
    master = MasterKey.from_hex(MASTER_KEY_HEX)
    key = Keyring(master).audit_chain_key()
    assert len(key) == 32
    assert Keyring(MasterKey.from_hex(MASTER_KEY_HEX)).audit_chain_key() == key
    assert Keyring(MasterKey.generate()).audit_chain_key() != key
    others = {master.derive(label) for label in ("kek", "blind-index", "secret-hash", "key-check")}
    assert key not in others


def test_writers_share_lanes_when_every_lane_is_named_by_others_on_mariadb(
    mariadb_server: TemporaryMariaDB, clock: Clock
) -> None:
    # MariaDB's lanes are claimed by name (GET_LOCK): with every name held by another
    # session, connections take whichever lane no transaction holds, and the chain is whole.
    name = f"l_{uuid.uuid4().hex[:16]}"
    url = mariadb_server.create_database(name)
    database = Database(url)
    keyring = Keyring(MasterKey.from_hex(MASTER_KEY_HEX))
    initialise(database, keyring, ROOT_TOKEN, clock())
    vault = Context(Settings(), database, keyring, clock)
    holder = mariadb_server.connect(name)
    try:
        with holder.cursor() as cursor:
            for lane in range(32):
                cursor.execute("SELECT GET_LOCK(%s, 0)", (f"{LANE_LOCK_PREFIX}{lane}",))
                assert cursor.fetchone() == (1,)
        with client_for(vault) as api:
            for number in range(5):
                create_user(api, {"login": f"p{number}"})
        found = verify_chain(database, keyring.audit_chain_key())
        assert found.intact, found
        assert found.events == 5
    finally:
        holder.close()
        database.dispose()
        mariadb_server.drop_database(name)


def test_requests_one_after_another_are_linked_in_one_lane(vault: Context) -> None:
    """A quiet server's requests reuse the connection returned last, and with it its lane:
    the chain of one client's requests reads in order within one lane."""
    with client_for(vault) as api:
        for number in range(3):
            token = create_user(api, {"email": f"one-lane-{number}@example.com"})
            assert api.get(f"/v1/user/token/{token}").status_code == 200
    with vault.database.transaction() as conn:
        lanes = conn.execute(sa.text("SELECT DISTINCT chain_lane FROM audit")).scalars().all()
    assert len(lanes) == 1
