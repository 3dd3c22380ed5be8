"""A share-protected vault starts sealed: what every route answers then, unsealing with a
threshold of shares, wrong shares, and sealing again."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from starlette.testclient import TestClient

from databunker.app import build_app
from databunker.config import Settings
from databunker.crypto import Keyring, MasterKey
from databunker.crypto.providers import ShamirKeyProvider
from databunker.services import keys
from databunker.services.context import Context
from databunker.services.system import initialise
from databunker.storage import Database
from databunker.unsealing import LocalUnsealer
from support.vaults import ROOT_TOKEN, Clock, VaultFactory, client_for

SEALED = {"status": "error", "message": "vault is sealed"}


@dataclass
class SealedVault:
    database: Database
    shares: list[str]
    other_shares: list[str]
    clock: Clock

    def client(self, **sections: dict[str, object]) -> TestClient:
        vault = Context(
            Settings.model_validate(sections), self.database, Keyring.sealed_keyring(), self.clock
        )
        database = self.database
        unsealer = LocalUnsealer(3, lambda master: keys.check_master_key(database, master))
        app = build_app(vault, unsealer=unsealer)
        return TestClient(
            app, headers={"X-Bunker-Token": ROOT_TOKEN}, raise_server_exceptions=False
        )


def _shares(master: MasterKey) -> list[str]:
    protected = ShamirKeyProvider(5, 3).protect(master, "vault")
    return [line.split("=", 1)[1] for line in protected.printed]


@pytest.fixture
def sealed_vault(database_url: str, clock: Clock) -> Iterator[SealedVault]:
    master = MasterKey.generate()
    database = Database(database_url)
    stored = ShamirKeyProvider(5, 3).protect(master, "vault").stored
    initialise(database, Keyring(master), ROOT_TOKEN, clock(), provider_values=stored)
    yield SealedVault(database, _shares(master), _shares(MasterKey.generate()), clock)
    database.dispose()


def test_a_sealed_vault_answers_503_everywhere_but_the_seal_routes(
    sealed_vault: SealedVault,
) -> None:
    with sealed_vault.client() as client:
        status = client.get("/v1/status")
        assert status.status_code == 503
        assert status.json() == {**SEALED, "sealed": True}
        for method, path in [
            ("POST", "/v1/user"),
            ("GET", "/v1/user/email/a@example.com"),
            ("GET", "/v1/sys/keys"),
            ("POST", "/v1/sys/seal"),
            ("GET", "/v1/metrics/nothing"),
        ]:
            answer = client.request(method, path, json={})
            assert (answer.status_code, answer.json()) == (503, SEALED), path
        for page in ("/", "/admin", "/signin"):
            answer = client.get(page)
            assert answer.status_code == 503
            assert "temporarily unavailable" in answer.text.lower()
            assert answer.headers["content-type"].startswith("text/html")
        seal = client.get("/v1/sys/seal")
        assert seal.json() == {"status": "ok", "sealed": True, "threshold": 3, "progress": 0}


@pytest.mark.parametrize("order", [(0, 1, 2), (4, 2, 0), (3, 0, 4)])
def test_three_of_five_shares_in_any_order_unseal(
    sealed_vault: SealedVault, order: tuple[int, int, int]
) -> None:
    with sealed_vault.client() as client:
        for given, index in enumerate(order[:2], start=1):
            answer = client.post("/v1/sys/unseal", json={"share": sealed_vault.shares[index]})
            assert answer.json() == {
                "status": "ok",
                "sealed": True,
                "threshold": 3,
                "progress": given,
            }
        last = client.post("/v1/sys/unseal", json={"share": sealed_vault.shares[order[2]]})
        assert last.status_code == 200
        assert last.json()["sealed"] is False

        assert client.get("/v1/status").status_code == 200
        created = client.post("/v1/user", json={"email": "after@example.com"})
        assert created.status_code == 200, created.text
        token = created.json()["token"]
        assert client.get(f"/v1/user/token/{token}").json()["data"]["email"] == "after@example.com"


def test_a_malformed_share_is_400_and_does_not_count(sealed_vault: SealedVault) -> None:
    with sealed_vault.client() as client:
        client.post("/v1/sys/unseal", json={"share": sealed_vault.shares[0]})
        for body in ({"share": "not a share"}, {"share": sealed_vault.shares[1][:-3]}):
            answer = client.post("/v1/sys/unseal", json=body)
            assert (answer.status_code, answer.json()["message"]) == (400, "malformed share")
        for body in ({}, {"share": 5}, []):
            assert client.post("/v1/sys/unseal", json=body).status_code == 400
        assert client.post("/v1/sys/unseal", content=b"{").status_code == 400
        assert client.get("/v1/sys/seal").json()["progress"] == 1


def test_shares_of_another_vault_are_refused_and_progress_starts_again(
    sealed_vault: SealedVault,
) -> None:
    mixed = [sealed_vault.shares[0], sealed_vault.shares[1], sealed_vault.other_shares[2]]
    foreign = sealed_vault.other_shares[:3]
    with sealed_vault.client() as client:
        for combination in (mixed, foreign):
            for share in combination[:2]:
                client.post("/v1/sys/unseal", json={"share": share})
            answer = client.post("/v1/sys/unseal", json={"share": combination[2]})
            assert answer.status_code == 400
            assert answer.json() == {
                "status": "error",
                "message": "shares do not match this vault",
            }
            assert client.get("/v1/sys/seal").json()["progress"] == 0
            assert client.get("/v1/status").status_code == 503
        for share in sealed_vault.shares[2:]:
            client.post("/v1/sys/unseal", json={"share": share})
        assert client.get("/v1/status").status_code == 200


def test_root_seals_again_and_the_shares_unseal_once_more(sealed_vault: SealedVault) -> None:
    with sealed_vault.client() as client:
        for share in sealed_vault.shares[:3]:
            client.post("/v1/sys/unseal", json={"share": share})
        token = client.post("/v1/user", json={"email": "kept@example.com"}).json()["token"]

        refused = client.post("/v1/sys/seal", headers={"X-Bunker-Token": "nobody"})
        assert refused.status_code in (401, 403)
        assert client.get("/v1/status").status_code == 200

        sealed = client.post("/v1/sys/seal")
        assert sealed.json() == {"status": "ok", "sealed": True, "threshold": 3, "progress": 0}
        assert client.get(f"/v1/user/token/{token}").status_code == 503
        assert client.get("/v1/status").json()["sealed"] is True

        for share in sealed_vault.shares[2:]:
            client.post("/v1/sys/unseal", json={"share": share})
        assert client.get(f"/v1/user/token/{token}").status_code == 200


def test_unseal_attempts_are_rate_limited_per_client_address(sealed_vault: SealedVault) -> None:
    with sealed_vault.client() as client:
        answers = [
            client.post("/v1/sys/unseal", json={"share": "wrong"}).status_code
            for _ in itertools.repeat(None, keys.UNSEAL_ATTEMPTS + 1)
        ]
        assert answers[:-1] == [400] * keys.UNSEAL_ATTEMPTS
        assert answers[-1] == 429
        # Even a good share waits for the window to pass.
        assert (
            client.post("/v1/sys/unseal", json={"share": sealed_vault.shares[0]}).status_code == 429
        )
        sealed_vault.clock.advance(keys.UNSEAL_WINDOW + 1)
        assert (
            client.post("/v1/sys/unseal", json={"share": sealed_vault.shares[0]}).status_code == 200
        )


def _sessions_stored(database: Database) -> int:
    with database.transaction() as conn:
        return int(conn.exec_driver_sql("SELECT COUNT(*) FROM sessions").scalar_one())


def test_periodic_jobs_wait_while_sealed(sealed_vault: SealedVault) -> None:
    session = "7a1a0b4e-3c6f-4f6e-9a47-0a6a4b5a8c02"
    with sealed_vault.client(server={"jobs_interval": 1}) as client:
        for share in sealed_vault.shares[:3]:
            client.post("/v1/sys/unseal", json={"share": share})
        stored = client.post(f"/v1/session/{session}", json={"expiration": "1m"})
        assert stored.status_code == 200, stored.text
        client.post("/v1/sys/seal")
        sealed_vault.clock.advance(3600)

        time.sleep(2.5)  # two rounds of jobs would have purged the expired session
        assert _sessions_stored(sealed_vault.database) == 1

        for share in sealed_vault.shares[:3]:
            client.post("/v1/sys/unseal", json={"share": share})
        deadline = time.monotonic() + 10
        while _sessions_stored(sealed_vault.database) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _sessions_stored(sealed_vault.database) == 0


def test_a_vault_keyed_by_the_environment_stays_sealed_until_restarted(
    make_vault: VaultFactory,
) -> None:
    """Its key came from the environment (or KMS) at start; once root seals it, no share
    can unseal it: the answer says so, and it stays out of the load balancer's pool."""
    with client_for(make_vault()) as client:
        assert client.post("/v1/sys/seal").json() == {
            "status": "ok",
            "sealed": True,
            "threshold": 0,
            "progress": 0,
        }
        refused = client.post("/v1/sys/unseal", json={"share": "any share at all"})
        assert refused.status_code == 400
        assert refused.json() == {
            "status": "error",
            "message": "this vault is not protected by shares",
        }
        status = client.get("/v1/status")
        assert status.status_code == 503
        assert status.json()["sealed"] is True
        assert client.get("/v1/user/token/6c1f5a2e-4b7d-4e8a-9f00-1a2b3c4d5e6f").status_code == 503


def test_ready_is_503_while_sealed_and_200_once_unsealed(sealed_vault: SealedVault) -> None:
    with sealed_vault.client() as client:
        response = client.get("/v1/sys/ready")
        assert response.status_code == 503
        assert response.json() == {"status": "error", "message": "vault is sealed", "ready": False}
        for share in sealed_vault.shares[:3]:
            client.post("/v1/sys/unseal", json={"share": share})
        assert client.get("/v1/sys/ready").json() == {"status": "ok", "ready": True}
