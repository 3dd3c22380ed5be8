"""Two ``databunker serve`` instances on one PostgreSQL database behind haproxy (round
robin, keep-alive) keep every guarantee under concurrent load: one person per created
token, a rate limit counted once across both, sessions readable through either, each
webhook delivered once per event, and each expiry (the periodic job runs on both) done once.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx
import pytest

from databunker.services.login import PRELOGIN_LIMITS
from support.postgres import TemporaryPostgres
from support.receiver import Receiver
from support.server import ServerProcess, free_port, run_cli

pytestmark = pytest.mark.e2e

PEOPLE = 40
CALLERS = 16
HAPROXY = """global
    maxconn 1024
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    option http-keep-alive
frontend vault
    bind 127.0.0.1:{port}
    default_backend instances
backend instances
    balance roundrobin
{servers}
"""


def _haproxy() -> str:
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")
    assert found, "haproxy is missing: scripts/test installs it"
    return found


@pytest.fixture
def balanced(
    postgres_server: TemporaryPostgres, tmp_path: Path
) -> Iterator[tuple[str, dict[str, str], Receiver, list[ServerProcess]]]:
    url = postgres_server.create_database("two_instances")
    init = run_cli(["init", "--db", url], cwd=tmp_path)
    assert init.returncode == 0, init.stderr
    values = dict(
        line.split("=", 1) for line in init.stdout.splitlines() if line.startswith("DATABUNKER_")
    )
    root = {"X-Bunker-Token": values["DATABUNKER_ROOTTOKEN"].strip()}
    with Receiver() as hook:
        env = {
            "DATABUNKER_MASTERKEY": values["DATABUNKER_MASTERKEY"].strip(),
            "GENERIC_LOGIN_CAPTCHA": "false",
            "SERVER_JOBS_INTERVAL": "1",
            "NOTIFICATION_NOTIFICATION_URL": hook.url,
        }
        with (
            ServerProcess(["serve", "--db", url], env, cwd=tmp_path) as first,
            ServerProcess(["serve", "--db", url], env, cwd=tmp_path) as second,
        ):
            front = free_port()
            servers = "\n".join(
                f"    server vault{n} 127.0.0.1:{s.port}" for n, s in enumerate((first, second))
            )
            config = tmp_path / "haproxy.cfg"
            config.write_text(HAPROXY.format(port=front, servers=servers), encoding="utf-8")
            proxy = subprocess.Popen(
                [_haproxy(), "-f", str(config), "-db"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                base = f"http://127.0.0.1:{front}"
                _wait_until_serving(base)
                yield base, root, hook, [first, second]
            finally:
                proxy.terminate()
                proxy.wait(timeout=10)
    postgres_server.drop_database("two_instances")


def _wait_until_serving(base: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/v1/status", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("haproxy did not come up")


def test_two_instances_behind_haproxy_keep_every_guarantee_under_load(
    balanced: tuple[str, dict[str, str], Receiver, list[ServerProcess]],
) -> None:
    base, root, hook, servers = balanced
    with httpx.Client(base_url=base, headers=root, timeout=30) as api:

        def create(number: int) -> str:
            profile = {"email": f"p{number}@two.example", "login": f"p{number}"}
            answer = api.post("/v1/user", json=profile)
            assert answer.status_code == 200, answer.text
            token: str = answer.json()["token"]
            return token

        with ThreadPoolExecutor(CALLERS) as pool:
            tokens = list(pool.map(create, range(PEOPLE)))
        assert len(set(tokens)) == PEOPLE
        # Each person once, reachable through either instance by each lookup.
        for number, token in enumerate(tokens[:6]):
            found = api.get(f"/v1/user/login/p{number}").json()
            assert (found["token"], found["data"]["email"]) == (token, f"p{number}@two.example")

        # A rate limit is one count across both instances, also for concurrent attempts.
        per_identity = PRELOGIN_LIMITS[0]
        with ThreadPoolExecutor(CALLERS) as pool:
            statuses = list(
                pool.map(
                    lambda _n: api.get("/v1/prelogin/email/p0@two.example/0/0").status_code,
                    range(per_identity * 3),
                )
            )
        assert Counter(statuses) == {200: per_identity, 429: per_identity * 2}

        # A session written through one instance is read alike through both.
        session = "7f0c3e5a-0000-4000-8000-00000000b001"
        written = api.post(f"/v1/session/{session}", json={"token": tokens[1], "cart": [1, 2]})
        assert written.status_code == 200, written.text
        for _ in range(8):
            read = api.get(f"/v1/session/{session}").json()
            assert read["data"] == {"token": tokens[1], "cart": [1, 2]}

        # The expiry job runs on both instances every second: each person expires once.
        expiring = tokens[-10:]
        for token in expiring:
            started = api.post(f"/v1/exp/start/token/{token}", json={"expiration": "2s"})
            assert started.status_code == 200, started.text

        # Every webhook arrives once per event: PEOPLE profilenew and one forgetme each.
        expected = PEOPLE + len(expiring)
        hook.wait_for(expected, timeout=60, acknowledged=True)
        time.sleep(3)  # two more job rounds on each instance: nothing more may come
        received = hook.requests
        deliveries = Counter(str(r.header("X-Bunker-Delivery")) for r in received)
        assert len(deliveries) == expected, received
        assert set(deliveries.values()) == {1}
        actions = Counter((r.json()["action"], r.json()["identity"]) for r in received)
        assert {key for key, count in actions.items() if count != 1} == set()
        assert {identity for action, identity in actions if action == "profilenew"} == set(tokens)
        assert {identity for action, identity in actions if action == "forgetme"} == set(expiring)
        for token in expiring:
            assert api.get(f"/v1/user/token/{token}").json()["data"] == {}
    assert all(server.stop() == 0 for server in servers)
    # Both instances served the load (each request's access-log line names its path).
    served = [server.stdout + server.stderr for server in servers]
    assert all(log.count('"/v1/user"') >= PEOPLE // 4 for log in served), served
