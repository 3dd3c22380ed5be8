"""The keyring: versioned KEKs, sealing, entries sealed under the keyring key."""

from __future__ import annotations

import pytest

from databunker.crypto import (
    DataKey,
    DecryptionError,
    Keyring,
    KeyringSealed,
    KeySet,
    MasterKey,
    open_keyring_entry,
    seal_keyring_entry,
    wrapped_kek_version,
)


def test_a_new_key_set_is_random_and_not_derived_from_the_master_key() -> None:
    master = MasterKey.generate()
    generated, derived = KeySet.generate(), KeySet.derived(master)

    assert generated.entries().keys() == derived.entries().keys()
    assert not set(generated.entries().values()) & set(derived.entries().values())
    assert derived.audit_chain == master.derive("audit-chain")


def test_entries_sealed_under_the_keyring_key_round_trip_and_are_bound_to_their_name() -> None:
    keys = KeySet.generate()
    wrapping = keys.wrapping
    sealed = {name: seal_keyring_entry(wrapping, name, raw) for name, raw in keys.entries().items()}

    opened = {name: open_keyring_entry(wrapping, name, blob) for name, blob in sealed.items()}
    assert KeySet.from_entries(opened, 1, wrapping).entries() == keys.entries()
    assert wrapping not in opened.values()
    with pytest.raises(DecryptionError):
        open_keyring_entry(wrapping, "blind-index", sealed["secret-hash"])
    with pytest.raises(DecryptionError):
        open_keyring_entry(KeySet.generate().wrapping, "blind-index", sealed["blind-index"])


def test_the_master_key_seals_the_keyring_key_bound_to_its_name() -> None:
    master, wrapping = MasterKey.generate(), KeySet.generate().wrapping
    sealed = master.seal_entry("keyring-key", wrapping)

    assert master.open_entry("keyring-key", sealed) == wrapping
    with pytest.raises(DecryptionError):
        MasterKey.generate().open_entry("keyring-key", sealed)
    with pytest.raises(DecryptionError):
        master.open_entry("blind-index", sealed)
    # A keyring entry and the master key's own sealing are not interchangeable.
    with pytest.raises(DecryptionError):
        open_keyring_entry(wrapping, "keyring-key", sealed)


def test_unwrap_picks_the_kek_version_the_wrapped_key_names() -> None:
    master = MasterKey.generate()
    keys = KeySet.generate()
    keyring = Keyring()
    keyring.load(master, keys)
    data_key = DataKey.generate()
    old = keyring.wrap(data_key, "owner")

    keyring.load(master, keys.with_new_kek(2, current=True))
    new = keyring.wrap(data_key, "owner")

    assert (wrapped_kek_version(old), wrapped_kek_version(new)) == (1, 2)
    for blob in (old, new):
        assert keyring.unwrap(blob, "owner").encrypt(b"x", b"c")
    assert wrapped_kek_version(keyring.rewrap(old, "owner")) == 2
    # Once version 1 is destroyed, what it wrapped is gone.
    keyring.load(master, keyring.keys.without_keks({1}))
    with pytest.raises(DecryptionError):
        keyring.unwrap(old, "owner")


def test_the_current_version_cannot_be_destroyed() -> None:
    with pytest.raises(ValueError, match="current"):
        KeySet.generate().without_keks({1})


def test_a_sealed_keyring_holds_no_key_and_refuses_every_use() -> None:
    keyring = Keyring(MasterKey.generate())
    wrapped = keyring.wrap(DataKey.generate(), "owner")

    keyring.seal()

    assert keyring.sealed
    assert repr(keyring) == "Keyring(sealed)"
    for use in (
        lambda: keyring.unwrap(wrapped, "owner"),
        lambda: keyring.wrap(DataKey.generate(), "owner"),
        lambda: keyring.blind_index("email", "a@example.com"),
        lambda: keyring.hash_secret("token", "x"),
        lambda: keyring.service_key("outbox"),
        keyring.audit_chain_key,
    ):
        with pytest.raises(KeyringSealed):
            use()


def test_key_set_repr_names_versions_only() -> None:
    keys = KeySet.generate()
    rendering = repr(keys) + str(keys)

    assert rendering.startswith("KeySet(versions=[1], current=1)")
    for raw in keys.entries().values():
        assert raw.hex() not in rendering
