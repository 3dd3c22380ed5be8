"""Normalisation of the identities a person is looked up by."""

from __future__ import annotations

import pytest

from databunker.crypto import Keyring, MasterKey
from databunker.errors import BadRequest
from databunker.services.identity import (
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
