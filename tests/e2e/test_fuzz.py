"""Schemathesis against a started ``databunker serve``, on SQLite and PostgreSQL, from the
documents the server itself serves (``/v1/openapi.json``, ``/v2/openapi.json``).

Every operation gets a bounded number of generated requests (valid and invalid ones, from a
fixed seed), each sent with the root token, a person's own token and no token: no answer
may be a 5xx (schemathesis's ``not_a_server_error``) and none may take longer than
``REQUEST_TIMEOUT`` (a hang). Failures are collected, not shrunk, so one run reports them
all, each with a curl command that reproduces it.

``POST /v1/sys/seal`` is left out: sealing the vault is meant to make it answer 503.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from support.server import ServerProcess, run_cli

pytestmark = pytest.mark.e2e

SEED = 20261203
EXAMPLES_PER_MODE = int(os.environ.get("FUZZ_EXAMPLES_PER_MODE", "4"))
REQUEST_TIMEOUT = 10.0
LEFT_OUT = {("POST", "/v1/sys/seal")}


class Served:
    def __init__(self, server: ServerProcess, root_token: str) -> None:
        self.server = server
        self.root_token = root_token

    def person_token(self) -> str:
        """A new person's own access token (minted by root through v2)."""
        login = f"fuzz-{uuid.uuid4().hex[:12]}"
        headers = {"X-Bunker-Token": self.root_token}
        created = httpx.post(f"{self.server.url}/v1/user", json={"login": login}, headers=headers)
        assert created.status_code == 200, created.text
        minted = httpx.post(
            f"{self.server.url}/v2/XTokenCreateForUser",
            json={"mode": "login", "identity": login},
            headers=headers,
        )
        assert minted.status_code == 200, minted.text
        return str(minted.json()["xtoken"])


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[Served]:
    workdir = tmp_path / "work"
    workdir.mkdir()
    result = run_cli(["init", "--db", database_url], cwd=workdir)
    assert result.returncode == 0, result.stderr
    values = dict(
        line.split("=", 1) for line in result.stdout.splitlines() if line.startswith("DATABUNKER_")
    )
    env = {"DATABUNKER_MASTERKEY": values["DATABUNKER_MASTERKEY"].strip()}
    with ServerProcess(["serve", "--db", database_url], env, cwd=workdir) as server:
        yield Served(server, values["DATABUNKER_ROOTTOKEN"].strip())
        stderr = server.stderr
    assert "Traceback" not in stderr


def fuzz_operation(
    served: Served, operation: Any, failures: list[str], seen: dict[str, set[int]]
) -> None:
    callers = {
        "root": served.root_token,
        "person": served.person_token(),
        "none": None,
    }
    base_url = served.server.url
    session = requests.Session()

    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_MODE,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @seed(SEED)
        def run(case: Any) -> None:
            for caller, token in callers.items():
                headers = {"X-Bunker-Token": token} if token is not None else {}
                try:
                    response = case.call(
                        base_url=base_url,
                        session=session,
                        headers=headers,
                        timeout=REQUEST_TIMEOUT,
                    )
                except requests.Timeout:
                    failures.append(f"hang ({caller}): {case.as_curl_command(headers)}")
                    continue
                seen[caller].add(response.status_code // 100)
                try:
                    case.validate_response(response, checks=[not_a_server_error])
                    server_error = response.status_code >= 500
                except Exception:
                    server_error = True
                if server_error:
                    failures.append(
                        f"{response.status_code} ({caller}) {response.text[:200]}: "
                        f"{case.as_curl_command(headers, base_url=base_url)}"
                    )

        try:
            run()
        except Unsatisfiable:
            # Nothing invalid can be made of an operation with no parameters and no body.
            assert mode is GenerationMode.NEGATIVE
    session.close()


@pytest.mark.parametrize("wire", ["v1", "v2"])
def test_no_server_error_and_no_hang(served: Served, wire: str) -> None:
    schema = schemathesis.openapi.from_url(f"{served.server.url}/{wire}/openapi.json")
    failures: list[str] = []
    # The classes of status (2 for 2xx, ...) each caller was answered: the fuzz reaches the
    # operations themselves, not only their refusals.
    seen: dict[str, set[int]] = {"root": set(), "person": set(), "none": set()}
    fuzzed = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in LEFT_OUT:
            continue
        fuzz_operation(served, operation, failures, seen)
        fuzzed += 1
    assert fuzzed >= 40
    assert failures == []
    assert {2, 4} <= seen["root"]
    assert {2, 4} <= seen["person"]
    assert 4 in seen["none"]
