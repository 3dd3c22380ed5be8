"""Webhooks from real ``databunker serve`` processes to a real receiver.

The receiver must see every webhook exactly once acknowledged, signed with the configured
secret, also when it fails the first attempts and when the server stops between the change
and its delivery. ``SERVER_JOBS_INTERVAL=1`` keeps the periodic retry fast; the waits are on
the receiver's condition variable, never sleeps.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from support.receiver import Received, Receiver
from support.server import ServerProcess, run_cli

pytestmark = pytest.mark.e2e

SECRET = "e2e-webhook-secret-93b1"
ANN = {"email": "ann.e2e@example.com", "name": "Ann", "city": "Leeds"}
# Long enough for two backoff waits (3-5 s, then 5-10 s) on a loaded machine.
DELIVERY_TIMEOUT = 45.0


@dataclass(frozen=True)
class Bunker:
    database_url: str
    master_key: str
    root_token: str
    workdir: Path

    def server(self, env: dict[str, str] | None = None) -> ServerProcess:
        base = {"DATABUNKER_MASTERKEY": self.master_key, "SERVER_JOBS_INTERVAL": "1"}
        return ServerProcess(
            ["serve", "--db", self.database_url], {**base, **(env or {})}, cwd=self.workdir
        )

    def client(self, server: ServerProcess) -> httpx.Client:
        headers = {"X-Bunker-Token": self.root_token}
        return httpx.Client(base_url=server.url, headers=headers, timeout=10.0)


@pytest.fixture
def bunker(database_url: str, tmp_path: Path) -> Bunker:
    workdir = tmp_path / "work"
    workdir.mkdir()
    result = run_cli(["init", "--db", database_url], cwd=workdir)
    assert result.returncode == 0, result.stderr
    values = dict(
        line.split("=", 1) for line in result.stdout.splitlines() if line.startswith("DATABUNKER_")
    )
    return Bunker(
        database_url,
        values["DATABUNKER_MASTERKEY"].strip(),
        values["DATABUNKER_ROOTTOKEN"].strip(),
        workdir,
    )


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


def hook_env(receiver: Receiver) -> dict[str, str]:
    return {
        "NOTIFICATION_NOTIFICATION_URL": receiver.url,
        "NOTIFICATION_NOTIFICATION_SECRET": SECRET,
    }


def signed_by(secret: str, request: Received, tolerance: int = 300) -> bool:
    header = request.header("X-Bunker-Signature")
    if header is None:
        return False
    parts = dict(item.split("=", 1) for item in header.split(","))
    timestamp = int(parts["t"])
    message = f"{timestamp}.".encode() + request.body
    expected = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    fresh = abs(time.time() - timestamp) <= tolerance
    return hmac.compare_digest(expected, parts["v1"]) and fresh


def canonical(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def create_user(api: httpx.Client, profile: dict[str, Any]) -> str:
    response = api.post("/v1/user", json=profile)
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def deliveries(requests: list[Received]) -> dict[str, list[int | None]]:
    """Statuses answered, per X-Bunker-Delivery id."""
    found: dict[str, list[int | None]] = {}
    for request in requests:
        found.setdefault(str(request.header("X-Bunker-Delivery")), []).append(request.status)
    return found


def test_each_webhook_arrives_once_and_signed(bunker: Bunker, hook: Receiver) -> None:
    with bunker.server(hook_env(hook)) as server, bunker.client(server) as api:
        token = create_user(api, ANN)
        assert api.put(f"/v1/user/token/{token}", json={"city": "York"}).status_code == 200
        assert api.delete(f"/v1/user/token/{token}").status_code == 200
        hook.wait_for(3, acknowledged=True, timeout=DELIVERY_TIMEOUT)
    # The server is stopped: nothing more can arrive.

    received = hook.requests
    assert sorted(r.body for r in received) == sorted(
        canonical(p)
        for p in (
            {"action": "profilenew", "identity": token, "mode": "token"},
            {"action": "profilechange", "fields": ["city"], "identity": token, "mode": "token"},
            {"action": "forgetme", "identity": token, "mode": "token"},
        )
    )
    assert all(signed_by(SECRET, r) for r in received)
    assert not any(signed_by("not-the-secret", r) for r in received)
    assert all(statuses == [200] for statuses in deliveries(received).values())


def test_a_failing_receiver_gets_the_webhook_once_after_retries(
    bunker: Bunker, hook: Receiver
) -> None:
    hook.fail_next(2)
    with bunker.server(hook_env(hook)) as server, bunker.client(server) as api:
        token = create_user(api, ANN)
        hook.wait_for(1, acknowledged=True, timeout=DELIVERY_TIMEOUT)
        # Another change after the acknowledgement, delivered too: the retried row is done.
        assert api.put(f"/v1/user/token/{token}", json={"city": "York"}).status_code == 200
        hook.wait_for(2, acknowledged=True, timeout=DELIVERY_TIMEOUT)

    received = hook.requests
    first = [r for r in received if r.json()["action"] == "profilenew"]
    assert [r.status for r in first] == [500, 500, 200]
    assert len({r.header("X-Bunker-Delivery") for r in first}) == 1
    assert {r.body for r in first} == {
        canonical({"action": "profilenew", "identity": token, "mode": "token"})
    }
    assert all(signed_by(SECRET, r) for r in received)
    assert sorted(deliveries(received).values()) == [[200], [500, 500, 200]]


def test_a_webhook_pending_when_the_server_stops_arrives_after_restart(
    bunker: Bunker, hook: Receiver
) -> None:
    # Configured through ./databunker.yaml in the server's working directory this time.
    (bunker.workdir / "databunker.yaml").write_text(
        f"notification:\n  notification_url: {hook.url}\n  notification_secret: {SECRET}\n",
        encoding="utf-8",
    )
    hook.fail_next(1_000_000)
    with bunker.server() as server, bunker.client(server) as api:
        token = create_user(api, ANN)
        hook.wait_for(1, timeout=DELIVERY_TIMEOUT)  # tried, and refused
    failed = len(hook.requests)
    assert hook.acknowledged == []

    hook.fail_next(0)
    with bunker.server():
        [delivered] = [
            r for r in hook.wait_for(failed + 1, timeout=DELIVERY_TIMEOUT) if r.acknowledged
        ]
    assert delivered.body == canonical({"action": "profilenew", "identity": token, "mode": "token"})
    assert signed_by(SECRET, delivered)
    assert deliveries(hook.requests) == {
        str(delivered.header("X-Bunker-Delivery")): [500] * failed + [200]
    }


def test_a_webhook_queued_while_the_receiver_is_down_arrives_once_it_is_up(
    bunker: Bunker,
) -> None:
    with Receiver() as gone:
        port, url = gone.port, gone.url
    env = {"NOTIFICATION_NOTIFICATION_URL": url, "NOTIFICATION_NOTIFICATION_SECRET": SECRET}
    with bunker.server(env) as server, bunker.client(server) as api:
        token = create_user(api, ANN)
    with Receiver(port=port) as hook, bunker.server(env):
        [delivered] = hook.wait_for(1, acknowledged=True, timeout=DELIVERY_TIMEOUT)
    assert delivered.body == canonical({"action": "profilenew", "identity": token, "mode": "token"})
    assert signed_by(SECRET, delivered)
    assert len(hook.requests) == 1
