"""Rotation and rekey while a server runs under a write and read load: no request fails,
every record written before, during and after stays readable, the server starts wrapping
with the new version without a restart, and after a rekey the old master key is refused."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from starlette.testclient import TestClient

from databunker.crypto import DataKey, Keyring, MasterKey
from databunker.crypto.providers import EnvironmentKeyProvider
from databunker.services import keys
from databunker.services.context import Context
from databunker.services.system import VaultStateError, open_vault
from databunker.storage import Database
from databunker.storage import repositories as user_rows
from support.vaults import MASTER_KEY_HEX, VaultFactory, client_for

PEOPLE_BEFORE = 120
BATCH = 25
LOAD_THREADS = 3


def wall_clock() -> int:
    return int(time.time())


@dataclass
class Load:
    """Threads that create people and read them back until stopped."""

    client: TestClient
    failures: list[str] = field(default_factory=list)
    written: dict[str, str] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _run(self, worker: int) -> None:
        number = 0
        while not self._stop.is_set():
            number += 1
            email = f"load{worker}-{number}@example.com"
            created = self.client.post("/v1/user", json={"email": email})
            if created.status_code != 200:
                self.failures.append(f"create: {created.status_code} {created.text}")
                continue
            token = created.json()["token"]
            with self._lock:
                self.written[token] = email
                tokens = list(self.written)[-20:]
            for other in tokens[::5]:
                read = self.client.get(f"/v1/user/token/{other}")
                if read.status_code != 200:
                    self.failures.append(f"read: {read.status_code} {read.text}")
            session = self.client.post(f"/v1/session/{_session(token)}", json={"n": number})
            if session.status_code != 200:
                self.failures.append(f"session: {session.status_code} {session.text}")

    def __enter__(self) -> Load:
        for worker in range(LOAD_THREADS):
            thread = threading.Thread(target=self._run, args=(worker,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


def _session(token: str) -> str:
    return token[:-4] + "5e55"


@pytest.fixture
def served(make_vault: VaultFactory) -> Iterator[tuple[Context, TestClient, dict[str, str]]]:
    vault = make_vault()
    with client_for(vault) as client:
        before = {}
        for number in range(PEOPLE_BEFORE):
            email = f"before{number}@example.com"
            answer = client.post("/v1/user", json={"email": email})
            assert answer.status_code == 200, answer.text
            before[answer.json()["token"]] = email
        yield vault, client, before


def _operator_keyring(database: Database, master: MasterKey) -> Keyring:
    """The keyring of another process (the ``keys`` command) on the same database."""
    keyring = Keyring(master)
    keys.unlock(database, keyring, master, wall_clock())
    return keyring


def _all_readable(client: TestClient, people: dict[str, str]) -> None:
    for token, email in people.items():
        answer = client.get(f"/v1/user/token/{token}")
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"]["email"] == email


def test_rotate_and_retire_under_load(
    served: tuple[Context, TestClient, dict[str, str]], database_url: str
) -> None:
    vault, client, before = served
    database = Database(database_url)
    try:
        operator = _operator_keyring(database, MasterKey.from_hex(MASTER_KEY_HEX))
        seen: list[tuple[int, int]] = []
        with Load(client) as load:
            version = keys.rotate(
                database, operator, wall_clock, batch=BATCH, progress=lambda *p: seen.append(p)
            )
            time.sleep(keys.REFRESH_SECONDS + 1)  # the server has picked the new version up
            during = dict(load.written)
        # Whatever the load wrote before the server moved to version 2 is rewrapped now.
        keys.rewrap(database, operator, wall_clock, batch=BATCH)
        destroyed = keys.retire(database, operator, wall_clock)

        assert load.failures == []
        assert len(during) > 0
        assert version == 2
        assert destroyed == [1]
        assert seen[-1][0] == seen[-1][1]
        assert vault.keyring.key_id == 2  # the running server, without a restart
        found = keys.status(database)
        assert [(v.version, v.current) for v in found.versions] == [(2, True)]
        assert found.versions[0].wrapped_keys == len(before) + 2 * len(load.written)
        _all_readable(client, {**before, **load.written})
        after = client.post("/v1/user", json={"email": "after@example.com"})
        _all_readable(client, {after.json()["token"]: "after@example.com"})
        for token in load.written:
            assert client.get(f"/v1/session/{_session(token)}").status_code == 200
    finally:
        database.dispose()


def test_api_rotation_reports_progress_to_root(
    served: tuple[Context, TestClient, dict[str, str]],
) -> None:
    _vault, client, before = served
    started = client.post("/v1/sys/keys/rotate")
    assert started.status_code == 200, started.text
    assert started.json()["rotation_started"] is True
    assert client.post("/v1/sys/keys/rotate").status_code == 409

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = client.get("/v1/sys/keys").json()
        if state["rotation"] and state["rotation"]["state"] == "done":
            break
        time.sleep(0.2)
    assert state["current"] == 2
    assert state["provider"].startswith("environment")
    assert {v["version"]: v["wrapped_keys"] for v in state["versions"]} == {
        1: 0,
        2: len(before),
    }
    assert client.get("/v1/sys/keys", headers={"X-Bunker-Token": "nobody"}).status_code in (
        401,
        403,
    )
    _all_readable(client, before)


def test_rekey_under_load_refuses_the_old_master_key_afterwards(
    served: tuple[Context, TestClient, dict[str, str]], database_url: str
) -> None:
    _vault, client, before = served
    database = Database(database_url)
    try:
        old = MasterKey.from_hex(MASTER_KEY_HEX)
        operator = _operator_keyring(database, old)
        new = MasterKey.generate()
        with Load(client) as load:
            time.sleep(0.5)
            protected = keys.rekey(database, operator, new, EnvironmentKeyProvider(), wall_clock)
            time.sleep(keys.REFRESH_SECONDS + 1)
        assert load.failures == []
        assert protected.printed == [f"DATABUNKER_MASTERKEY={new.hex()}"]
        # The running server goes on; every record reads back.
        _all_readable(client, {**before, **load.written})

        with pytest.raises(VaultStateError, match="master key does not match"):
            open_vault(database, Keyring(old))
        reopened = Keyring(new)
        open_vault(database, reopened)
        assert reopened.blind_index("email", "x@example.com") == operator.blind_index(
            "email", "x@example.com"
        )
    finally:
        database.dispose()


class Interrupted(Exception):
    pass


def test_an_interrupted_rotation_resumes_with_the_same_version(
    served: tuple[Context, TestClient, dict[str, str]],
) -> None:
    vault, client, before = served
    keyring = vault.keyring
    calls = 0

    def interrupt_after_first_batch(_done: int, _total: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        keys.rotate(
            vault.database,
            keyring,
            wall_clock,
            settle=0,
            batch=BATCH,
            progress=interrupt_after_first_batch,
        )
    halfway = {v.version: v.wrapped_keys for v in keys.status(vault.database).versions}
    assert halfway == {1: len(before) - BATCH, 2: BATCH}
    assert keys.status(vault.database).rotation.state == "rewrapping"  # type: ignore[union-attr]
    _all_readable(client, before)

    assert keys.rotate(vault.database, keyring, wall_clock, settle=0, batch=BATCH) == 2

    found = keys.status(vault.database)
    assert {v.version: v.wrapped_keys for v in found.versions} == {1: 0, 2: len(before)}
    assert found.rotation is not None
    assert found.rotation.state == "done"
    _all_readable(client, before)


def test_after_a_rekey_a_server_holding_the_old_key_follows_a_rotation_and_a_retire(
    served: tuple[Context, TestClient, dict[str, str]], database_url: str
) -> None:
    """The rekey reseals the keyring key only: the running server, whose master key is
    refused from then on, still learns the rotation's new KEK and wraps with it."""
    vault, client, before = served
    database = Database(database_url)
    try:
        old, new = MasterKey.from_hex(MASTER_KEY_HEX), MasterKey.generate()
        keys.rekey(
            database, _operator_keyring(database, old), new, EnvironmentKeyProvider(), wall_clock
        )
        operator = _operator_keyring(database, new)
        with Load(client) as load:
            time.sleep(0.5)
            version = keys.rotate(database, operator, wall_clock, batch=BATCH)
            time.sleep(keys.REFRESH_SECONDS + 1)
        keys.rewrap(database, operator, wall_clock, batch=BATCH)
        destroyed = keys.retire(database, operator, wall_clock)
        time.sleep(keys.REFRESH_SECONDS + 1)

        assert load.failures == []
        assert (version, destroyed) == (2, [1])
        assert vault.keyring.key_id == 2  # the server still holding the old master key
        assert vault.keyring.master.hex() == old.hex()
        _all_readable(client, {**before, **load.written})
        after = client.post("/v1/user", json={"email": "after-rekey@example.com"})
        assert after.status_code == 200, after.text
        _all_readable(client, {after.json()["token"]: "after-rekey@example.com"})
        found = keys.status(database)
        assert [(v.version, v.wrapped_keys) for v in found.versions] == [
            (2, len(before) + 2 * len(load.written) + 1)
        ]
        with pytest.raises(VaultStateError, match="master key does not match"):
            open_vault(database, Keyring(old))
    finally:
        database.dispose()


def test_a_server_that_missed_a_retire_wraps_new_data_keys_with_the_current_version(
    served: tuple[Context, TestClient, dict[str, str]], database_url: str
) -> None:
    vault, client, before = served
    database = Database(database_url)
    try:
        missed = vault.keyring.keys  # what a server that has not reloaded yet holds
        operator = _operator_keyring(database, MasterKey.from_hex(MASTER_KEY_HEX))
        keys.rotate(database, operator, wall_clock, settle=0, batch=BATCH)
        assert keys.retire(database, operator, wall_clock) == [1]
        vault.keyring.load(vault.keyring.master, missed)  # still wraps with version 1
        assert vault.keyring.key_id == 1

        created = client.post("/v1/user", json={"email": "late@example.com"})

        assert created.status_code == 200, created.text
        assert vault.keyring.key_id == 2  # it found version 1 gone and reloaded
        found = keys.status(database)
        assert [(v.version, v.wrapped_keys) for v in found.versions] == [(2, len(before) + 1)]
        _all_readable(client, {created.json()["token"]: "late@example.com"})
    finally:
        database.dispose()


def test_a_retire_waits_for_a_data_key_being_wrapped_with_the_version_and_keeps_it(
    make_vault: VaultFactory, database_url: str
) -> None:
    """A transaction that holds KEK version 1 to wrap a data key, still open while the
    version is retired: the retire counts the key once it is committed, and keeps the
    version instead of destroying the only key that opens it."""
    make_vault()
    database = Database(database_url)
    try:
        master = MasterKey.from_hex(MASTER_KEY_HEX)
        stale = _operator_keyring(database, master)  # version 1 current
        operator = _operator_keyring(database, master)
        keys.rotate(database, operator, wall_clock, settle=0)
        holding, release = threading.Event(), threading.Event()

        def wrap_under_the_old_version() -> None:
            with database.transaction() as conn:
                keys.hold_current_kek(conn, stale)
                token = "6c1f5a2e-4b7d-4e8a-9f00-1a2b3c4d5e6f"
                user_rows.insert_user(
                    conn,
                    token=token,
                    data_key=stale.wrap(DataKey.generate(), token),
                    profile=b"",
                    indexes={},
                    now=wall_clock(),
                )
                holding.set()
                release.wait(10)

        writer = threading.Thread(target=wrap_under_the_old_version)
        writer.start()
        assert holding.wait(10)
        threading.Timer(0.5, release.set).start()
        destroyed = keys.retire(database, operator, wall_clock)
        writer.join(10)

        assert destroyed == []
        found = keys.status(database)
        assert [(v.version, v.wrapped_keys) for v in found.versions] == [(1, 1), (2, 0)]
        # Once rewrapped, the version wraps nothing any more and goes.
        keys.rewrap(database, operator, wall_clock)
        assert keys.retire(database, operator, wall_clock) == [1]
    finally:
        database.dispose()
