"""Absolute deadlines from v2's time fields (``finaltime``, ``starttime``).

A value is a duration ``<digits>[smhdwy]`` (``m`` is minutes here, unlike v1's months; no
unit is seconds) counted from now, a Unix time in seconds, or an ISO-8601 date or date-time
(a date is 00:00 UTC). Whatever is asked, the result lies within 100 years of now, so no
time reaches the database that it cannot hold.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from databunker.config import MAX_DURATION_SECONDS
from databunker.errors import BadRequest

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
_DURATION = re.compile(r"(\d{1,12})([smhdwy])")
# Plain digits this large are a Unix time, not a number of seconds from now.
_UNIX_TIME_FROM = 100_000_000


def final_time(field: str, value: Any, now: int) -> int:
    """The absolute Unix time ``value`` names; 0 when absent."""
    if value is None or value == "" or value == 0:
        return 0
    at = _parse(field, value, now)
    if not (now - MAX_DURATION_SECONDS <= at <= now + MAX_DURATION_SECONDS):
        raise BadRequest(f"The {field} parameter has an incorrect format")
    return at


def _parse(field: str, value: Any, now: int) -> int:
    bad = BadRequest(f"The {field} parameter has an incorrect format")
    if isinstance(value, bool):
        raise bad
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return value if value >= _UNIX_TIME_FROM else now + value
    if not isinstance(value, str) or len(value) > 40:
        raise bad
    text = value.strip()
    if text.isascii() and text.isdigit():
        return _parse(field, int(text), now)
    duration = _DURATION.fullmatch(text)
    if duration is not None:
        return now + int(duration.group(1)) * UNITS[duration.group(2)]
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise bad from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())
