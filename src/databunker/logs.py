"""Structured logs: one JSON object a line, with an allow-list of fields.

Only the fields named here leave the process, so a stray ``extra=`` carrying a value from a
request cannot put personal data into the log.
"""

from __future__ import annotations

import logging
import sys
import time

import orjson

from databunker.tracing import CURRENT

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
    def __init__(self) -> None:
        super().__init__()
        # The timestamp's date and time of day, formatted once per second (a line per
        # request would otherwise format it each time).
        self._second = -1
        self._second_text = ""

    def _timestamp(self, created: float, msecs: float) -> str:
        second = int(created)
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._second_text}.{int(msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": self._timestamp(record.created, record.msecs),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for field in ALLOWED_FIELDS:
            value = record.__dict__.get(field)
            if value is not None:
                entry[field] = value
        ids = CURRENT.get()
        if ids is not None:
            entry["request_id"] = ids.request_id
            entry["trace_id"] = ids.trace_id
        return orjson.dumps(entry).decode()


class ServerLogNames(logging.Filter):
    """Names uvicorn's own lines for what they are about: the server's life (start, stop,
    a port in use) is ``databunker.server``, not ``uvicorn.error``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "uvicorn.error" or record.name == "uvicorn":
            record.name = "databunker.server"
        return True


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
    handler.addFilter(ServerLogNames())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("databunker.access").setLevel("INFO" if access_log else "WARNING")
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).disabled = True
