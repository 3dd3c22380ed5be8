"""Expiry arithmetic of sessions, shared records and retention."""

from __future__ import annotations

import pytest

from databunker.errors import BadRequest
from databunker.services.durations import capped_expiry, requested_seconds

NOW = 1_800_000_000


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
