"""What linking an audit event into the tamper-evident chain costs, per event, on SQLite.

    .venv/bin/python bench/chain_append.py [--events 500] [--rounds 15]

Writes the same events through ``audit_chain.append`` (digest, keyed link, lane head) and
through the insert of the release before the chain (``bench/unchained``), in alternating
rounds of one transaction each, and prints the fastest and the median round of each, in
microseconds per event. Compare the difference with a request's CPU time in the benchmark
(two cores / requests per second) for the chain's share of a get-by-token request.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection

from databunker.crypto import Keyring, MasterKey
from databunker.services.context import system_clock
from databunker.services.system import initialise
from databunker.storage import Database, audit_chain

ROOT = Path(__file__).resolve().parents[1]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="databunker-chain-") as folder:
        database = Database(f"sqlite:///{folder}/vault.db")
        keyring = Keyring(MasterKey.generate())
        initialise(database, keyring, str(uuid.uuid4()), system_clock())
        audit_chain.attach(database, keyring.audit_chain_key)
        ways = {"linked (the chain)": audit_chain.append, "unlinked (before it)": _unlinked()}
        timings: dict[str, list[float]] = {name: [] for name in ways}
        for _round in range(args.rounds):
            for name, append in ways.items():
                events = [_event() for _ in range(args.events)]
                with database.transaction() as conn:
                    started = time.perf_counter()
                    for event in events:
                        append(conn, event)
                    elapsed = time.perf_counter() - started
                timings[name].append(elapsed / args.events * 1e6)
        database.dispose()
    for name, found in timings.items():
        print(f"{name}: fastest {min(found):.1f} µs, median {statistics.median(found):.1f} µs")


if __name__ == "__main__":
    main()
