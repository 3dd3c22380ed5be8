"""Expiry times from request values, as Databunker v1 computes them (spec §4.3).

A requested duration is a JSON number or a string ``<digits>[smhd]`` (``m`` = 31 days). A
number larger than "now" is an absolute Unix time. The result is capped by a policy maximum.
"""

from __future__ import annotations

from typing import Any

from databunker.config import parse_duration
from databunker.errors import BadRequest


def requested_seconds(value: Any, now: int) -> int:
    """Seconds from now for a requested ``expiration``; 0 when absent."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise BadRequest("bad expiration")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    try:
        seconds = parse_duration(value)
    except (ValueError, TypeError) as exc:
        raise BadRequest("bad expiration") from exc
    if seconds > now:
        seconds = max(seconds - now, 0)
    return seconds


def capped_expiry(now: int, requested: Any, maximum_seconds: int) -> int:
    """The absolute expiry: the requested duration, never beyond the policy's maximum."""
    wanted = requested_seconds(requested, now)
    if wanted <= 0:
        return now + maximum_seconds
    return now + min(wanted, maximum_seconds)
