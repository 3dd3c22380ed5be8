"""Key hierarchy and envelope encryption.

Invariants guarded here:
- the master key never leaves this module's objects except as the hex an operator is shown
  once at ``init``; ``repr``/``str`` of every key object is redacted;
- sub-keys are derived once, with HKDF-SHA256 and a distinct label each, when a ``Keyring`` is
  built: the key-encryption key (KEK), the blind-index key, the secret-hashing key and the
  key-check key and the audit-chain key;
- every ciphertext starts with a format version and a key id, and is authenticated together
  with its context (table, column, row, owner), so a value cannot be moved to another row or
  owner, and any change to any byte fails;
- every failure to decrypt raises the one opaque ``DecryptionError``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32
NONCE_BYTES = 12
FORMAT_VERSION = 1
_HEADER = struct.Struct(">BI")  # format version, key id
_MIN_BLOB = _HEADER.size + NONCE_BYTES + 16  # header, nonce, GCM tag


class DecryptionError(Exception):
    """A ciphertext could not be opened: wrong key, wrong context, or tampered bytes.

    It knows the associated data it was opened with, so an operator can be told which row
    failed (``where``): the kind of value and the row's id, never a value."""

    def __init__(self, context: bytes = b"") -> None:
        super().__init__("decryption failed")
        self.context = context

    def where(self) -> tuple[str, str]:
        """(kind, row id) of the value that failed, e.g. ("users.profile", "<token>")."""
        parts = _split_length_prefixed(self.context)
        if len(parts) == 5 and parts[0] == "value-v1":
            return f"{parts[1]}.{parts[2]}", parts[3]
        if len(parts) == 2 and parts[0] == "dek-v1":
            return "data key", parts[1]
        return "unknown", ""


class MasterKey:
    """The root secret (256 bits). Held only in memory; never stored in the database."""

    __slots__ = ("_raw",)

    def __init__(self, raw: bytes) -> None:
        if len(raw) != KEY_BYTES:
            raise ValueError(f"master key must be {KEY_BYTES} bytes")
        self._raw = raw

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(secrets.token_bytes(KEY_BYTES))

    @classmethod
    def from_hex(cls, text: str) -> MasterKey:
        text = text.strip()
        if len(text) != KEY_BYTES * 2:
            raise ValueError(f"master key must be {KEY_BYTES * 2} hexadecimal characters")
        if any(char not in string.hexdigits for char in text):
            raise ValueError("master key is not a valid hexadecimal string")
        return cls(bytes.fromhex(text))

    def hex(self) -> str:
        return self._raw.hex()

    def derive(self, label: str) -> bytes:
        """A 256-bit sub-key for one purpose; distinct labels give independent keys."""
        hkdf = HKDF(
            algorithm=hashes.SHA256(),
            length=KEY_BYTES,
            salt=None,
            info=f"databunker/{label}".encode(),
        )
        return hkdf.derive(self._raw)

    def __repr__(self) -> str:
        return "MasterKey(<redacted>)"

    __str__ = __repr__


def _seal(aead: AESGCM, key_id: int, plaintext: bytes, context: bytes) -> bytes:
    header = _HEADER.pack(FORMAT_VERSION, key_id)
    nonce = secrets.token_bytes(NONCE_BYTES)
    return header + nonce + aead.encrypt(nonce, plaintext, header + context)


def _open(aead: AESGCM, key_id: int, blob: bytes, context: bytes) -> bytes:
    if len(blob) < _MIN_BLOB:
        raise DecryptionError(context)
    header = blob[: _HEADER.size]
    version, blob_key_id = _HEADER.unpack(header)
    if version != FORMAT_VERSION or blob_key_id != key_id:
        raise DecryptionError(context)
    nonce = blob[_HEADER.size : _HEADER.size + NONCE_BYTES]
    try:
        return aead.decrypt(nonce, blob[_HEADER.size + NONCE_BYTES :], header + context)
    except InvalidTag:
        raise DecryptionError(context) from None


class DataKey:
    """A person's data-encryption key: encrypts every PII value that belongs to them.

    It exists in the database only wrapped by the KEK; destroying the wrapped copy makes all
    of the person's ciphertexts unreadable (crypto-shredding).
    """

    __slots__ = ("_aead", "_raw", "key_id")

    def __init__(self, raw: bytes, key_id: int = 1) -> None:
        if len(raw) != KEY_BYTES:
            raise ValueError(f"data key must be {KEY_BYTES} bytes")
        self._raw = raw
        self._aead = AESGCM(raw)
        self.key_id = key_id

    @classmethod
    def generate(cls) -> DataKey:
        return cls(secrets.token_bytes(KEY_BYTES))

    def encrypt(self, plaintext: bytes, context: bytes) -> bytes:
        return _seal(self._aead, self.key_id, plaintext, context)

    def decrypt(self, blob: bytes, context: bytes) -> bytes:
        return _open(self._aead, self.key_id, blob, context)

    def __repr__(self) -> str:
        return "DataKey(<redacted>)"

    __str__ = __repr__


def _length_prefixed(*parts: str) -> bytes:
    encoded = [part.encode("utf-8", "surrogatepass") for part in parts]
    return b"".join(len(part).to_bytes(4, "big") + part for part in encoded)


def _split_length_prefixed(data: bytes) -> list[str]:
    parts: list[str] = []
    while len(data) >= 4:
        size = int.from_bytes(data[:4], "big")
        part, data = data[4 : 4 + size], data[4 + size :]
        if len(part) != size:
            return []
        parts.append(part.decode("utf-8", "replace"))
    return parts if not data else []


def value_context(table: str, column: str, row: str, owner: str) -> bytes:
    """Associated data that binds a ciphertext to the one place it belongs."""
    return _length_prefixed("value-v1", table, column, row, owner)


_KEY_CHECK_MESSAGE = b"databunker key check v1"


class Keyring:
    """Every key derived from one master key, derived once at start-up."""

    __slots__ = (
        "_audit_chain_key",
        "_check_key",
        "_index_key",
        "_kek",
        "_secret_key",
        "_service_keys",
        "key_id",
    )

    SERVICE_PURPOSES = ("outbox", "identity")

    def __init__(self, master: MasterKey, key_id: int = 1) -> None:
        self.key_id = key_id
        self._kek = AESGCM(master.derive("kek"))
        self._index_key = master.derive("blind-index")
        self._secret_key = master.derive("secret-hash")
        self._check_key = master.derive("key-check")
        self._audit_chain_key = master.derive("audit-chain")
        self._service_keys = {
            purpose: DataKey(master.derive(f"service/{purpose}"))
            for purpose in self.SERVICE_PURPOSES
        }

    def service_key(self, purpose: str) -> DataKey:
        """A key for values that belong to no person yet (queued webhooks, identities that
        gave consent before they had a record): ``outbox`` or ``identity``."""
        return self._service_keys[purpose]

    def audit_chain_key(self) -> bytes:
        """The key of the audit trail's links (``storage/audit_chain.py``)."""
        return self._audit_chain_key

    # -- key check: lets ``serve`` refuse a wrong master key before touching data
    def check_value(self) -> str:
        return hmac.new(self._check_key, _KEY_CHECK_MESSAGE, hashlib.sha256).hexdigest()

    def matches(self, stored_check_value: str) -> bool:
        stored = stored_check_value.encode("utf-8", "surrogatepass")
        return hmac.compare_digest(self.check_value().encode(), stored)

    # -- envelope: data keys wrapped under the KEK, bound to their owner
    def wrap(self, data_key: DataKey, owner: str) -> bytes:
        plaintext = data_key.key_id.to_bytes(4, "big") + data_key._raw
        return _seal(self._kek, self.key_id, plaintext, _wrap_context(owner))

    def unwrap(self, blob: bytes, owner: str) -> DataKey:
        plaintext = _open(self._kek, self.key_id, blob, _wrap_context(owner))
        if len(plaintext) != 4 + KEY_BYTES:
            raise DecryptionError(_wrap_context(owner))
        return DataKey(plaintext[4:], key_id=int.from_bytes(plaintext[:4], "big"))

    # -- keyed hashes
    def blind_index(self, kind: str, normalised: str) -> bytes:
        """Equality-searchable index of a normalised identity (``kind`` separates domains)."""
        message = kind.encode() + b"\x00" + normalised.encode()
        return hmac.new(self._index_key, message, hashlib.sha256).digest()

    def hash_secret(self, kind: str, value: str) -> bytes:
        """Keyed hash under which access tokens, codes and capability tokens are stored."""
        message = kind.encode() + b"\x00" + value.encode()
        return hmac.new(self._secret_key, message, hashlib.sha256).digest()

    def __repr__(self) -> str:
        return f"Keyring(key_id={self.key_id})"


def _wrap_context(owner: str) -> bytes:
    return _length_prefixed("dek-v1", owner)
