"""Random identifiers handed out by the vault (user tokens, access tokens, record tokens)."""

from __future__ import annotations

import re
import secrets
import uuid

UUID_PATTERN = re.compile(
    r"^[a-fA-F0-9]{8}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{12}$"
)


def new_token() -> str:
    """A version-4 UUID from the system CSPRNG (122 random bits)."""
    return str(uuid.UUID(bytes=secrets.token_bytes(16), version=4))


def is_uuid(value: str) -> bool:
    return UUID_PATTERN.fullmatch(value) is not None
