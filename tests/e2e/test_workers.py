"""``databunker serve --workers N``: several processes answer on one port as one vault."""

from __future__ import annotations

import re
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx
import pytest

from support.server import ServerProcess, run_cli

pytestmark = pytest.mark.e2e

WORKERS = 2
PEOPLE = 120


def children_of(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in found]


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


@pytest.fixture
def initialised(database_url: str, tmp_path: Path) -> tuple[dict[str, str], str]:
    result = run_cli(["init", "--db", database_url], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    values = dict(
        line.split("=", 1) for line in result.stdout.splitlines() if line.startswith("DATABUNKER_")
    )
    return {"DATABUNKER_MASTERKEY": values["DATABUNKER_MASTERKEY"]}, values["DATABUNKER_ROOTTOKEN"]


def test_workers_serve_one_vault(
    database_url: str, tmp_path: Path, initialised: tuple[dict[str, str], str]
) -> None:
    env, root = initialised
    args = ["serve", "--db", database_url, "--workers", str(WORKERS)]
    with ServerProcess(args, env, cwd=tmp_path) as server:
        workers = [pid for pid in children_of(server.pid) if "spawn_main" in _command_line(pid)]
        assert len(workers) == WORKERS

        def create(number: int) -> str:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                answer = client.post(
                    "/v1/user",
                    json={"email": f"person{number}@example.com", "name": f"Person {number}"},
                    headers={"X-Bunker-Token": root},
                )
            assert answer.status_code == 200, answer.text
            token: str = answer.json()["token"]
            return token

        with ThreadPoolExecutor(max_workers=16) as pool:
            tokens = list(pool.map(create, range(PEOPLE)))
        assert len(set(tokens)) == PEOPLE

        with httpx.Client(base_url=server.url, timeout=30) as client:
            headers = {"X-Bunker-Token": root}
            # Every person reads back through any worker; a duplicate is refused by any.
            for number in (0, PEOPLE // 2, PEOPLE - 1):
                found = client.get(f"/v1/user/email/person{number}@example.com", headers=headers)
                assert found.json()["token"] == tokens[number]
            again = client.post("/v1/user", json={"email": "person7@example.com"}, headers=headers)
            assert again.status_code == 409
            # The metrics of every worker add up, whichever worker answers.
            metrics = client.get("/v1/metrics").text
        created = re.search(
            r'databunker_http_requests_total\{method="POST",route="/v1/user",status="200"\} (\S+)',
            metrics,
        )
        assert created is not None, metrics
        assert float(created.group(1)) == PEOPLE

    assert server.returncode in (0, -signal.SIGTERM)
    assert not any(alive(pid) for pid in workers)


def _command_line(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


@pytest.mark.parametrize("workers", ["0", "-1", "65"])
def test_a_worker_count_out_of_range_is_refused(
    database_url: str, tmp_path: Path, initialised: tuple[dict[str, str], str], workers: str
) -> None:
    env, _root = initialised
    result = run_cli(["serve", "--db", database_url, "--workers", workers], env, cwd=tmp_path)
    assert result.returncode == 1
    assert "--workers must be between 1 and 64" in result.stderr
