"""Cryptography: key hierarchy, envelope encryption, blind indexes and random tokens.

Knows nothing of HTTP or SQL.
"""

from databunker.crypto.keys import (
    DataKey,
    DecryptionError,
    Keyring,
    MasterKey,
    value_context,
)
from databunker.crypto.tokens import is_uuid, new_token

__all__ = [
    "DataKey",
    "DecryptionError",
    "Keyring",
    "MasterKey",
    "is_uuid",
    "new_token",
    "value_context",
]
