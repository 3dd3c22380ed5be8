"""How people are addressed: lookup modes and the normalisation of indexed identities.

A profile is indexed by its top-level ``login``, ``email``, ``phone`` and ``custom`` values.
Each is normalised before it is hashed into a blind index, the same way whether it comes
from a stored profile or from a lookup URL, so ``Ann@Example.com`` and ``ann@example.com``
find the same person. The stored profile keeps the caller's original spelling.
"""

from __future__ import annotations

import re
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from databunker.crypto import Keyring, is_uuid
from databunker.errors import BadRequest
from databunker.storage.repositories import INDEX_FIELDS

MODES = ("token", *INDEX_FIELDS)


def parse_mode(mode: str) -> str:
    if mode not in MODES:
        raise BadRequest("bad mode")
    return mode


def require_uuid(value: str) -> str:
    if not is_uuid(value):
        raise BadRequest("bad uuid")
    return value


# Plain ASCII addresses that email-validator certainly accepts, and normalises to their
# lower-case form: a dot-atom local part of common characters; a domain of two or more
# letter-digit-hyphen labels, none an IDNA "xx--" label, ending in an alphabetic top-level
# domain that is not a special-use name. Anything else goes through email-validator, whose
# checks (IDNA, quoting, lengths) cost more than the rest of creating a user. A property
# test holds this shortcut to email-validator's answers.
_PLAIN_EMAIL = re.compile(
    r"(?=.{1,64}@)[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*"
    r"@(?=.{4,253}$)(?:(?![A-Za-z0-9]{2}--)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,63}"
)
_SPECIAL_USE_TLDS = frozenset(("arpa", "invalid", "local", "localhost", "onion", "test"))


def _plain_email(value: str) -> str | None:
    if len(value) > 254 or not value.isascii() or _PLAIN_EMAIL.fullmatch(value) is None:
        return None
    lowered = value.lower()
    if lowered.rpartition(".")[2] in _SPECIAL_USE_TLDS:
        return None
    return lowered


def normalise_email(value: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    plain = _plain_email(value)
    if plain is not None:
        return plain
    try:
        checked = validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        return None
    return checked.normalized.lower()


def normalise_phone(value: str, default_country: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    try:
        number = phonenumbers.parse(value, default_country or None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def plain_text(value: Any) -> str | None:
    """login/custom values: strings trimmed, numbers as integer text, other types unindexed."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return str(int(value))
    if isinstance(value, str):
        return value.strip() or None
    return None


def normalise(field: str, value: Any, default_country: str) -> str | None:
    """The normalised form of one identity, or None when it cannot be indexed."""
    if field == "email":
        return normalise_email(value) if isinstance(value, str) else None
    if field == "phone":
        text = plain_text(value)
        return normalise_phone(text, default_country) if text else None
    return plain_text(value)


def profile_indexes(
    profile: dict[str, Any], keyring: Keyring, default_country: str
) -> dict[str, bytes | None]:
    """Blind indexes of a profile's identities; rejects an email or phone that is not one."""
    indexes: dict[str, bytes | None] = {}
    for field in INDEX_FIELDS:
        raw = profile.get(field)
        if raw is None or raw == "":
            indexes[field] = None
            continue
        normalised = normalise(field, raw, default_country)
        if normalised is None:
            if field in ("email", "phone"):
                raise BadRequest(f"invalid {field}")
            indexes[field] = None
            continue
        indexes[field] = keyring.blind_index(field, normalised)
    return indexes


def lookup_index(field: str, identity: str, keyring: Keyring, default_country: str) -> bytes | None:
    """The blind index to search for a URL identity; None means nobody can match it."""
    normalised = normalise(field, identity, default_country)
    return keyring.blind_index(field, normalised) if normalised is not None else None
