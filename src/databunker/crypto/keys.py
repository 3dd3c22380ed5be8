"""Key hierarchy and envelope encryption.

The master key wraps one key only, the keyring key (``KeySet.wrapping``, stored as the entry
``keyring-key`` sealed by ``MasterKey.seal_entry``). The keyring key seals the keyring's other
entries (``seal_keyring_entry``): a ``KeySet`` of versioned key-encryption keys (KEKs), the
blind-index key, the secret-hashing key, the service keys and the audit-chain key. A rekey
reseals the keyring key alone, so a server still holding the old master key can read every
entry written after the rekey (a rotation's new KEK) with the keyring key it holds. A vault
made before the keyring existed has its keys derived from the master key with HKDF; they
become keyring version 1 as they are (``KeySet.derived``), so every stored value stays
readable. A person's data key is wrapped by one KEK version, and the wrapped key's header
names that version (its key id): ``unwrap`` picks the KEK by it.

Invariants guarded here:
- the master key never leaves this module's objects except as the hex an operator is shown
  once at ``init``; ``repr``/``str`` of every key object is redacted;
- a ``Keyring`` is sealed (it holds no key and every use raises ``KeyringSealed``) or
  unsealed with one master key and one key set, swapped as a whole, so a request never sees
  half of a rotation;
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

    @property
    def raw(self) -> bytes:
        """The key's bytes, for a key provider to protect (split into shares, encrypt)."""
        return self._raw

    def seal_entry(self, name: str, secret: bytes) -> bytes:
        """A keyring entry as stored: ``secret`` sealed under this key, bound to ``name``."""
        return _seal(AESGCM(self.derive("keyring")), 0, secret, _entry_context(name))

    def open_entry(self, name: str, blob: bytes) -> bytes:
        return _open(AESGCM(self.derive("keyring")), 0, blob, _entry_context(name))

    def check_value(self) -> str:
        """A value stored at ``init`` that tells this key from any other without revealing it."""
        check_key = self.derive("key-check")
        return hmac.new(check_key, _KEY_CHECK_MESSAGE, hashlib.sha256).hexdigest()

    def matches(self, stored_check_value: str) -> bool:
        stored = stored_check_value.encode("utf-8", "surrogatepass")
        return hmac.compare_digest(self.check_value().encode(), stored)

    def __repr__(self) -> str:
        return "MasterKey(<redacted>)"

    __str__ = __repr__


_KEY_CHECK_MESSAGE = b"databunker key check v1"


def _entry_context(name: str) -> bytes:
    return _length_prefixed("keyring-v1", name)


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


class KeyringSealed(Exception):
    """The vault is sealed: no key is in memory until it is unsealed."""

    def __init__(self) -> None:
        super().__init__("vault is sealed")


SERVICE_PURPOSES = ("outbox", "identity")
_KEK_PREFIX = "kek/"
KEYRING_KEY_ENTRY = "keyring-key"


def seal_keyring_entry(wrapping: bytes, name: str, secret: bytes) -> bytes:
    """A keyring entry as stored: ``secret`` sealed under the keyring key, bound to ``name``."""
    return _seal(AESGCM(wrapping), 0, secret, _length_prefixed("keyring-v2", name))


def open_keyring_entry(wrapping: bytes, name: str, blob: bytes) -> bytes:
    return _open(AESGCM(wrapping), 0, blob, _length_prefixed("keyring-v2", name))


class KeySet:
    """The keyring's keys in clear, in memory: immutable; a change makes a new set.

    As stored, it is a list of named entries (``entries``/``from_entries``): ``kek/<n>`` for
    each KEK version, ``blind-index``, ``secret-hash``, ``service/<purpose>``, ``audit-chain``,
    each sealed under ``wrapping`` (the keyring key, which the master key seals); which KEK is
    current is stored beside them.
    """

    __slots__ = (
        "audit_chain",
        "blind_index",
        "current",
        "keks",
        "secret_hash",
        "services",
        "wrapping",
    )

    def __init__(
        self,
        keks: dict[int, bytes],
        current: int,
        blind_index: bytes,
        secret_hash: bytes,
        services: dict[str, bytes],
        audit_chain: bytes,
        wrapping: bytes,
    ) -> None:
        if current not in keks:
            raise ValueError("the current KEK version is not in the key set")
        if set(services) != set(SERVICE_PURPOSES):
            raise ValueError("the key set lacks a service key")
        every = (*keks.values(), blind_index, secret_hash, *services.values(), audit_chain)
        for raw in (*every, wrapping):
            if len(raw) != KEY_BYTES:
                raise ValueError(f"keyring keys must be {KEY_BYTES} bytes")
        self.keks = dict(keks)
        self.current = current
        self.blind_index = blind_index
        self.secret_hash = secret_hash
        self.services = dict(services)
        self.audit_chain = audit_chain
        self.wrapping = wrapping

    @classmethod
    def generate(cls) -> KeySet:
        """A new vault's keyring: random keys, KEK version 1."""
        return cls(
            keks={1: secrets.token_bytes(KEY_BYTES)},
            current=1,
            blind_index=secrets.token_bytes(KEY_BYTES),
            secret_hash=secrets.token_bytes(KEY_BYTES),
            services={purpose: secrets.token_bytes(KEY_BYTES) for purpose in SERVICE_PURPOSES},
            audit_chain=secrets.token_bytes(KEY_BYTES),
            wrapping=secrets.token_bytes(KEY_BYTES),
        )

    @classmethod
    def derived(cls, master: MasterKey, kek_version: int = 1) -> KeySet:
        """The keys a vault made before the keyring derived from its master key (and a new
        random keyring key to seal them with once they are stored)."""
        return cls(
            keks={kek_version: master.derive("kek")},
            current=kek_version,
            blind_index=master.derive("blind-index"),
            secret_hash=master.derive("secret-hash"),
            services={purpose: master.derive(f"service/{purpose}") for purpose in SERVICE_PURPOSES},
            audit_chain=master.derive("audit-chain"),
            wrapping=secrets.token_bytes(KEY_BYTES),
        )

    def with_new_kek(self, version: int, *, current: bool) -> KeySet:
        if version in self.keks:
            raise ValueError(f"KEK version {version} exists already")
        keks = {**self.keks, version: secrets.token_bytes(KEY_BYTES)}
        return self._replace(keks=keks, current=version if current else self.current)

    def with_current(self, version: int) -> KeySet:
        return self._replace(keks=self.keks, current=version)

    def without_keks(self, versions: set[int]) -> KeySet:
        if self.current in versions:
            raise ValueError("the current KEK version cannot be destroyed")
        return self._replace(
            keks={v: raw for v, raw in self.keks.items() if v not in versions},
            current=self.current,
        )

    def _replace(self, *, keks: dict[int, bytes], current: int) -> KeySet:
        return KeySet(
            keks,
            current,
            self.blind_index,
            self.secret_hash,
            self.services,
            self.audit_chain,
            self.wrapping,
        )

    def entries(self) -> dict[str, bytes]:
        """The entries the keyring key seals (the keyring key itself is not one of them)."""
        named = {kek_entry_name(version): raw for version, raw in self.keks.items()}
        named["blind-index"] = self.blind_index
        named["secret-hash"] = self.secret_hash
        named.update({f"service/{purpose}": raw for purpose, raw in self.services.items()})
        named["audit-chain"] = self.audit_chain
        return named

    @classmethod
    def from_entries(cls, entries: dict[str, bytes], current: int, wrapping: bytes) -> KeySet:
        try:
            keks = {
                int(name.removeprefix(_KEK_PREFIX)): raw
                for name, raw in entries.items()
                if name.startswith(_KEK_PREFIX)
            }
            return cls(
                keks=keks,
                current=current,
                blind_index=entries["blind-index"],
                secret_hash=entries["secret-hash"],
                services={p: entries[f"service/{p}"] for p in SERVICE_PURPOSES},
                audit_chain=entries["audit-chain"],
                wrapping=wrapping,
            )
        except (KeyError, ValueError) as exc:
            raise ValueError("the stored keyring is incomplete") from exc

    def __repr__(self) -> str:
        return f"KeySet(versions={sorted(self.keks)}, current={self.current})"

    __str__ = __repr__


class _Unsealed:
    """What an unsealed keyring holds: built once per key set, read without locks."""

    __slots__ = ("keks", "keys", "master", "services")

    def __init__(self, master: MasterKey, keys: KeySet) -> None:
        self.master = master
        self.keys = keys
        self.keks = {version: AESGCM(raw) for version, raw in keys.keks.items()}
        self.services = {purpose: DataKey(raw) for purpose, raw in keys.services.items()}


class Keyring:
    """The vault's keys in memory: the master key and its key set, or nothing (sealed).

    ``Keyring(master)`` is the key set derived from ``master`` (a vault made before the
    keyring; tests); a server starts from ``Keyring.sealed()`` and ``load``s the stored key
    set once the master key is known. ``load`` and ``seal`` replace the whole state at once.
    """

    __slots__ = ("_state", "_tenant")

    def __init__(self, master: MasterKey | None = None, key_id: int = 1) -> None:
        self._state: _Unsealed | None = None
        # Blind indexes are computed per tenant (see ``for_tenant``); 1 is the default one.
        self._tenant = 1
        if master is not None:
            self.load(master, KeySet.derived(master, key_id))

    @classmethod
    def sealed_keyring(cls) -> Keyring:
        return cls()

    def load(self, master: MasterKey, keys: KeySet) -> None:
        self._state = _Unsealed(master, keys)

    def seal(self) -> None:
        """Forget every key (the objects go with the last request still using them)."""
        self._state = None

    def for_tenant(self, tenant: int) -> Keyring:
        """This key set as one tenant's unit of work uses it: the same keys, but blind
        indexes of its own, so that an identity of one tenant never matches another's (the
        default tenant's are those of a vault made before tenants). A view for one unit:
        a later ``load`` or ``seal`` reaches units started after it."""
        if tenant == self._tenant:
            return self
        view = Keyring()
        view._state = self._state
        view._tenant = tenant
        return view

    @property
    def sealed(self) -> bool:
        return self._state is None

    def _unsealed(self) -> _Unsealed:
        state = self._state
        if state is None:
            raise KeyringSealed()
        return state

    @property
    def master(self) -> MasterKey:
        return self._unsealed().master

    @property
    def keys(self) -> KeySet:
        return self._unsealed().keys

    @property
    def key_id(self) -> int:
        """The current KEK version: new data keys are wrapped by it."""
        return self._unsealed().keys.current

    def service_key(self, purpose: str) -> DataKey:
        """A key for values that belong to no person yet (queued webhooks, identities that
        gave consent before they had a record): ``outbox`` or ``identity``."""
        return self._unsealed().services[purpose]

    def audit_chain_key(self) -> bytes:
        """The key of the audit trail's chain links (32 bytes)."""
        return self._unsealed().keys.audit_chain

    # -- key check: lets ``serve`` refuse a wrong master key before touching data
    def check_value(self) -> str:
        return self._unsealed().master.check_value()

    def matches(self, stored_check_value: str) -> bool:
        return self._unsealed().master.matches(stored_check_value)

    # -- envelope: data keys wrapped under a KEK version, bound to their owner
    def wrap(self, data_key: DataKey, owner: str) -> bytes:
        state = self._unsealed()
        version = state.keys.current
        plaintext = data_key.key_id.to_bytes(4, "big") + data_key._raw
        return _seal(state.keks[version], version, plaintext, _wrap_context(owner))

    def unwrap(self, blob: bytes, owner: str) -> DataKey:
        state = self._unsealed()
        kek = state.keks.get(wrapped_kek_version(blob))
        if kek is None:
            raise DecryptionError(_wrap_context(owner))
        plaintext = _open(kek, wrapped_kek_version(blob), blob, _wrap_context(owner))
        if len(plaintext) != 4 + KEY_BYTES:
            raise DecryptionError(_wrap_context(owner))
        return DataKey(plaintext[4:], key_id=int.from_bytes(plaintext[:4], "big"))

    def rewrap(self, blob: bytes, owner: str) -> bytes:
        """``blob`` wrapped again by the current KEK version."""
        return self.wrap(self.unwrap(blob, owner), owner)

    # -- keyed hashes
    def blind_index(self, kind: str, normalised: str) -> bytes:
        """Equality-searchable index of a normalised identity (``kind`` separates domains)."""
        message = kind.encode() + b"\x00" + normalised.encode()
        if self._tenant != 1:
            message = b"tenant\x00" + str(self._tenant).encode() + b"\x00" + message
        return hmac.new(self._unsealed().keys.blind_index, message, hashlib.sha256).digest()

    def hash_secret(self, kind: str, value: str) -> bytes:
        """Keyed hash under which access tokens, codes and capability tokens are stored."""
        message = kind.encode() + b"\x00" + value.encode()
        return hmac.new(self._unsealed().keys.secret_hash, message, hashlib.sha256).digest()

    def __repr__(self) -> str:
        state = self._state
        if state is None:
            return "Keyring(sealed)"
        return f"Keyring(key_id={state.keys.current})"


def wrapped_kek_version(blob: bytes) -> int:
    """The KEK version named in a wrapped data key's header (0 if it has none)."""
    if len(blob) < _HEADER.size:
        return 0
    return int(_HEADER.unpack(blob[: _HEADER.size])[1])


def kek_entry_name(version: int) -> str:
    """The keyring entry of KEK ``version``."""
    return f"{_KEK_PREFIX}{version}"


def kek_version_prefix(version: int) -> bytes:
    """The first bytes of every data key wrapped by KEK ``version``: storage counts by them."""
    return _HEADER.pack(FORMAT_VERSION, version)


def _wrap_context(owner: str) -> bytes:
    return _length_prefixed("dek-v1", owner)
