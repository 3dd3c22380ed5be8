"""Expiry times from request values, as Databunker v1 computes them (spec §4.3).

A requested duration is a JSON number or a string ``<digits>[smhd]`` (``m`` = 31 days). A
number larger than "now" is an absolute Unix time. The result is capped by a policy maximum.

Invariant: whatever a request asks for, a duration is at most ``MAX_DURATION_SECONDS`` (100
years) and an absolute time lies within 100 years of now; anything else is ``bad
expiration``, so no time reaches the database that it cannot hold.
"""

from __future__ import annotations

from typing import Any

from databunker.config import MAX_DURATION_SECONDS, parse_duration
from databunker.errors import BadRequest

BAD_EXPIRATION = "bad expiration"


def _duration_value(value: Any) -> str | int:
    """A JSON number or text as ``parse_duration`` takes it (a whole float as an integer)."""
    if isinstance(value, bool):
        raise BadRequest(BAD_EXPIRATION)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int | str):
        return value
    raise BadRequest(BAD_EXPIRATION)


def requested_seconds(value: Any, now: int) -> int:
    """Seconds from now for a requested ``expiration``; 0 when absent."""
    if value is None or value == "":
        return 0
    try:
        seconds = parse_duration(_duration_value(value), maximum=now + MAX_DURATION_SECONDS)
    except ValueError as exc:
        raise BadRequest(BAD_EXPIRATION) from exc
    if seconds > now:  # an absolute time
        seconds -= now
    if seconds > MAX_DURATION_SECONDS:
        raise BadRequest(BAD_EXPIRATION)
    return seconds


def requested_time(value: Any, now: int) -> int:
    """An absolute Unix time given as a JSON number: within 100 years of now, or 0 for none."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise BadRequest(BAD_EXPIRATION)
    if value == 0:
        return 0
    if value < 0 or abs(value - now) > MAX_DURATION_SECONDS:
        raise BadRequest(BAD_EXPIRATION)
    return int(value)


def capped_expiry(now: int, requested: Any, maximum_seconds: int) -> int:
    """The absolute expiry: the requested duration, never beyond the policy's maximum."""
    wanted = requested_seconds(requested, now)
    if wanted <= 0:
        return now + maximum_seconds
    return now + min(wanted, maximum_seconds)
