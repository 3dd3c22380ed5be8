"""Cryptography: key hierarchy, envelope encryption, blind indexes, random tokens and the
providers of the master key.

Knows nothing of HTTP or SQL.
"""

from databunker.crypto.keys import (
    DataKey,
    DecryptionError,
    Keyring,
    KeyringSealed,
    KeySet,
    MasterKey,
    kek_version_prefix,
    value_context,
    wrapped_kek_version,
)
from databunker.crypto.tokens import is_uuid, new_token

__all__ = [
    "DataKey",
    "DecryptionError",
    "KeySet",
    "Keyring",
    "KeyringSealed",
    "MasterKey",
    "is_uuid",
    "kek_version_prefix",
    "new_token",
    "value_context",
    "wrapped_kek_version",
]
