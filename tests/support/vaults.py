"""Building vaults and clients for tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.testclient import TestClient

from databunker.app import build_app
from databunker.crypto import Keyring, new_token
from databunker.services.access import LOGIN_KIND, access_token_hash
from databunker.services.context import Context
from databunker.storage import repositories as repo

VaultFactory = Callable[..., Context]

# The kinds of database every integration test runs on (``database_url`` in tests/conftest.py).
DATABASES = ["sqlite", "postgresql", "mariadb"]

ROOT_TOKEN = "11111111-2222-4333-8444-555555555555"
MASTER_KEY_HEX = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"


class Clock:
    """A settable clock: tests move time instead of sleeping."""

    def __init__(self, now: int = 1_800_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: int) -> None:
        self.now += seconds


class FixedDigits:
    """Randomness whose digits (login codes, captcha answers) are always ``digits``;
    tokens stay random."""

    def __init__(self, digits: str) -> None:
        self.fixed = digits

    def token(self) -> str:
        return new_token()

    def digits(self, count: int) -> str:
        assert count == len(self.fixed)
        return self.fixed


def client_for(vault: Context, token: str | None = ROOT_TOKEN) -> TestClient:
    """A client of the vault's app sending ``token`` as X-Bunker-Token (None: no header)."""
    headers = {"X-Bunker-Token": token} if token else {}
    return TestClient(build_app(vault), headers=headers, raise_server_exceptions=False)


def issue_user_token(vault: Context, user_token: str, *, ttl: int = 600) -> str:
    """A user (login) access token for ``user_token``, as a passwordless login would issue."""
    keyring: Keyring = vault.keyring
    token = new_token()
    with vault.database.transaction() as conn:
        repo.insert_access_token(
            conn,
            token_hash=access_token_hash(keyring, token),
            kind=LOGIN_KIND,
            user_token=user_token,
            now=vault.clock(),
            expires=vault.clock() + ttl,
        )
    return token


def create_user(client: TestClient, profile: dict[str, Any]) -> str:
    """Create a person through the API (the client must be allowed to) and return the token."""
    response = client.post("/v1/user", json=profile)
    assert response.status_code == 200, response.text
    return str(response.json()["token"])
