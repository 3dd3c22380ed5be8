"""Bulk import and export of user records as JSON lines, for operators.

Import reads one profile object per line and creates the users in batches, one transaction
per batch, through the same service as ``POST /v1/user`` (validation, lookup indexes,
uniqueness, webhooks). A line that cannot be imported (bad JSON, not an object, no lookup
field, a duplicate) is reported by its line number and skipped; messages never repeat the
line's content. Export streams ``{"token": ..., "profile": {...}}`` per line for every user
who is not erased, reading in batches of ascending token.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import sqlalchemy as sa

from databunker.errors import DatabunkerError
from databunker.jobs import SYSTEM
from databunker.services import records
from databunker.services import users as user_service
from databunker.services.context import Context, Work
from databunker.storage.prepared import savepoint
from databunker.storage.repositories import UserRow
from databunker.storage.tables import users as users_table

BATCH_SIZE = 500
# How many skipped lines are reported one by one; the rest are only counted.
MAX_REPORTED_ERRORS = 100


@dataclass(slots=True)
class ImportReport:
    created: int = 0
    skipped: int = 0
    # (line number, reason) for the first MAX_REPORTED_ERRORS skipped lines.
    errors: list[tuple[int, str]] = field(default_factory=list)
    seconds: float = 0.0

    def skip(self, line_number: int, reason: str) -> None:
        self.skipped += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append((line_number, reason))


class Progress:
    """A one-line progress display on a stream (rewritten in place on a terminal)."""

    def __init__(self, stream: IO[str] | None, verb: str) -> None:
        self.stream = stream
        self.verb = verb
        self.started = time.monotonic()
        self.tty = bool(stream is not None and stream.isatty())

    def show(self, done: int, skipped: int = 0, *, final: bool = False) -> None:
        if self.stream is None:
            return
        elapsed = max(time.monotonic() - self.started, 1e-9)
        line = f"{self.verb} {done} users"
        if skipped:
            line += f", skipped {skipped} lines"
        line += f" ({done / elapsed:,.0f}/s)"
        if self.tty:
            self.stream.write("\r" + line + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def _parse(line: str) -> dict[str, Any] | str:
    """The profile on one line, or the reason it is refused (never containing the data)."""
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):
        return "not valid JSON"
    if not isinstance(value, dict):
        return "not a JSON object"
    if not value:
        return "empty object"
    return value


def _numbered(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(lines, start=1):
        if line.strip():
            yield number, line


def _batches(lines: Iterable[str], size: int) -> Iterator[list[tuple[int, str]]]:
    batch: list[tuple[int, str]] = []
    for item in _numbered(lines):
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def import_users(
    vault: Context,
    lines: Iterable[str],
    *,
    batch_size: int = BATCH_SIZE,
    progress: IO[str] | None = None,
) -> ImportReport:
    """Create a user for every good line; one transaction per batch of lines.

    A batch's profiles are first written together (one statement for all their rows); if
    any of them is refused, that attempt is undone and the batch goes line by line, so
    each refused line is skipped with its own reason and the others are created."""
    report = ImportReport()
    display = Progress(progress, "imported")
    started = time.monotonic()
    for batch in _batches(lines, batch_size):
        with vault.database.transaction() as conn:
            work = Work(vault, conn, SYSTEM, vault.clock())
            profiles: list[tuple[int, dict[str, Any]]] = []
            for number, line in batch:
                parsed = _parse(line)
                if isinstance(parsed, str):
                    report.skip(number, parsed)
                else:
                    profiles.append((number, parsed))
            if _create_together(work, [profile for _, profile in profiles]):
                report.created += len(profiles)
            else:
                for number, profile in profiles:
                    try:
                        # A savepoint keeps the batch usable when the database refuses a row.
                        with savepoint(conn):
                            user_service.create_user(work, profile)
                    except DatabunkerError as exc:
                        report.skip(number, exc.message)
                        continue
                    report.created += 1
        display.show(report.created, report.skipped)
    report.seconds = time.monotonic() - started
    display.show(report.created, report.skipped, final=True)
    return report


def _create_together(work: Work, profiles: list[dict[str, Any]]) -> bool:
    """Create every profile at once, by v1's rules; False (and nothing kept) if any is refused."""
    if not profiles:
        return True
    try:
        with savepoint(work.conn, "together"):
            user_service.create_users(work, profiles, require_lookup=True)
    except DatabunkerError:
        return False
    return True


_USER_COLUMNS = (
    users_table.c.token,
    users_table.c.data_key,
    users_table.c.profile,
    users_table.c.version,
    users_table.c.created,
    users_table.c.erased,
)


def export_users(
    vault: Context,
    out: IO[str],
    *,
    batch_size: int = BATCH_SIZE,
    progress: IO[str] | None = None,
) -> int:
    """Write one ``{"token", "profile"}`` line per user who is not erased; return the count.

    Users are read in ascending token order, a batch per short transaction, so the export
    holds no lock for long and uses memory for one batch only.
    """
    display = Progress(progress, "exported")
    exported = 0
    after = ""
    while True:
        query = (
            sa.select(*_USER_COLUMNS)
            .where(users_table.c.token > after, users_table.c.erased.is_(None))
            .order_by(users_table.c.token)
            .limit(batch_size)
        )
        with vault.database.transaction() as conn:
            rows = [UserRow(**row._mapping) for row in conn.execute(query)]
            work = Work(vault, conn, SYSTEM, vault.clock())
            for row in rows:
                key, profile = records.open_user(work, row)
                if key is None:
                    continue
                record = {"token": row.token, "profile": profile}
                out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
                exported += 1
        if not rows:
            break
        after = rows[-1].token
        display.show(exported)
    display.show(exported, final=True)
    return exported
