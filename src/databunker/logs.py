"""Structured logs: one JSON object a line, with an allow-list of fields.

Only the fields named here leave the process, so a stray ``extra=`` carrying a value from a
request cannot put personal data into the log.
"""

from __future__ import annotations

import logging
import sys
import time

import orjson

ALLOWED_FIELDS = (
    "method",
    "route",
    "status",
    "duration_ms",
    "error_type",
    "event",
    # a value that cannot be decrypted: its kind ("users.profile") and its row's id (a token)
    "kind",
    "row",
)


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for field in ALLOWED_FIELDS:
            value = record.__dict__.get(field)
            if value is not None:
                entry[field] = value
        return orjson.dumps(entry).decode()


def configure(level: str = "INFO", access_log: bool = True) -> None:
    # The formatter uses none of what the logging module would otherwise gather for every
    # record (the caller's file and line, thread, process): not gathering it is the
    # optimisation the logging HOWTO recommends, and it matters with a line per request.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("databunker.access").setLevel("INFO" if access_log else "WARNING")
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).disabled = True
