"""A group-commit batch on SQLite links its events in memory and writes its lane's head
once, before it commits; whatever part of the batch rolls back, the chain stays whole.

The batches run on every database (elsewhere each unit is a transaction of its own, and the
outcome must be the same); the count of head writes is SQLite's."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from databunker.config import Settings
from databunker.crypto import Keyring, MasterKey
from databunker.services.audit import save_event
from databunker.services.context import AuditEvent, Context
from databunker.services.system import initialise
from databunker.storage import Database
from databunker.storage import repositories as repo
from databunker.storage.audit_chain import current_anchor
from databunker.storage.audit_chain import verify as verify_chain
from support.audit_chain import Verifier, chained, intact, value, verify
from support.vaults import MASTER_KEY_HEX, ROOT_TOKEN, Clock, client_for, create_user

__all__ = ["verify"]  # the fixture

Unit = Callable[[sa.Connection], None]


def event(vault: Context, title: str, *, fails: bool = False) -> Unit:
    def run(conn: sa.Connection) -> None:
        save_event(conn, AuditEvent(title=title), vault.clock())
        if fails:
            raise RuntimeError("the unit fails after its event was written")

    return run


def in_one_batch(vault: Context, *units: Unit) -> list[object]:
    """The units submitted in one turn of the event loop (one transaction on SQLite)."""

    async def batch() -> list[object]:
        run: Any = vault.database.run_async
        return await asyncio.gather(*(run(unit) for unit in units), return_exceptions=True)

    return asyncio.run(batch())


def titles(vault: Context) -> list[str]:
    return sorted(
        value(vault, "SELECT title FROM audit WHERE atoken = :a", a=atoken)
        for atoken in chained(vault)
    )


@pytest.mark.parametrize(
    "fails",
    [
        pytest.param({2}, id="the last unit"),
        pytest.param({0}, id="the first unit"),
        pytest.param({1, 3}, id="two in the middle"),
        pytest.param({0, 1, 2}, id="every unit"),
    ],
)
def test_units_rolled_back_anywhere_in_a_batch_leave_an_intact_chain(
    verify: Verifier, vault: Context, fails: set[int]
) -> None:
    count = 4 if 3 in fails else 3
    names = [f"event {n}" for n in range(count)]
    outcomes = in_one_batch(
        vault, *(event(vault, name, fails=n in fails) for n, name in enumerate(names))
    )
    assert [isinstance(o, RuntimeError) for o in outcomes] == [n in fails for n in range(count)]
    kept = [name for n, name in enumerate(names) if n not in fails]
    assert titles(vault) == kept
    intact(verify(), len(kept))
    # The next writer finds the head where the batch left it.
    in_one_batch(vault, event(vault, "after"), event(vault, "after, too"))
    assert titles(vault) == sorted([*kept, "after", "after, too"])
    intact(verify(), len(kept) + 2)


def test_a_retention_purge_in_the_middle_of_a_batch_keeps_the_chain_verifiable(
    verify: Verifier, vault: Context
) -> None:
    in_one_batch(vault, event(vault, "old 1"), event(vault, "old 2"))
    vault.clock.advance(3600)  # type: ignore[attr-defined]
    cutoff = vault.clock() - 60

    def purge(conn: sa.Connection) -> None:
        assert repo.purge_audit_before(conn, cutoff) == 2

    in_one_batch(vault, event(vault, "new 1"), purge, event(vault, "new 2"))
    assert titles(vault) == ["new 1", "new 2"]
    intact(verify(), 2)
    with client_for(vault) as api:
        create_user(api, {"email": "after-purge@example.com"})
    intact(verify(), 3)


@pytest.fixture
def sqlite_vault(tmp_path: Path) -> Iterator[tuple[Context, list[str]]]:
    """A vault on SQLite, and every statement its connections run."""
    database = Database(f"sqlite:///{tmp_path}/vault.db")
    statements: list[str] = []

    @sa.event.listens_for(database.engine, "connect")
    def _trace(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.set_trace_callback(statements.append)

    keyring = Keyring(MasterKey.from_hex(MASTER_KEY_HEX))
    clock = Clock()
    initialise(database, keyring, ROOT_TOKEN, clock())
    yield Context(Settings(), database, keyring, clock, None), statements
    database.dispose()


def test_a_batch_on_sqlite_reads_its_lane_head_once_and_writes_it_once_before_commit(
    sqlite_vault: tuple[Context, list[str]],
) -> None:
    vault, statements = sqlite_vault
    in_one_batch(vault, event(vault, "warm up"))  # the connection learns its lane's head
    statements.clear()
    in_one_batch(vault, *(event(vault, f"event {n}") for n in range(6)))
    assert sum(s.startswith("UPDATE audit_chain") for s in statements) == 1  # was 6
    assert sum(s.startswith("SELECT audit_chain.lane") for s in statements) == 1
    assert sum(s.startswith("INSERT INTO audit ") for s in statements) == 6
    with vault.database.transaction() as conn:
        position = conn.execute(sa.text("SELECT position FROM audit_chain WHERE lane = 0"))
        newest = conn.execute(sa.text("SELECT max(chain_pos) FROM audit WHERE chain_lane = 0"))
        assert position.scalar_one() == newest.scalar_one() == 7
    found = verify_chain(vault.database, vault.keyring.audit_chain_key())
    assert found.intact
    assert found.events == 7


def test_a_single_event_batch_on_sqlite_writes_its_head_once(
    sqlite_vault: tuple[Context, list[str]],
) -> None:
    vault, statements = sqlite_vault
    in_one_batch(vault, event(vault, "warm up"))
    statements.clear()
    in_one_batch(vault, event(vault, "alone"))
    assert sum(s.startswith("UPDATE audit_chain") for s in statements) == 1


def test_the_audit_head_read_in_a_batch_on_sqlite_counts_the_events_linked_before_it(
    sqlite_vault: tuple[Context, list[str]],
) -> None:
    vault, _statements = sqlite_vault
    seen: list[int] = []

    def read_head(conn: sa.Connection) -> None:
        seen.append(current_anchor(conn).count)

    in_one_batch(vault, event(vault, "one"), event(vault, "two"), read_head, event(vault, "3"))
    assert seen == [2]
