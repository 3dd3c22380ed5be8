"""The keyring's life: created at init, upgraded in place, unlocked, rotated and rekeyed.

State in the database (``meta``): ``key_check`` (tells the master key from any other),
``vault_id`` (names the vault, e.g. in the KMS encryption context), ``keyring_current`` (the
KEK version new data keys are wrapped by), ``keyring_generation`` (bumped on every change, so
running servers reload within ``REFRESH_SECONDS``), ``keyring_rotation`` (progress of the
last rotation, JSON), and the key provider's public values (``crypto.providers``).

Invariants:
- the master key seals the keyring key (entry ``keyring-key``) and nothing else; every other
  keyring row is sealed under the keyring key. A rekey reseals the keyring key and replaces
  the key check in one transaction, so the old master key is refused at start from then on,
  while servers already running go on reading the keyring (a later rotation's KEK too) with
  the keyring key they hold;
- a KEK version is destroyed only when no wrapped data key names it, counted in the
  transaction that deletes it, after its delete: every transaction that wraps a data key
  first holds the KEK's row (``hold_current_kek``), so none can add one under it unseen;
  a server that still wraps with a destroyed version finds its row gone, reloads the
  keyring and wraps with the current one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import sqlalchemy as sa

from databunker.crypto import (
    KEYRING_KEY_ENTRY,
    DecryptionError,
    Keyring,
    KeySet,
    MasterKey,
    kek_entry_name,
    kek_version_prefix,
    open_keyring_entry,
    seal_keyring_entry,
)
from databunker.crypto import providers as prov
from databunker.storage import Database
from databunker.storage import keyring as store
from databunker.storage import repositories as repo
from databunker.storage.dialects import hold_transaction_lock
from databunker.storage.login import hit

log = logging.getLogger("databunker.keys")

KEY_CHECK = "key_check"
VAULT_ID = "vault_id"
CURRENT = "keyring_current"
GENERATION = "keyring_generation"
ROTATION = "keyring_rotation"
PROVIDER_VALUES = (
    prov.PROVIDER,
    prov.SHAMIR_THRESHOLD,
    prov.SHAMIR_SHARES,
    prov.KMS_KEY,
    prov.KMS_CIPHERTEXT,
)

# Every server reads the generation this often, and reloads the keyring when it changed.
REFRESH_SECONDS = 2.0
# How long a rotation waits for every server to know a new KEK before it becomes current,
# and to stop wrapping with the old one before that is destroyed.
SETTLE_SECONDS = 2 * REFRESH_SECONDS + 1
REWRAP_BATCH = 200
UNSEAL_ATTEMPTS = 20
UNSEAL_WINDOW = 60


class KeyringError(Exception):
    """The keyring cannot be used as asked (wrong master key, nothing to retire, ...)."""


# -- creating, upgrading, unlocking ---------------------------------------------------------
def create_keyring(conn: sa.Connection, master: MasterKey, keys: KeySet, now: int) -> None:
    """Store a new vault's keyring sealed under ``master``, with its key check."""
    if repo.get_meta(conn, VAULT_ID) is None:
        repo.set_meta(conn, VAULT_ID, str(uuid.uuid4()))
    _seal_keyring_key(conn, master, keys.wrapping, now)
    _store(conn, keys, now)
    repo.set_meta(conn, KEY_CHECK, master.check_value())


def vault_id(conn: sa.Connection) -> str:
    """This vault's name; a vault made before it had one is given one now."""
    found = repo.get_meta(conn, VAULT_ID)
    if found is None:
        found = str(uuid.uuid4())
        repo.set_meta(conn, VAULT_ID, found)
    return found


def _seal_keyring_key(conn: sa.Connection, master: MasterKey, wrapping: bytes, now: int) -> None:
    sealed = master.seal_entry(KEYRING_KEY_ENTRY, wrapping)
    store.write_entries(conn, {KEYRING_KEY_ENTRY: sealed}, now)


def _store(conn: sa.Connection, keys: KeySet, now: int, *, bump: bool = True) -> None:
    """Store ``keys`` sealed under their keyring key (which must be stored already)."""
    sealed = {
        name: seal_keyring_entry(keys.wrapping, name, raw) for name, raw in keys.entries().items()
    }
    store.write_entries(conn, sealed, now)
    gone = set(store.read_entries(conn)) - set(sealed) - {KEYRING_KEY_ENTRY}
    if gone:
        store.delete_entries(conn, gone)
    repo.set_meta(conn, CURRENT, str(keys.current))
    if bump:
        _bump_generation(conn)


def _bump_generation(conn: sa.Connection) -> None:
    repo.set_meta(conn, GENERATION, str(_generation(conn) + 1))


def _generation(conn: sa.Connection) -> int:
    return int(repo.get_meta(conn, GENERATION) or 0)


def check_master_key(database: Database, master: MasterKey) -> bool:
    with database.transaction() as conn:
        stored = repo.get_meta(conn, KEY_CHECK)
    return stored is not None and master.matches(stored)


def unlock(database: Database, keyring: Keyring, master: MasterKey, now: int) -> int:
    """Load the stored keyring into ``keyring`` with ``master`` (checked first); a vault
    made before the keyring gets its derived keys stored as version 1 first. Returns the
    generation loaded."""
    with database.transaction() as conn:
        stored = repo.get_meta(conn, KEY_CHECK)
        if stored is None or not master.matches(stored):
            raise KeyringError("the master key does not match this database")
        if KEYRING_KEY_ENTRY not in store.read_entries(conn):
            hold_transaction_lock(conn, 0x4B455953)  # servers upgrading at once: one does it
            _upgrade(conn, master, now)
        generation = _generation(conn)
        keys = _read_keys(conn, master)
    keyring.load(master, keys)
    return generation


def _upgrade(conn: sa.Connection, master: MasterKey, now: int) -> None:
    """Bring a keyring stored by an earlier release to today's form: a vault with no keyring
    gets its derived keys as version 1; a keyring whose entries the master key sealed
    directly gets a keyring key, and its entries are sealed again under it. Either way every
    key keeps its value, so every stored value stays readable."""
    entries = store.read_entries(conn)
    if KEYRING_KEY_ENTRY in entries:
        return  # another server upgraded it first
    current = int(repo.get_meta(conn, CURRENT) or 1)
    if not entries:
        vault_id(conn)
        keys = KeySet.derived(master)
        log.info("keyring created from the derived keys", extra={"event": "upgrade"})
    else:
        try:
            opened = {name: master.open_entry(name, sealed) for name, sealed in entries.items()}
            keys = KeySet.from_entries(opened, current, KeySet.generate().wrapping)
        except (DecryptionError, ValueError) as exc:
            raise KeyringError("the stored keyring cannot be opened with this master key") from exc
        log.info("keyring sealed under a keyring key", extra={"event": "upgrade"})
    _seal_keyring_key(conn, master, keys.wrapping, now)
    # The keys are the same: running servers need not reload (nor can one of an earlier
    # release read the new form), so the generation stays.
    _store(conn, keys, now, bump=not entries)


def _read_keys(conn: sa.Connection, master: MasterKey) -> KeySet:
    """The stored key set, its keyring key opened with ``master``."""
    sealed = store.read_entries(conn).get(KEYRING_KEY_ENTRY)
    try:
        if sealed is None:
            raise ValueError("no keyring key")
        wrapping = master.open_entry(KEYRING_KEY_ENTRY, sealed)
    except (DecryptionError, ValueError) as exc:
        raise KeyringError("the stored keyring cannot be opened with this master key") from exc
    return _read_keys_with(conn, wrapping)


def _read_keys_with(conn: sa.Connection, wrapping: bytes) -> KeySet:
    """The stored key set opened with the keyring key ``wrapping`` (no master key needed)."""
    entries = store.read_entries(conn)
    entries.pop(KEYRING_KEY_ENTRY, None)
    current = int(repo.get_meta(conn, CURRENT) or 1)
    try:
        opened = {
            name: open_keyring_entry(wrapping, name, sealed) for name, sealed in entries.items()
        }
        return KeySet.from_entries(opened, current, wrapping)
    except (DecryptionError, ValueError) as exc:
        raise KeyringError("the stored keyring cannot be opened with this keyring key") from exc


class KeyringWatcher:
    """Keeps one process's keyring as stored: ``refresh`` reloads it when its generation
    changed (a rotation, a retire, a rekey by another process)."""

    def __init__(self, database: Database, keyring: Keyring) -> None:
        self.database = database
        self.keyring = keyring
        self.generation = -1
        self._stale_master = False

    def loaded(self, generation: int) -> None:
        self.generation = generation
        self._stale_master = False

    def refresh(self) -> bool:
        """True when a new keyring was loaded."""
        if self.keyring.sealed:
            return False
        with self.database.transaction() as conn:
            generation = _generation(conn)
            if generation == self.generation:
                return False
            master = self.keyring.master
            stored = repo.get_meta(conn, KEY_CHECK) or ""
            if master.matches(stored):
                keys = _read_keys(conn, master)
            else:
                # Rekeyed elsewhere: the keyring key is the same, so this server reads the
                # keyring (a later rotation's KEK too) with the one it holds. Its master
                # key is refused at the next start: it must restart with the new secret.
                if not self._stale_master:
                    log.warning("the vault was rekeyed: restart this server with the new key")
                    self._stale_master = True
                keys = _read_keys_with(conn, self.keyring.keys.wrapping)
        self.keyring.load(master, keys)
        self.generation = generation
        return True


def hold_current_kek(conn: sa.Connection, keyring: Keyring) -> None:
    """Keep the KEK version ``keyring`` wraps new data keys with stored until this
    transaction ends; a keyring that missed a retire is reloaded from the database first."""
    for _attempt in range(3):
        if store.hold_entry(conn, kek_entry_name(keyring.key_id)):
            return
        log.info("a KEK version was retired: keyring reloaded", extra={"event": "reload"})
        keyring.load(keyring.master, _read_keys_with(conn, keyring.keys.wrapping))
    raise KeyringError("the keyring changed while a data key was being wrapped")


# -- provider ---------------------------------------------------------------------------------
def provider_values(database: Database) -> dict[str, str]:
    """The key provider's public values stored with the vault (``{}`` before init)."""
    with database.transaction() as conn:
        found = {name: repo.get_meta(conn, name) for name in PROVIDER_VALUES}
        found[VAULT_ID] = repo.get_meta(conn, VAULT_ID)
    return {name: value for name, value in found.items() if value is not None}


def store_provider(conn: sa.Connection, protected: prov.ProtectedKey) -> None:
    for name in PROVIDER_VALUES:
        value = protected.stored.get(name)
        if value is None:
            conn.execute(sa.text("DELETE FROM meta WHERE name = :name"), {"name": name})
        else:
            repo.set_meta(conn, name, value)


# -- status -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class KeyVersion:
    version: int
    current: bool
    wrapped_keys: int


@dataclass(frozen=True, slots=True)
class RotationProgress:
    version: int
    state: str  # "settling", "rewrapping", "done"
    rewrapped: int
    remaining: int
    started: int


@dataclass(frozen=True, slots=True)
class KeyringStatus:
    versions: list[KeyVersion]
    current: int
    provider: str
    rotation: RotationProgress | None
    generation: int


def status(database: Database) -> KeyringStatus:
    """The keyring's versions and what each wraps; no key is needed, none is shown."""
    with database.transaction() as conn:
        names = store.read_entries(conn)
        current = int(repo.get_meta(conn, CURRENT) or 1)
        counts = store.count_by_prefix(conn)
        rotation = _rotation(conn)
        generation = _generation(conn)
        values = {name: repo.get_meta(conn, name) or "" for name in PROVIDER_VALUES}
    versions = sorted(
        int(name.removeprefix("kek/")) for name in names if name.startswith("kek/")
    ) or [1]
    listed = [KeyVersion(v, v == current, counts.get(kek_version_prefix(v), 0)) for v in versions]
    if rotation is not None and rotation.state == "rewrapping":
        remaining = sum(item.wrapped_keys for item in listed if not item.current)
        rotation = RotationProgress(
            rotation.version, rotation.state, rotation.rewrapped, remaining, rotation.started
        )
    provider = prov.describe({k: v for k, v in values.items() if v})
    return KeyringStatus(listed, current, provider, rotation, generation)


def _rotation(conn: sa.Connection) -> RotationProgress | None:
    raw = repo.get_meta(conn, ROTATION)
    if raw is None:
        return None
    data = json.loads(raw)
    return RotationProgress(
        int(data["version"]),
        str(data["state"]),
        int(data.get("rewrapped", 0)),
        int(data.get("remaining", 0)),
        int(data.get("started", 0)),
    )


def _save_rotation(conn: sa.Connection, progress: RotationProgress) -> None:
    repo.set_meta(
        conn,
        ROTATION,
        json.dumps(
            {
                "version": progress.version,
                "state": progress.state,
                "rewrapped": progress.rewrapped,
                "remaining": progress.remaining,
                "started": progress.started,
            }
        ),
    )


# -- rotation ---------------------------------------------------------------------------------
Progress = Callable[[int, int], None]


def rotate(
    database: Database,
    keyring: Keyring,
    clock: Callable[[], int],
    *,
    settle: float = SETTLE_SECONDS,
    progress: Progress | None = None,
    sleep: Callable[[float], None] = time.sleep,
    batch: int = REWRAP_BATCH,
) -> int:
    """Rotate the KEK: add a version, let every server learn it, make it current, then
    rewrap every data key to it. Resumable: a rotation interrupted after the new version was
    added continues with it. Returns the current version."""
    with database.transaction() as conn:
        pending = _rotation(conn)
        keys = _read_keys_with(conn, keyring.keys.wrapping)
        if pending is not None and pending.state != "done" and pending.version in keys.keks:
            version = pending.version
        else:
            version = max(keys.keks) + 1
            keys = keys.with_new_kek(version, current=False)
            _store(conn, keys, clock())
            _save_rotation(conn, RotationProgress(version, "settling", 0, 0, clock()))
            pending = None
    if keys.current != version:
        sleep(settle)  # every server reloads and can unwrap the new version
        with database.transaction() as conn:
            keys = _read_keys_with(conn, keyring.keys.wrapping).with_current(version)
            repo.set_meta(conn, CURRENT, str(version))
            _bump_generation(conn)
            _save_rotation(conn, RotationProgress(version, "rewrapping", 0, 0, clock()))
    keyring.load(keyring.master, keys)
    rewrap(database, keyring, clock, progress=progress, batch=batch)
    return version


def rewrap(
    database: Database,
    keyring: Keyring,
    clock: Callable[[], int],
    *,
    progress: Progress | None = None,
    batch: int = REWRAP_BATCH,
) -> int:
    """Wrap every data key not wrapped by the current version again, in batches of one
    transaction each; ``progress(done, total)`` after each. Returns how many were."""
    # A snapshot: a reload of the live keyring meanwhile cannot change the target version.
    keyring, live = Keyring(), keyring
    keyring.load(live.master, live.keys)
    current = keyring.key_id
    prefix = kek_version_prefix(current)
    with database.transaction() as conn:
        counts = store.count_by_prefix(conn)
        rotation = _rotation(conn)
    total = sum(count for found, count in counts.items() if found != prefix)
    done = 0
    if progress is not None:
        progress(done, total)
    for source in store.WRAPPED_KEY_TABLES:
        after = ""
        while True:
            with database.transaction() as conn:
                if not store.hold_entry(conn, kek_entry_name(current)):
                    raise KeyringError(f"KEK version {current} is no longer stored")
                rows = store.wrapped_keys_not_under(conn, source, prefix, after, batch)
                for row in rows:
                    owner = row.key if source.name == "users" else f"session:{row.key}"
                    new = keyring.rewrap(row.wrapped, owner)
                    if store.replace_wrapped_key(conn, source, row.key, row.wrapped, new):
                        done += 1
                if rotation is not None and rotation.version == current:
                    rotation = RotationProgress(
                        current, "rewrapping", rotation.rewrapped + len(rows), 0, rotation.started
                    )
                    _save_rotation(conn, rotation)
            if not rows:
                break
            after = rows[-1].key
            if progress is not None:
                progress(min(done, total), total)
    with database.transaction() as conn:
        rotation = _rotation(conn)
        if rotation is not None and rotation.version == current:
            _save_rotation(
                conn,
                RotationProgress(current, "done", rotation.rewrapped, 0, rotation.started),
            )
    return done


def retire(database: Database, keyring: Keyring, clock: Callable[[], int]) -> list[int]:
    """Destroy the KEK versions that wrap nothing (never the current one); returns them.

    Each candidate's row is deleted first, which waits for every transaction that holds it
    to wrap a data key; only then are the wrapped keys counted, and a version that wraps
    one after all is put back."""
    with database.transaction() as conn:
        keys = _read_keys_with(conn, keyring.keys.wrapping)
        stored = store.read_entries(conn)
        counts = store.count_by_prefix(conn)
        empty = {
            v for v in keys.keks if v != keys.current and counts.get(kek_version_prefix(v), 0) == 0
        }
        if empty:
            store.delete_entries(conn, [kek_entry_name(v) for v in empty])
            counts = store.count_by_prefix(conn)
            used = {v for v in empty if counts.get(kek_version_prefix(v), 0) > 0}
            if used:
                log.info("a KEK version wraps a new data key: kept", extra={"event": "retire"})
                store.write_entries(
                    conn, {kek_entry_name(v): stored[kek_entry_name(v)] for v in used}, clock()
                )
            empty -= used
        if empty:
            keys = keys.without_keks(empty)
            _store(conn, keys, clock())
    keyring.load(keyring.master, keys)
    return sorted(empty)


# -- rekey ------------------------------------------------------------------------------------
def rekey(
    database: Database,
    keyring: Keyring,
    new_master: MasterKey,
    provider: prov.KeyProvider,
    clock: Callable[[], int],
) -> prov.ProtectedKey:
    """Seal the keyring key under ``new_master`` kept by ``provider``: no other stored value
    is encrypted again. The old master key is refused at start from the commit on."""
    with database.transaction() as conn:
        keys = _read_keys_with(conn, keyring.keys.wrapping)
        protected = provider.protect(new_master, vault_id(conn))
        _seal_keyring_key(conn, new_master, keys.wrapping, clock())
        _bump_generation(conn)
        repo.set_meta(conn, KEY_CHECK, new_master.check_value())
        store_provider(conn, protected)
    keyring.load(new_master, keys)
    return protected


# -- unsealing ------------------------------------------------------------------------------
def count_unseal_attempt(database: Database, address: str, now: int) -> bool:
    """Count one unseal attempt from ``address``; False beyond ``UNSEAL_ATTEMPTS`` a window.
    The counter lives in the database, so every worker and server shares it."""
    bucket = hashlib.sha256(f"unseal\x00{address}".encode()).digest()
    with database.transaction() as conn:
        return hit(conn, bucket, now, UNSEAL_WINDOW) <= UNSEAL_ATTEMPTS


def shamir_threshold(values: Mapping[str, str]) -> int | None:
    if values.get(prov.PROVIDER) != prov.ShamirKeyProvider.kind:
        return None
    return int(values.get(prov.SHAMIR_THRESHOLD, "0")) or None
