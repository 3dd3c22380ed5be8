"""Normalisation of the identities a person is looked up by."""

from __future__ import annotations

from unittest import mock

import email_validator
import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from databunker.crypto import Keyring, MasterKey
from databunker.errors import BadRequest
from databunker.services.identity import (
    _plain_email,
    lookup_index,
    normalise,
    normalise_email,
    normalise_phone,
    parse_mode,
    profile_indexes,
    require_uuid,
)

KEYRING = Keyring(MasterKey(bytes(range(32))))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Ann@Example.com", "ann@example.com"),
        ("  ann@example.com  ", "ann@example.com"),
        ("ANN+news@EXAMPLE.COM", "ann+news@example.com"),
        ("not-an-email", None),
        ("", None),
        ("a@b", None),
    ],
)
def test_email_is_validated_trimmed_and_lower_cased(raw: str, expected: str | None) -> None:
    assert normalise_email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("07700 900123", "GB", "+447700900123"),
        ("+44 7700 900123", "GB", "+447700900123"),
        ("+44 (0) 7700-900123", "US", "+447700900123"),
        ("(201) 555-0123", "US", "+12015550123"),
        ("12", "GB", None),
        ("phone", "GB", None),
        ("", "GB", None),
    ],
)
def test_phone_becomes_e164(raw: str, country: str, expected: str | None) -> None:
    assert normalise_phone(raw, country) == expected


@pytest.mark.parametrize(
    ("field", "raw", "expected"),
    [
        ("login", "  ann ", "ann"),
        ("login", 123, "123"),
        ("login", 1.9, "1"),
        ("login", True, None),
        ("login", None, None),
        ("login", {"x": 1}, None),
        ("custom", " Key-1 ", "Key-1"),
        ("phone", 447700900123, "+447700900123"),
        ("email", 42, None),
    ],
)
def test_login_custom_and_numbers(field: str, raw: object, expected: str | None) -> None:
    assert normalise(field, raw, "GB") == expected


def test_profile_indexes_match_lookup_indexes() -> None:
    indexes = profile_indexes(
        {"email": "Ann@Example.com", "phone": "07700 900123", "login": "ann", "name": "Ann"},
        KEYRING,
        "GB",
    )
    assert indexes["email"] == lookup_index("email", "ANN@example.COM", KEYRING, "GB")
    assert indexes["phone"] == lookup_index("phone", "+447700900123", KEYRING, "GB")
    assert indexes["login"] == lookup_index("login", "ann", KEYRING, "GB")
    assert indexes["custom"] is None


@pytest.mark.parametrize("profile", [{"email": "nope"}, {"phone": "call me"}])
def test_profile_with_a_bad_email_or_phone_is_refused(profile: dict[str, str]) -> None:
    with pytest.raises(BadRequest, match="invalid"):
        profile_indexes(profile, KEYRING, "GB")


def test_unindexable_lookup_finds_nobody() -> None:
    assert lookup_index("email", "not-an-email", KEYRING, "GB") is None


def test_modes_and_uuids() -> None:
    assert parse_mode("email") == "email"
    with pytest.raises(BadRequest, match="bad mode"):
        parse_mode("EMAIL")
    with pytest.raises(BadRequest, match="bad uuid"):
        require_uuid("1234")


# Addresses near the edge of the shortcut: dots, hyphens, digits, IDNA prefixes, special
# names, odd characters and lengths.
NEAR_PLAIN_EMAILS = st.from_regex(
    r"[A-Za-z0-9._%+\-!#'=~]{0,70}@([A-Za-z0-9\-_]{0,12}\.){0,4}"
    r"(xn--[a-z0-9]{1,6}|local|test|arpa|onion|invalid|localhost|[A-Za-z0-9\-]{0,8})\.?",
    fullmatch=True,
) | st.from_regex(
    # Mostly plain ones, so that the shortcut's own answers are checked often.
    r"[A-Za-z0-9_%+\-]{1,10}(\.[A-Za-z0-9_%+\-]{1,6}){0,2}@"
    r"([A-Za-z0-9][A-Za-z0-9\-]{0,6}\.){1,3}([A-Za-z]{2,6}|local|test|[a-z0-9]{2,4})",
    fullmatch=True,
)


def _validated(address: str) -> str | None:
    """email-validator's answer with no name reserved: deliverability is not judged."""
    try:
        with mock.patch.object(email_validator, "SPECIAL_USE_DOMAIN_NAMES", []):
            checked = validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return None
    return checked.normalized.lower()


@settings(max_examples=3000, deadline=None)
@given(NEAR_PLAIN_EMAILS)
def test_the_plain_email_shortcut_agrees_with_email_validator(address: str) -> None:
    shortcut = _plain_email(address)
    if shortcut is not None:
        assert shortcut == _validated(address)
    assert normalise_email(address) == _validated(address.strip())


def test_the_plain_email_shortcut_takes_common_addresses() -> None:
    for address in ("Ann.Smith@Example.com", "a+b@mail.example.co.uk", "x_y-z@a1.io"):
        assert _plain_email(address) == address.lower() == _validated(address)
    for address in ("a@xn--bcher-kva.com", "a..b@x.com", "a@x.123", "ä@x.com"):
        assert _plain_email(address) is None
