"""The JSON log lines: their timestamps, one per record, to the millisecond."""

from __future__ import annotations

import logging
import time

import orjson

from databunker.logs import JSONFormatter


def line(formatter: JSONFormatter, created: float) -> dict[str, object]:
    record = logging.LogRecord("databunker.access", logging.INFO, "", 0, "request", (), None)
    record.created = created
    record.msecs = (created - int(created)) * 1000
    return dict(orjson.loads(formatter.format(record)))


def test_each_line_carries_its_own_time_to_the_millisecond_across_seconds() -> None:
    formatter = JSONFormatter()
    start = time.mktime((2026, 12, 3, 17, 59, 59, 0, 0, 0)) - time.timezone
    stamps = [line(formatter, start + offset)["ts"] for offset in (0.25, 0.75, 1.0, 1.5, 0.5)]
    assert stamps == [
        "2026-12-03T17:59:59.250Z",
        "2026-12-03T17:59:59.750Z",
        "2026-12-03T18:00:00.000Z",
        "2026-12-03T18:00:00.500Z",
        "2026-12-03T17:59:59.500Z",  # an older record after a newer one
    ]
