"""The benchmark runs end to end: one short wrk run per scenario, every answer a success.

No timing is asserted: this only proves that ``bench/run`` works on this machine.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
@pytest.mark.timeout(180)
def test_the_benchmark_measures_every_scenario_without_errors(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "bench.py"),
            "--seconds=1",
            "--users=50",
            "--connections=4",
            f"--results={tmp_path}",
        ],
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    [raw] = list(tmp_path.glob("*.json"))
    results = json.loads(raw.read_text())["results"]
    assert [r["scenario"] for r in results] == [
        "minimal: bare Starlette route",
        "minimal: vault stack, /v1/sys/uiconfiguration",
        "create user",
        "get user by token",
        "get user by email",
        "update user",
        "session create+get",
    ]
    for result in results:
        assert result["requests_per_second"] > 0, result
        assert result["errors"] == 0, result
        assert result["rss_max_mb"] > 0, result
    assert "| sqlite | get user by token |" in done.stdout
