"""Key hierarchy, envelope encryption, blind indexes and tokens.

Crypto must fail closed and opaquely: every tampered byte, truncation, wrong key, wrong
context or wrong owner raises the one ``DecryptionError`` with the same message. Known-answer
tests recompute the derived values with cryptography's HKDF so the key labels are pinned.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given
from hypothesis import strategies as st

from databunker.crypto import (
    DataKey,
    DecryptionError,
    Keyring,
    MasterKey,
    is_uuid,
    new_token,
    value_context,
)

FIXED_MASTER_RAW = bytes(range(32))
FIXED_DATA_KEY_RAW = bytes(range(32, 64))
OPAQUE_MESSAGE = "decryption failed"
HEADER_SIZE = 5  # format version (1 byte) + key id (4 bytes, big-endian)
NONCE_SIZE = 12
TAG_SIZE = 16

# Hypothesis cannot share function-scoped fixtures, so property tests use these.
PROPERTY_DATA_KEY = DataKey.generate()
PROPERTY_KEYRING = Keyring(MasterKey.generate())

# Strings the vault stores are valid Unicode; lone surrogates cannot be encoded to UTF-8.
unicode_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)))


def _hkdf(master_raw: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master_raw)


def _flip(blob: bytes, index: int, mask: int) -> bytes:
    tampered = bytearray(blob)
    tampered[index] ^= mask
    return bytes(tampered)


def _opaque_failure(action: Callable[[], object]) -> DecryptionError:
    """Run ``action``, require exactly ``DecryptionError`` with the opaque message, return it."""
    with pytest.raises(DecryptionError) as info:
        action()
    exc = info.value
    assert type(exc) is DecryptionError
    assert str(exc) == OPAQUE_MESSAGE
    assert exc.args == (OPAQUE_MESSAGE,)
    # The underlying library error (InvalidTag, struct.error) must not travel with it.
    assert exc.__cause__ is None
    assert exc.__context__ is None or exc.__suppress_context__
    return exc


@pytest.fixture
def master() -> MasterKey:
    return MasterKey(FIXED_MASTER_RAW)


@pytest.fixture
def keyring(master: MasterKey) -> Keyring:
    return Keyring(master)


@pytest.fixture
def data_key() -> DataKey:
    return DataKey(FIXED_DATA_KEY_RAW)


# -- MasterKey -------------------------------------------------------------------------------


def test_master_key_from_hex_accepts_64_hex_chars_with_surrounding_whitespace() -> None:
    text = FIXED_MASTER_RAW.hex()
    assert len(text) == 64

    key = MasterKey.from_hex(f"  \n\t{text}\r\n  ")

    assert key.hex() == text


def test_master_key_from_hex_accepts_upper_case() -> None:
    text = FIXED_MASTER_RAW.hex()

    assert MasterKey.from_hex(text.upper()).hex() == text


@pytest.mark.parametrize("length", [0, 2, 62, 63, 65, 66, 128])
def test_master_key_from_hex_rejects_wrong_length(length: int) -> None:
    with pytest.raises(ValueError, match=r"^master key must be 64 hexadecimal characters$"):
        MasterKey.from_hex("a" * length)


@pytest.mark.parametrize(
    "text",
    [
        "zz" * 32,
        "0" * 63 + "g",
        "0x" + "0" * 62,
        "é" * 64,
        "0" * 31 + " " + "0" * 32,  # whitespace inside is not whitespace around
    ],
)
def test_master_key_from_hex_rejects_non_hex(text: str) -> None:
    with pytest.raises(ValueError, match=r"^master key is not a valid hexadecimal string$") as info:
        MasterKey.from_hex(text)

    assert text not in str(info.value)


def test_master_key_from_hex_rejects_internal_whitespace_even_of_even_length() -> None:
    # 64 characters, but only 31 bytes of hex: must not be accepted as a short key.
    text = "00 00 " + "00" * 29
    assert len(text) == 64

    with pytest.raises(ValueError, match="master key"):
        MasterKey.from_hex(text)


@pytest.mark.parametrize("length", [0, 16, 31, 33, 64])
def test_master_key_rejects_raw_bytes_of_wrong_length(length: int) -> None:
    with pytest.raises(ValueError, match=r"^master key must be 32 bytes$"):
        MasterKey(bytes(length))


def test_master_key_generate_gives_distinct_256_bit_keys() -> None:
    keys = {MasterKey.generate().hex() for _ in range(100)}

    assert len(keys) == 100
    assert all(re.fullmatch(r"[0-9a-f]{64}", key) for key in keys)


def test_master_key_hex_round_trips() -> None:
    original = MasterKey.generate()

    restored = MasterKey.from_hex(original.hex())

    assert restored.hex() == original.hex()
    assert Keyring(restored).check_value() == Keyring(original).check_value()


def test_master_key_repr_and_str_never_contain_the_key(master: MasterKey) -> None:
    secret = master.hex()
    renderings = [repr(master), str(master), f"{master}", f"{master!r}", repr([master])]

    for rendering in renderings:
        assert secret not in rendering
        assert secret.upper() not in rendering
        assert "redacted" in rendering


def test_keyring_repr_does_not_contain_key_material(master: MasterKey, keyring: Keyring) -> None:
    rendering = repr(keyring) + str(keyring)

    assert master.hex() not in rendering
    for label in (b"kek", b"blind-index", b"secret-hash", b"key-check"):
        assert _hkdf(FIXED_MASTER_RAW, b"databunker/" + label).hex() not in rendering
    assert rendering.startswith("Keyring(key_id=1)")


# -- Keyring: derived sub-keys, key check, keyed hashes ---------------------------------------


def test_blind_index_and_hash_secret_use_independent_keys(keyring: Keyring) -> None:
    assert keyring.blind_index("email", "a@example.com") != keyring.hash_secret(
        "email", "a@example.com"
    )
    assert keyring.blind_index("token", "x") != keyring.hash_secret("token", "x")


def test_different_master_keys_give_different_derived_values() -> None:
    first = Keyring(MasterKey.generate())
    second = Keyring(MasterKey.generate())

    assert first.check_value() != second.check_value()
    assert first.blind_index("email", "a@example.com") != second.blind_index(
        "email", "a@example.com"
    )
    assert first.hash_secret("token", "abc") != second.hash_secret("token", "abc")


def test_check_value_is_stable_for_the_same_master_key(master: MasterKey) -> None:
    first = Keyring(master).check_value()
    second = Keyring(MasterKey.from_hex(master.hex())).check_value()

    assert first == second
    assert re.fullmatch(r"[0-9a-f]{64}", first)


def test_matches_accepts_own_check_value_and_rejects_another_keys(keyring: Keyring) -> None:
    other = Keyring(MasterKey.generate())

    assert keyring.matches(keyring.check_value()) is True
    assert keyring.matches(other.check_value()) is False
    assert other.matches(keyring.check_value()) is False
    assert keyring.matches("") is False
    assert keyring.matches(keyring.check_value()[:-1]) is False


def test_check_value_known_answer(keyring: Keyring) -> None:
    check_key = _hkdf(FIXED_MASTER_RAW, b"databunker/key-check")
    expected = hmac.new(check_key, b"databunker key check v1", hashlib.sha256).hexdigest()

    assert keyring.check_value() == expected


@pytest.mark.parametrize(
    ("kind", "value"),
    [("email", "a@example.com"), ("login", "alice"), ("phone", "+14155550100"), ("x", "")],
)
def test_blind_index_known_answer(keyring: Keyring, kind: str, value: str) -> None:
    index_key = _hkdf(FIXED_MASTER_RAW, b"databunker/blind-index")
    message = kind.encode() + b"\x00" + value.encode()
    expected = hmac.new(index_key, message, hashlib.sha256).digest()

    assert keyring.blind_index(kind, value) == expected


def test_hash_secret_known_answer(keyring: Keyring) -> None:
    secret_key = _hkdf(FIXED_MASTER_RAW, b"databunker/secret-hash")
    expected = hmac.new(secret_key, b"token\x00abc", hashlib.sha256).digest()

    assert keyring.hash_secret("token", "abc") == expected


@given(kind=unicode_text, value=unicode_text)
def test_blind_index_is_deterministic(kind: str, value: str) -> None:
    first = PROPERTY_KEYRING.blind_index(kind, value)

    assert PROPERTY_KEYRING.blind_index(kind, value) == first
    assert len(first) == 32


def test_blind_index_is_domain_separated_by_kind(keyring: Keyring) -> None:
    assert keyring.blind_index("email", "a") != keyring.blind_index("login", "a")
    assert keyring.blind_index("email", "a") == keyring.blind_index("email", "a")
    assert keyring.blind_index("email", "a") != keyring.blind_index("email", "b")


@given(value=unicode_text)
def test_blind_index_differs_between_kinds_for_any_value(value: str) -> None:
    assert PROPERTY_KEYRING.blind_index("email", value) != PROPERTY_KEYRING.blind_index(
        "login", value
    )


# -- DataKey ----------------------------------------------------------------------------------


@given(plaintext=st.binary(), context=st.binary())
def test_data_key_round_trips(plaintext: bytes, context: bytes) -> None:
    blob = PROPERTY_DATA_KEY.encrypt(plaintext, context)

    assert PROPERTY_DATA_KEY.decrypt(blob, context) == plaintext
    assert len(blob) == HEADER_SIZE + NONCE_SIZE + len(plaintext) + TAG_SIZE


def test_data_key_ciphertext_format_known_answer(data_key: DataKey) -> None:
    context = value_context("users", "profile", "row", "owner")

    blob = data_key.encrypt(b"hello", context)

    header = blob[:HEADER_SIZE]
    nonce = blob[HEADER_SIZE : HEADER_SIZE + NONCE_SIZE]
    assert header == b"\x01\x00\x00\x00\x01"  # format version 1, key id 1
    opened = AESGCM(FIXED_DATA_KEY_RAW).decrypt(
        nonce, blob[HEADER_SIZE + NONCE_SIZE :], header + context
    )
    assert opened == b"hello"


def test_data_key_encryptions_of_same_plaintext_differ(data_key: DataKey) -> None:
    blobs = {data_key.encrypt(b"same", b"ctx") for _ in range(50)}
    nonces = {blob[HEADER_SIZE : HEADER_SIZE + NONCE_SIZE] for blob in blobs}

    assert len(blobs) == 50
    assert len(nonces) == 50


def test_data_key_decrypt_with_another_context_fails(data_key: DataKey) -> None:
    blob = data_key.encrypt(b"secret", b"context-a")

    _opaque_failure(lambda: data_key.decrypt(blob, b"context-b"))
    _opaque_failure(lambda: data_key.decrypt(blob, b""))
    _opaque_failure(lambda: data_key.decrypt(blob, b"context-a\x00"))


def test_data_key_decrypt_with_another_data_key_fails(data_key: DataKey) -> None:
    blob = data_key.encrypt(b"secret", b"ctx")

    _opaque_failure(lambda: DataKey.generate().decrypt(blob, b"ctx"))


def test_data_key_decrypt_with_another_key_id_fails() -> None:
    blob = DataKey(FIXED_DATA_KEY_RAW, key_id=1).encrypt(b"secret", b"ctx")

    _opaque_failure(lambda: DataKey(FIXED_DATA_KEY_RAW, key_id=2).decrypt(blob, b"ctx"))


@pytest.mark.parametrize("plaintext", [b"", b"x", b"a longer secret value \x00\xff"])
def test_data_key_flipping_any_byte_fails(data_key: DataKey, plaintext: bytes) -> None:
    blob = data_key.encrypt(plaintext, b"ctx")
    # Every region is covered: version, key id, nonce, body (if any) and tag.
    assert len(blob) == HEADER_SIZE + NONCE_SIZE + len(plaintext) + TAG_SIZE

    for index in range(len(blob)):
        for mask in (0x01, 0x80, 0xFF):
            tampered = _flip(blob, index, mask)
            _opaque_failure(lambda tampered=tampered: data_key.decrypt(tampered, b"ctx"))


def test_data_key_truncation_to_every_shorter_length_fails(data_key: DataKey) -> None:
    blob = data_key.encrypt(b"some secret value", b"ctx")

    for length in range(len(blob)):
        truncated = blob[:length]
        _opaque_failure(lambda truncated=truncated: data_key.decrypt(truncated, b"ctx"))


def test_data_key_appended_bytes_fail(data_key: DataKey) -> None:
    blob = data_key.encrypt(b"some secret value", b"ctx")

    _opaque_failure(lambda: data_key.decrypt(blob + b"\x00", b"ctx"))


def test_data_key_empty_blob_fails(data_key: DataKey) -> None:
    _opaque_failure(lambda: data_key.decrypt(b"", b"ctx"))


def test_decryption_error_message_is_the_same_in_every_case(
    data_key: DataKey, keyring: Keyring
) -> None:
    blob = data_key.encrypt(b"secret", b"ctx")
    wrapped = keyring.wrap(data_key, "owner")
    failures: list[Callable[[], object]] = [
        lambda: data_key.decrypt(b"", b"ctx"),
        lambda: data_key.decrypt(blob[:10], b"ctx"),
        lambda: data_key.decrypt(_flip(blob, 0, 0x01), b"ctx"),  # version
        lambda: data_key.decrypt(_flip(blob, 4, 0x01), b"ctx"),  # key id
        lambda: data_key.decrypt(_flip(blob, 6, 0x01), b"ctx"),  # nonce
        lambda: data_key.decrypt(_flip(blob, len(blob) - 1, 0x01), b"ctx"),  # tag
        lambda: data_key.decrypt(blob, b"other"),
        lambda: DataKey.generate().decrypt(blob, b"ctx"),
        lambda: keyring.unwrap(wrapped, "other-owner"),
        lambda: Keyring(MasterKey.generate()).unwrap(wrapped, "owner"),
        lambda: keyring.unwrap(b"", "owner"),
    ]

    messages = {str(_opaque_failure(action)) for action in failures}

    assert messages == {OPAQUE_MESSAGE}


def test_data_key_repr_is_redacted(data_key: DataKey) -> None:
    for rendering in (repr(data_key), str(data_key), f"{data_key}", repr([data_key])):
        assert FIXED_DATA_KEY_RAW.hex() not in rendering
        assert "redacted" in rendering


@pytest.mark.parametrize("length", [0, 16, 31, 33])
def test_data_key_rejects_raw_bytes_of_wrong_length(length: int) -> None:
    with pytest.raises(ValueError, match=r"^data key must be 32 bytes$"):
        DataKey(bytes(length))


# -- Keyring: wrapping data keys ----------------------------------------------------------------


def test_wrap_unwrap_round_trips_a_data_key(keyring: Keyring) -> None:
    original = DataKey.generate()
    blob = original.encrypt(b"profile json", b"ctx")

    restored = keyring.unwrap(keyring.wrap(original, "owner-a"), "owner-a")

    assert restored.decrypt(blob, b"ctx") == b"profile json"
    assert original.decrypt(restored.encrypt(b"back", b"ctx"), b"ctx") == b"back"


@given(owner=unicode_text)
def test_wrap_unwrap_round_trips_for_any_owner(owner: str) -> None:
    original = DataKey.generate()
    blob = original.encrypt(b"value", owner.encode())

    restored = PROPERTY_KEYRING.unwrap(PROPERTY_KEYRING.wrap(original, owner), owner)

    assert restored.decrypt(blob, owner.encode()) == b"value"


def test_wrapped_key_format_known_answer(keyring: Keyring, data_key: DataKey) -> None:
    wrapped = keyring.wrap(data_key, "owner-a")

    header = wrapped[:HEADER_SIZE]
    nonce = wrapped[HEADER_SIZE : HEADER_SIZE + NONCE_SIZE]
    kek = _hkdf(FIXED_MASTER_RAW, b"databunker/kek")
    opened = AESGCM(kek).decrypt(
        nonce,
        wrapped[HEADER_SIZE + NONCE_SIZE :],
        header + b"\x00\x00\x00\x06dek-v1" + b"\x00\x00\x00\x07owner-a",
    )
    assert header == b"\x01\x00\x00\x00\x01"
    # the data key's own id (4 bytes) travels with it, then the 32 key bytes
    assert opened == b"\x00\x00\x00\x01" + FIXED_DATA_KEY_RAW
    assert FIXED_DATA_KEY_RAW not in wrapped


def test_wrapping_the_same_key_twice_gives_different_blobs(
    keyring: Keyring, data_key: DataKey
) -> None:
    assert keyring.wrap(data_key, "owner-a") != keyring.wrap(data_key, "owner-a")


def test_unwrap_with_another_owner_fails(keyring: Keyring, data_key: DataKey) -> None:
    wrapped = keyring.wrap(data_key, "owner-a")

    _opaque_failure(lambda: keyring.unwrap(wrapped, "owner-b"))
    _opaque_failure(lambda: keyring.unwrap(wrapped, ""))


def test_unwrap_with_another_master_key_fails(keyring: Keyring, data_key: DataKey) -> None:
    wrapped = keyring.wrap(data_key, "owner-a")

    _opaque_failure(lambda: Keyring(MasterKey.generate()).unwrap(wrapped, "owner-a"))


def test_unwrap_with_a_keyring_of_another_key_id_fails(
    master: MasterKey, data_key: DataKey
) -> None:
    wrapped = Keyring(master, key_id=1).wrap(data_key, "owner-a")

    _opaque_failure(lambda: Keyring(master, key_id=2).unwrap(wrapped, "owner-a"))
    # The same master key under the matching key id still opens it.
    assert Keyring(master, key_id=1).unwrap(wrapped, "owner-a").encrypt(b"x", b"c")


def test_unwrap_tampering_any_byte_fails(keyring: Keyring, data_key: DataKey) -> None:
    wrapped = keyring.wrap(data_key, "owner-a")
    assert len(wrapped) == HEADER_SIZE + NONCE_SIZE + 4 + 32 + TAG_SIZE

    for index in range(len(wrapped)):
        for mask in (0x01, 0xFF):
            tampered = _flip(wrapped, index, mask)
            _opaque_failure(lambda tampered=tampered: keyring.unwrap(tampered, "owner-a"))


def test_unwrap_truncated_blob_fails(keyring: Keyring, data_key: DataKey) -> None:
    wrapped = keyring.wrap(data_key, "owner-a")

    for length in range(len(wrapped)):
        truncated = wrapped[:length]
        _opaque_failure(lambda truncated=truncated: keyring.unwrap(truncated, "owner-a"))


# -- value_context ------------------------------------------------------------------------------


def test_value_context_binds_ciphertext_to_table_column_row_and_owner(
    data_key: DataKey,
) -> None:
    original = value_context("users", "profile", "row-a", "owner-a")
    blob = data_key.encrypt(b'{"name": "Alice"}', original)
    elsewhere = [
        value_context("users", "profile", "row-b", "owner-a"),  # another row
        value_context("apps", "profile", "row-a", "owner-a"),  # another table
        value_context("users", "email", "row-a", "owner-a"),  # another column
        value_context("users", "profile", "row-a", "owner-b"),  # another owner
    ]

    assert data_key.decrypt(blob, original) == b'{"name": "Alice"}'
    assert len(set(elsewhere) | {original}) == 5
    for context in elsewhere:
        _opaque_failure(lambda context=context: data_key.decrypt(blob, context))


def test_value_context_is_deterministic() -> None:
    assert value_context("users", "profile", "r", "o") == value_context(
        "users", "profile", "r", "o"
    )


# -- tokens -------------------------------------------------------------------------------------


def test_new_token_is_a_lower_case_version_4_uuid() -> None:
    token = new_token()
    parsed = uuid.UUID(token)

    assert is_uuid(token)
    assert token == str(parsed)
    assert token == token.lower()
    assert parsed.version == 4
    assert parsed.variant == uuid.RFC_4122
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", token
    )


def test_new_tokens_are_distinct() -> None:
    tokens = [new_token() for _ in range(1000)]

    assert len(set(tokens)) == 1000
    assert all(is_uuid(token) for token in tokens)


def test_is_uuid_accepts_a_standard_uuid() -> None:
    assert is_uuid("123e4567-e89b-42d3-a456-426614174000")
    assert is_uuid(str(uuid.uuid4()))


@pytest.mark.parametrize(
    "value",
    [
        "DEMO",
        "",
        "123e4567-e89b-42d3-a456-4266141740000",  # one extra character
        "0123e4567-e89b-42d3-a456-426614174000",  # one extra character in front
        "123e4567-e89b-42d3-a456-42661417400",  # one character short
        "123e4567-e89b-42d3-a456-42661417400g",  # non-hex
        "123e4567-e89b-42d3-a456-42661417400-",  # non-hex
        "123e4567e89b42d3a456426614174000",  # no hyphens
        "123e4567-e89b-42d3-a456-426614174000\n",  # trailing newline
        " 123e4567-e89b-42d3-a456-426614174000",  # leading space
        "{123e4567-e89b-42d3-a456-426614174000}",  # braces
        "123e4567-e89b-42d3-a456_426614174000",  # wrong separator
        "123e4567-e89b-42d3-a456-42661417400０",  # full-width digit  # noqa: RUF001
    ],
)
def test_is_uuid_rejects_non_uuids(value: str) -> None:
    assert is_uuid(value) is False


def test_unwrap_keeps_the_data_key_id(keyring: Keyring) -> None:
    key = DataKey(bytes(32), key_id=7)
    blob = key.encrypt(b"secret", b"ctx")

    unwrapped = keyring.unwrap(keyring.wrap(key, "owner-a"), "owner-a")

    assert unwrapped.key_id == 7
    assert unwrapped.decrypt(blob, b"ctx") == b"secret"


def test_contexts_cannot_collide_by_moving_separators() -> None:
    assert value_context("a\x1fb", "c", "r", "o") != value_context("a", "b\x1fc", "r", "o")
    assert value_context("ab", "c", "r", "o") != value_context("a", "bc", "r", "o")


def test_key_check_with_garbage_stored_value_is_false(keyring: Keyring) -> None:
    assert keyring.matches("\u00e9" * 64) is False


def test_service_keys_are_independent_and_stable() -> None:
    first = Keyring(MasterKey(bytes(range(32))))
    again = Keyring(MasterKey(bytes(range(32))))
    other = Keyring(MasterKey(bytes(32)))
    blob = first.service_key("outbox").encrypt(b"payload", b"ctx")

    assert again.service_key("outbox").decrypt(blob, b"ctx") == b"payload"
    with pytest.raises(DecryptionError):
        first.service_key("identity").decrypt(blob, b"ctx")
    with pytest.raises(DecryptionError):
        other.service_key("outbox").decrypt(blob, b"ctx")
    with pytest.raises(KeyError):
        first.service_key("anything-else")
