"""The benchmark runs end to end: one short wrk run per scenario, every answer a success.

No timing is asserted: this only proves that ``bench/run`` works on this machine.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
@pytest.mark.timeout(180)
def run_bench(results: Path, *options: str) -> tuple[str, list[dict[str, Any]]]:
    """A short ``bench.py`` run: what it printed, and the results it wrote."""
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "bench.py"),
            "--seconds=1",
            "--users=50",
            "--connections=4",
            "--import-users=300",
            f"--results={results}",
            *options,
        ],
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    [raw] = list(results.glob("*.json"))
    return done.stdout, json.loads(raw.read_text())["results"]


def test_the_benchmark_measures_every_scenario_without_errors(tmp_path: Path) -> None:
    printed, results = run_bench(tmp_path)
    assert [r["scenario"] for r in results] == [
        "minimal: bare Starlette route",
        "minimal: vault stack, /v1/sys/uiconfiguration",
        "create user",
        "get user by token",
        "get user by email",
        "update user",
        "session create+get",
        "bulk import (CLI), 300 users (users/s)",
    ]
    for result in results[:-1]:
        assert result["requests_per_second"] > 0, result
        assert result["errors"] == 0, result
        assert result["rss_max_mb"] > 0, result
    assert results[-1]["requests_per_second"] > 0
    assert "| sqlite | get user by token |" in printed


@pytest.mark.timeout(180)
def test_the_server_database_rows_run_two_instances_behind_haproxy(tmp_path: Path) -> None:
    _, results = run_bench(tmp_path, "--db=postgresql", "--only=get user by token")
    assert [r["scenario"] for r in results] == [
        "minimal: bare Starlette route",
        "get user by token",
        "2 instances behind haproxy: get user by token",
    ]
    for result in results:
        assert result["requests_per_second"] > 0, result
        assert result["errors"] == 0, result


@pytest.mark.timeout(120)
def test_the_postgresql_cost_per_request_is_counted() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "pg_cost.py"), "--requests=20"],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["get user by token", "create user"]
    for line in lines:
        statements = float(line.split(": ")[1].split(" statements")[0])
        assert statements >= 2  # at least the token and the record (and, writing, more)
        assert "round trips" in line
        assert "µs server CPU per request" in line
