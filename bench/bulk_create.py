"""How fast ``UserCreateBulk`` creates people: one started server, N calls of 4,000 users.

    .venv/bin/python bench/bulk_create.py [--db URL | --postgres] [--calls 5] [--size 4000]

With neither ``--db`` nor ``--postgres``, a temporary SQLite file; ``--postgres`` starts a
temporary PostgreSQL server (as the test suite does).

Prints users/s per call (wall time of the HTTP call, JSON encoding included) and overall.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx2 as httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.postgres import TemporaryPostgres
from support.server import ServerProcess, run_cli


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="")
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--size", type=int, default=4000)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    if args.postgres:
        with TemporaryPostgres() as server:
            run(server.create_database("bulk"), args.calls, args.size)
    else:
        run(args.db, args.calls, args.size)


def run(db: str, calls: int, size: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        url = db or f"sqlite:///{work}/bulk.db"
        result = run_cli(["init", "--db", url], cwd=work)
        values = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
        env = {
            "DATABUNKER_MASTERKEY": values["DATABUNKER_MASTERKEY"].strip(),
            "SERVER_WORKERS": "1",
        }
        with ServerProcess(["serve", "--db", url], env, cwd=work) as server:
            headers = {"X-Bunker-Token": values["DATABUNKER_ROOTTOKEN"].strip()}
            with httpx.Client(base_url=server.url, headers=headers, timeout=300) as client:
                total, elapsed = 0, 0.0
                for call in range(calls):
                    records = [
                        {
                            "profile": {
                                "email": f"u{call}-{i}@example.com",
                                "login": f"u{call}-{i}",
                                "name": "Bulk Person",
                            }
                        }
                        for i in range(size)
                    ]
                    started = time.perf_counter()
                    response = client.post("/v2/UserCreateBulk", json={"records": records})
                    took = time.perf_counter() - started
                    assert response.status_code == 200, response.text[:200]
                    assert len(response.json()["created"]) == size
                    total += size
                    elapsed += took
                    print(f"call {call + 1}: {size / took:,.0f} users/s")
                print(f"overall: {total / elapsed:,.0f} users/s ({total} users)")


if __name__ == "__main__":
    main()
