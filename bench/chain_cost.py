"""What the tamper-evident audit chain costs a get-by-token request, counted in CPU
instructions (valgrind's callgrind), which a busy machine does not blur.

    bench/chain_cost.py [--requests 400]

Runs ``bench/_get_by_token.py`` four times under callgrind: with the chain and without it
(``bench/unchained``: events inserted as before the chain existed), each with N and 2N
requests. The difference between the 2N and the N run is the cost of N requests, start-up
excluded. The requests go straight into the ASGI app (no HTTP server, no socket), so the
share of the chain printed is larger than it is behind uvicorn: an upper bound.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = str(ROOT / ".venv" / "bin" / "python")


def instructions(requests: int, chain: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="databunker-chain-") as folder:
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        if not chain:
            env["PYTHONPATH"] = str(ROOT / "bench" / "unchained")
        out = Path(folder) / "callgrind.out"
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                PYTHON,
                str(ROOT / "bench" / "_get_by_token.py"),
                str(requests),
                folder,
            ],
            env=env,
            check=True,
            capture_output=True,
        )
        summary = re.search(rb"^summary: (\d+)", out.read_bytes(), re.MULTILINE)
        if summary is None:
            raise SystemExit("callgrind wrote no summary")
        return int(summary.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    n = args.requests
    per_request = {}
    for chain in (True, False):
        small, large = instructions(n, chain), instructions(2 * n, chain)
        per_request[chain] = (large - small) / n
        label = "with the chain" if chain else "without it"
        print(f"{label}: {per_request[chain]:,.0f} instructions per get-by-token", file=sys.stderr)
    share = per_request[True] / per_request[False] - 1
    print(f"the chain adds {share:.1%} to a get-by-token request (ASGI app, no server)")


if __name__ == "__main__":
    main()
