"""How people are addressed: lookup modes and the normalisation of indexed identities.

A profile is indexed by its top-level ``login``, ``email``, ``phone`` and ``custom`` values.
Each is normalised before it is hashed into a blind index, the same way whether it comes
from a stored profile or from a lookup URL, so ``Ann@Example.com`` and ``ann@example.com``
find the same person. The stored profile keeps the caller's original spelling.
"""

from __future__ import annotations

import re
import string
import unicodedata
from typing import Any

import phonenumbers
from email_validator import (
    SPECIAL_USE_DOMAIN_NAMES,
    EmailNotValidError,
    ValidatedEmail,
    validate_email,
)

from databunker.crypto import Keyring, is_uuid
from databunker.errors import BadRequest
from databunker.services.text import has_control_characters
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


# The canonical form of an email identity, the one its blind index is computed from:
#
# * the local part is Unicode NFC with only the ASCII letters A-Z folded to lower case, so
#   ``Ann@`` and ``ann@`` are one person, while a non-ASCII letter keeps its case and is never
#   folded into an ASCII one (``\u212aim@``, Kelvin sign, is not ``kim@``);
# * a local part holding a character that compatibility normalisation (NFKC) would change is
#   refused: ligatures (``\ufb01``), full-width and mathematical letters, the Kelvin and
#   Angstrom signs all read as another, plainer address;
# * the domain goes through IDNA with UTS-46 mapping (email-validator), lower case;
# * invisible and unsafe characters (zero-width spaces and joiners, controls) and trailing
#   dots are refused by email-validator's syntax check;
# * deliverability is not judged: reserved and special-use names (``example.test``,
#   ``host.local``, ``a.localhost``) are accepted like any other domain (which must have a dot).
#
# Look-alikes in other scripts (a Cyrillic "\u0456" for "i") are different addresses, and
# stay different people. A login code is only ever sent to the address stored in the
# person's record (services.login), never to a form derived from what a caller typed.

# Plain ASCII addresses that email-validator certainly accepts, and normalises to their
# lower-case form: a dot-atom local part of common characters; a domain of two or more
# letter-digit-hyphen labels, none an IDNA "xx--" label, ending in an alphabetic top-level
# domain. Anything else goes through email-validator, whose checks (IDNA, quoting, lengths)
# cost more than the rest of creating a user. A property test holds this shortcut to
# email-validator's answers.
_PLAIN_EMAIL = re.compile(
    r"(?=.{1,64}@)[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*"
    r"@(?=.{4,253}$)(?:(?![A-Za-z0-9]{2}--)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,63}"
)
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
# email-validator refuses these names; in a test environment it allows "test" alone, so a
# domain ending in another one is checked as if it ended in "test".
_SPECIAL_USE = frozenset(SPECIAL_USE_DOMAIN_NAMES)


def _plain_email(value: str) -> str | None:
    if len(value) > 254 or not value.isascii() or _PLAIN_EMAIL.fullmatch(value) is None:
        return None
    return value.lower()


def _compatibility_free(text: str) -> bool:
    """True when no character of ``text`` changes under NFKC on its own."""
    return all(char.isascii() or unicodedata.normalize("NFKC", char) == char for char in text)


def _validate(value: str) -> ValidatedEmail:
    local, _, domain = value.rpartition("@")
    labels = domain.rsplit(".", 1)
    special = unicodedata.normalize("NFKC", labels[-1]).lower()
    if len(labels) == 1 or special not in _SPECIAL_USE:
        return validate_email(value, check_deliverability=False)
    labels[-1] = "test"
    checked = validate_email(
        f"{local}@{'.'.join(labels)}", check_deliverability=False, test_environment=True
    )
    checked.domain = checked.domain.removesuffix("test") + special
    return checked


def normalise_email(value: str) -> str | None:
    """The canonical form of an email address (see above), or None when it is not one."""
    value = value.strip()
    if not value:
        return None
    plain = _plain_email(value)
    if plain is not None:
        return plain
    local = value.rpartition("@")[0]
    if not _compatibility_free(local):
        return None
    try:
        checked = _validate(value)
    except EmailNotValidError:
        return None
    return f"{checked.local_part.translate(_ASCII_LOWER)}@{checked.domain.lower()}"


def normalise_phone(value: str, default_country: str) -> str | None:
    """E.164 for a phone number written in ASCII (digits, ``+``, spaces, ``-``, ``()``...).

    Digits of other scripts (Arabic-Indic, full-width) are refused rather than read as
    ASCII ones, as compatibility characters are in email addresses: a number is stored and
    looked up only as it is written."""
    value = "".join(" " if unicodedata.category(char) == "Zs" else char for char in value)
    value = value.strip()
    if not value or not value.isascii():
        return None
    try:
        number = phonenumbers.parse(value, default_country or None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def _plain_login(value: str) -> str | None:
    """A login in NFC, or None when it holds a control, an invisible format character or one
    that compatibility normalisation would change: such a login looks like another."""
    value = value.strip()
    if not value:
        return None
    if value.isascii():
        return value if value.isprintable() else None
    if any(unicodedata.category(char) in ("Cc", "Cf", "Co", "Cs", "Cn") for char in value):
        return None
    return unicodedata.normalize("NFC", value) if _compatibility_free(value) else None


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
    if isinstance(value, str) and has_control_characters(value):
        return None  # never trimmed into another identity: ``ann@example.com\x1f``
    if field == "email":
        return normalise_email(value) if isinstance(value, str) else None
    if field == "phone":
        text = plain_text(value)
        return normalise_phone(text, default_country) if text else None
    if field == "login" and isinstance(value, str):
        return _plain_login(value)
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
            if field in ("email", "phone") or (
                field == "login" and isinstance(raw, str) and raw.strip()
            ):
                raise BadRequest(f"invalid {field}")
            indexes[field] = None
            continue
        indexes[field] = keyring.blind_index(field, normalised)
    return indexes


def lenient_indexes(
    profile: dict[str, Any], keyring: Keyring, default_country: str
) -> dict[str, bytes | None]:
    """``profile_indexes`` of a stored profile: an identity that is no longer accepted gets
    no index instead of refusing the whole profile."""
    indexes: dict[str, bytes | None] = {}
    for field in INDEX_FIELDS:
        raw = profile.get(field)
        normalised = normalise(field, raw, default_country) if raw not in (None, "") else None
        indexes[field] = keyring.blind_index(field, normalised) if normalised else None
    return indexes


def lookup_index(field: str, identity: str, keyring: Keyring, default_country: str) -> bytes | None:
    """The blind index to search for a URL identity; None means nobody can match it, as for
    one holding a control character: ``ann@example.com%00`` is never taken for the address
    without it (``normalise``)."""
    normalised = normalise(field, identity, default_country)
    return keyring.blind_index(field, normalised) if normalised is not None else None
