"""Cryptography: key hierarchy, envelope encryption, blind indexes, random tokens and the
providers of the master key.

Knows nothing of HTTP or SQL.
"""

from databunker.crypto.keys import (
    KEYRING_KEY_ENTRY,
    DataKey,
    DecryptionError,
    Keyring,
    KeyringSealed,
    KeySet,
    MasterKey,
    kek_entry_name,
    kek_version_prefix,
    open_keyring_entry,
    seal_keyring_entry,
    value_context,
    wrapped_kek_version,
)
from databunker.crypto.tokens import is_uuid, new_token

__all__ = [
    "KEYRING_KEY_ENTRY",
    "DataKey",
    "DecryptionError",
    "KeySet",
    "Keyring",
    "KeyringSealed",
    "MasterKey",
    "is_uuid",
    "kek_entry_name",
    "kek_version_prefix",
    "new_token",
    "open_keyring_entry",
    "seal_keyring_entry",
    "value_context",
    "wrapped_kek_version",
]
