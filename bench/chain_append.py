"""What linking an audit event into the tamper-evident chain costs, per event.

    .venv/bin/python bench/chain_append.py [--events 500] [--rounds 15] [--postgres]

Writes the same events through ``audit_chain.append`` (digest, keyed link, lane head) and
through the insert of the release before the chain (``bench/unchained``), in alternating
rounds, and prints the fastest and the median round of each, in microseconds per event. On
SQLite a round is one transaction (as a group-commit batch); with ``--postgres`` (a
temporary server) each event has a transaction of its own, as each request there does.
Compare the difference with a request's CPU time in the benchmark (two cores / requests per
second) for the chain's share of a get-by-token request.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection

from databunker.crypto import Keyring, MasterKey
from databunker.services.context import system_clock
from databunker.services.system import initialise
from databunker.storage import Database, audit_chain

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
Append = Callable[[Connection, Mapping[str, Any]], None]


def _unlinked() -> Append:
    """The pre-chain insert, loaded without replacing ``audit_chain.append`` here."""
    linked = audit_chain.append
    spec = importlib.util.spec_from_file_location(
        "unchained", ROOT / "bench" / "unchained" / "sitecustomize.py"
    )
    if spec is None or spec.loader is None:
        raise SystemExit("bench/unchained/sitecustomize.py is missing")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    audit_chain.append = linked
    found: Append = module._append_unlinked
    return found


def _event() -> dict[str, Any]:
    return {
        "atoken": str(uuid.uuid4()),
        "created": 1_800_000_000,
        "user_token": str(uuid.uuid4()),
        "mode": "token",
        "who": b"w" * 60,
        "accessor": "root",
        "app": None,
        "title": "get user record by token",
        "status": "ok",
        "msg": None,
        "debug": None,
        "before": None,
        "after": b"a" * 200,
    }


@contextlib.contextmanager
def _database_url(postgres: bool, folder: str) -> Iterator[str]:
    if not postgres:
        yield f"sqlite:///{folder}/vault.db"
        return
    from support.postgres import TemporaryPostgres

    with TemporaryPostgres() as server:
        yield server.create_database("chain")


def _round(database: Database, append: Append, events: int, per_event: bool) -> float:
    """Microseconds per event of one round."""
    rows = [_event() for _ in range(events)]
    if per_event:
        started = time.perf_counter()
        for row in rows:
            with database.transaction() as conn:
                append(conn, row)
        return (time.perf_counter() - started) / events * 1e6
    with database.transaction() as conn:
        started = time.perf_counter()
        for row in rows:
            append(conn, row)
        elapsed = time.perf_counter() - started
    return elapsed / events * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="databunker-chain-") as folder,
        _database_url(args.postgres, folder) as url,
    ):
        database = Database(url)
        keyring = Keyring(MasterKey.generate())
        initialise(database, keyring, str(uuid.uuid4()), system_clock())
        audit_chain.attach(database, keyring.audit_chain_key)
        ways = {"linked (the chain)": audit_chain.append, "unlinked (before it)": _unlinked()}
        timings: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(args.rounds):
            for name, append in ways.items():
                timings[name].append(_round(database, append, args.events, args.postgres))
        database.dispose()
    for name, found in timings.items():
        print(f"{name}: fastest {min(found):.1f} µs, median {statistics.median(found):.1f} µs")


if __name__ == "__main__":
    main()
