"""What ``databunker demo`` tells the person who started it: where to go, and how to get in."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from support.server import ServerProcess

pytestmark = pytest.mark.e2e

BANNER_TIMEOUT = 10.0


def banner(server: ServerProcess) -> list[str]:
    """The demo's banner lines on stdout, once it has printed them all."""
    deadline = time.monotonic() + BANNER_TIMEOUT
    while True:
        lines = server.stdout.splitlines()
        if any(line.startswith("Stop it with Ctrl+C") for line in lines):
            return lines
        assert time.monotonic() < deadline, f"no banner on stdout: {server.stdout!r}"
        time.sleep(0.05)


def test_the_demo_says_where_to_go_and_how_to_sign_in(tmp_path: Path) -> None:
    with ServerProcess(["demo"], cwd=tmp_path) as server:
        lines = banner(server)

    base = f"http://127.0.0.1:{server.port}"
    assert lines == [
        f"Databunker demo is running at {base}",
        f"  API base URL:   {base}/v1/  (header X-Bunker-Token: DEMO)",
        f"  privacy portal: {base}/  (sign in with the email or phone of a user you created; "
        "the login code is 4444)",
        f"  admin portal:   {base}/admin  (root token DEMO)",
        "Stop it with Ctrl+C; its data is deleted then.",
    ]
