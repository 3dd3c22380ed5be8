"""Expiry arithmetic of sessions, shared records, retention and agreements, and its bounds."""

from __future__ import annotations

import pytest

from databunker.config import MAX_DURATION_SECONDS, parse_duration
from databunker.errors import BadRequest
from databunker.services.durations import capped_expiry, requested_seconds, requested_time

NOW = 1_800_000_000
YEAR = 366 * 86400


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, 0),
        ("", 0),
        ("30", 30),
        (30, 30),
        (30.0, 30),
        ("2h", 7200),
        ("1d", 86400),
        ("1m", 31 * 86400),
        ("10s", 10),
        (NOW + 60, 60),
        (str(NOW + 60), 60),
        (NOW - 5, NOW - 5),
    ],
)
def test_requested_seconds(value: object, seconds: int) -> None:
    assert requested_seconds(value, NOW) == seconds


@pytest.mark.parametrize("value", ["1x", "-5", "h", "²", "٣", True, [1], {"a": 1}, 1.5])
def test_bad_expirations_are_bad_requests(value: object) -> None:
    with pytest.raises(BadRequest, match="bad expiration"):
        requested_seconds(value, NOW)


def test_capped_expiry() -> None:
    assert capped_expiry(NOW, None, 3600) == NOW + 3600
    assert capped_expiry(NOW, "30m", 3600) == NOW + 3600
    assert capped_expiry(NOW, "10s", 3600) == NOW + 10
    assert capped_expiry(NOW, NOW + 100, 3600) == NOW + 100


def test_the_bound_is_a_hundred_years() -> None:
    assert MAX_DURATION_SECONDS == 100 * YEAR


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (NOW + MAX_DURATION_SECONDS, MAX_DURATION_SECONDS),  # an absolute time 100 years ahead
        (str(NOW + MAX_DURATION_SECONDS), MAX_DURATION_SECONDS),
        (float(NOW + MAX_DURATION_SECONDS), MAX_DURATION_SECONDS),
        # v1 reads any duration beyond now as an absolute time, with units too
        ("36600d", MAX_DURATION_SECONDS - NOW),
    ],
)
def test_a_hundred_years_is_accepted(value: object, seconds: int) -> None:
    assert requested_seconds(value, NOW) == seconds


@pytest.mark.parametrize(
    "value",
    [
        "99999999999999999999d",
        "9" * 5000,
        "9" * 5000 + "d",
        10**30,
        1e30,
        1e300,
        -1,
        "-5",
        NOW + MAX_DURATION_SECONDS + 1,
        str(NOW + MAX_DURATION_SECONDS + 1),
        NOW + 200 * YEAR,
        f"{2 * MAX_DURATION_SECONDS // 86400}d",
    ],
)
def test_beyond_a_hundred_years_is_a_bad_expiration(value: object) -> None:
    with pytest.raises(BadRequest, match=r"^bad expiration$"):
        requested_seconds(value, NOW)
    with pytest.raises(BadRequest, match=r"^bad expiration$"):
        capped_expiry(NOW, value, 3600)


def test_capped_expiry_reaches_a_hundred_years_when_the_policy_allows() -> None:
    assert capped_expiry(NOW, NOW + MAX_DURATION_SECONDS, MAX_DURATION_SECONDS) == (
        NOW + MAX_DURATION_SECONDS
    )


@pytest.mark.parametrize(
    ("value", "time"),
    [
        (0, 0),
        (0.0, 0),
        (NOW, NOW),
        (NOW - 60, NOW - 60),
        (1, 1),
        (NOW + MAX_DURATION_SECONDS, NOW + MAX_DURATION_SECONDS),
        (float(NOW + 60), NOW + 60),
    ],
)
def test_requested_time(value: object, time: int) -> None:
    assert requested_time(value, NOW) == time


@pytest.mark.parametrize(
    "value",
    [-1, -1.5, NOW + MAX_DURATION_SECONDS + 1, NOW + 200 * YEAR, 10**30, 1e300, True, "1", None],
)
def test_requested_times_beyond_a_hundred_years_are_bad_expirations(value: object) -> None:
    with pytest.raises(BadRequest, match=r"^bad expiration$"):
        requested_time(value, NOW)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (MAX_DURATION_SECONDS, MAX_DURATION_SECONDS),
        (f"{MAX_DURATION_SECONDS}", MAX_DURATION_SECONDS),
        (f"{MAX_DURATION_SECONDS}s", MAX_DURATION_SECONDS),
        ("36600d", MAX_DURATION_SECONDS),
        ("878400h", MAX_DURATION_SECONDS),
        ("00000000000000000000000001h", 3600),
    ],
)
def test_parse_duration_takes_up_to_a_hundred_years(value: str | int, seconds: int) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    "value",
    [
        MAX_DURATION_SECONDS + 1,
        "36601d",
        "1181m",
        "99999999999999999999d",
        "9" * 5000,
        10**30,
    ],
)
def test_parse_duration_refuses_more_than_a_hundred_years(value: str | int) -> None:
    with pytest.raises(ValueError, match=r"^invalid duration: longer than 100 years$"):
        parse_duration(value)
