"""A vault written by the release before the keyring (schema version 3, every key derived
from the master key) upgrades in place when first opened: its keys become keyring
version 1, and every stored value stays readable.

``legacy_vault.json`` holds every row of such a vault, written by that release: six people
(profile, app record, consent), a consent of an identity with no record yet, a session.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from databunker.cli import main
from databunker.config import Settings
from databunker.crypto import DecryptionError, Keyring, MasterKey
from databunker.services import keys
from databunker.services.context import Context
from databunker.services.system import VaultStateError, initialise, open_vault
from databunker.storage import LATEST_VERSION, Database, migrate, schema_version
from support.vaults import Clock, client_for

LEGACY = json.loads((Path(__file__).parent / "legacy_vault.json").read_text())
LEGACY_SCHEMA = 3
SESSION = "7a1a0b4e-3c6f-4f6e-9a47-0a6a4b5a8c01"


def load_legacy(database: Database) -> None:
    """The legacy rows, as that release stored them, in a schema of its version."""
    migrate(database, target=LEGACY_SCHEMA)
    metadata = sa.MetaData()
    metadata.reflect(database.engine)
    with database.transaction() as conn:
        conn.execute(sa.text("DELETE FROM legal_bases"))
        conn.execute(sa.text("DELETE FROM meta"))
        for table in metadata.sorted_tables:
            rows = [_decoded(row) for row in LEGACY["tables"].get(table.name, [])]
            if rows:
                conn.execute(table.insert(), rows)
        if conn.dialect.name == "postgresql":  # serial columns continue after the copied ids
            for table, column in (("audit", "seq"), ("agreements", "id"), ("outbox", "id")):
                highest = f"SELECT COALESCE(MAX({column}), 0) + 1 FROM {table}"  # noqa: S608
                conn.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                        f"({highest}), false)"
                    )
                )


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    return {
        name: bytes.fromhex(value["hex"]) if isinstance(value, dict) else value
        for name, value in row.items()
    }


@pytest.fixture
def legacy_database(fresh_database_url: str) -> Iterator[Database]:
    database = Database(fresh_database_url)
    load_legacy(database)
    yield database
    database.dispose()


def test_legacy_database_upgrades_to_keyring_version_one(legacy_database: Database) -> None:
    master = MasterKey.from_hex(LEGACY["master_key"])
    keyring = Keyring(master)

    open_vault(legacy_database, keyring)

    with legacy_database.transaction() as conn:
        assert schema_version(conn) == LATEST_VERSION
    found = keys.status(legacy_database)
    assert found.current == 1
    # Six people and one session, each data key wrapped by version 1.
    assert [(v.version, v.current, v.wrapped_keys) for v in found.versions] == [(1, True, 7)]
    assert keyring.audit_chain_key() == master.derive("audit-chain")


def test_every_legacy_value_reads_back_after_the_upgrade(
    legacy_database: Database, clock: Clock
) -> None:
    keyring = Keyring(MasterKey.from_hex(LEGACY["master_key"]))
    open_vault(legacy_database, keyring)
    vault = Context(Settings.model_validate({}), legacy_database, keyring, clock)

    with client_for(vault, LEGACY["root_token"]) as client:
        for number, token in enumerate(LEGACY["people"]):
            person = client.get(f"/v1/user/token/{token}")
            assert person.status_code == 200, person.text
            assert person.json()["data"]["name"] == f"Legacy {number}"
            by_email = client.get(f"/v1/user/email/legacy{number}@example.com")
            assert by_email.json()["token"] == token
            app = client.get(f"/v1/userapp/token/{token}/shop")
            assert app.json()["data"] == {"basket": number}
            consent = client.get(f"/v1/agreement/marketing/token/{token}")
            assert consent.status_code == 200, consent.text
        session = client.get(f"/v1/session/{SESSION}")
        assert session.json()["data"] == {"cart": "abc"}
        # The consent given before its person had a record joins the record now.
        joined = client.post("/v1/user", json={"email": "nobody-yet@example.com"})
        listed = client.get(f"/v1/agreements/token/{joined.json()['token']}")
        assert [row["brief"] for row in listed.json()["rows"]] == ["marketing"], listed.text
        events = client.get(f"/v1/audit/list/{LEGACY['people'][0]}")
        assert events.status_code == 200
        assert events.json()["total"] > 0
        # And new writes go on working beside the old ones.
        created = client.post("/v1/user", json={"email": "after@example.com"})
        assert created.status_code == 200, created.text


def test_a_wrong_key_is_refused_and_upgrades_nothing(legacy_database: Database) -> None:
    with pytest.raises(VaultStateError, match="master key does not match"):
        open_vault(legacy_database, Keyring(MasterKey.generate()))

    with legacy_database.transaction() as conn:
        assert schema_version(conn) == LEGACY_SCHEMA


def test_a_second_server_opening_the_upgraded_vault_reads_the_same_keyring(
    legacy_database: Database,
) -> None:
    master = MasterKey.from_hex(LEGACY["master_key"])
    first, second = Keyring(master), Keyring(master)

    open_vault(legacy_database, first)
    open_vault(legacy_database, second)

    assert first.blind_index("email", "x@example.com") == second.blind_index(
        "email", "x@example.com"
    )
    assert keys.status(legacy_database).versions[0].wrapped_keys == 7


def test_keys_status_of_a_vault_not_opened_since_the_upgrade_needs_no_key(
    legacy_database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    url = legacy_database.url.render_as_string(hide_password=False)

    assert main(["keys", "status", "--db", url]) == 0

    printed = capsys.readouterr().out.splitlines()
    assert printed == [
        "master key provider: environment (DATABUNKER_MASTERKEY or DATABUNKER_MASTERKEY_FILE)",
        "current version: 1",
        "version 1 (current): wraps 7 data keys",
    ]


def test_a_keyring_sealed_directly_under_the_master_key_gets_a_keyring_key(
    fresh_database_url: str,
) -> None:
    """The keyring form of the release before the keyring key: every entry sealed under
    the master key. Opening it seals the entries under a new keyring key, keys unchanged."""
    database = Database(fresh_database_url)
    try:
        master = MasterKey.generate()
        made = Keyring(master)
        initialise(database, made, "00000000-0000-4000-8000-000000000001", 1_000)
        keys_before = made.keys
        with database.transaction() as conn:  # the earlier release's form
            conn.execute(sa.text("DELETE FROM keyring"))
            generation = conn.execute(
                sa.text("SELECT value FROM meta WHERE name = 'keyring_generation'")
            ).scalar_one()
            for name, raw in keys_before.entries().items():
                conn.execute(
                    sa.text("INSERT INTO keyring (name, sealed, created) VALUES (:n, :s, 1000)"),
                    {"n": name, "s": master.seal_entry(name, raw)},
                )

        reopened = Keyring(master)
        open_vault(database, reopened)

        assert reopened.keys.entries() == keys_before.entries()
        assert reopened.blind_index("email", "a@example.com") == made.blind_index(
            "email", "a@example.com"
        )
        with database.transaction() as conn:
            names = set(conn.execute(sa.text("SELECT name FROM keyring")).scalars())
            rows = conn.execute(sa.text("SELECT name, sealed FROM keyring")).all()
            sealed = {row[0]: row[1] for row in rows}
            after = conn.execute(
                sa.text("SELECT value FROM meta WHERE name = 'keyring_generation'")
            ).scalar_one()
        assert names == {*keys_before.entries(), "keyring-key"}
        assert master.open_entry("keyring-key", bytes(sealed["keyring-key"])) == (
            reopened.keys.wrapping
        )
        with pytest.raises(DecryptionError):  # no entry is sealed under the master key now
            master.open_entry("blind-index", bytes(sealed["blind-index"]))
        assert after == generation  # servers running need not reload: the keys are the same
        again = Keyring(master)
        open_vault(database, again)
        assert again.keys.wrapping == reopened.keys.wrapping
    finally:
        database.dispose()
