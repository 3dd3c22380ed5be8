"""A stored value that does not decrypt fails closed, with a clear answer, one log line that
names the row (no values), and a metric an operator can alert on."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from databunker.services.context import Context
from databunker.storage.tables import user_apps, users
from support.vaults import create_user

CANNOT_DECRYPT = {"status": "error", "message": "record cannot be decrypted"}


def _failures(api: TestClient, kind: str) -> float:
    for line in api.get("/v1/metrics").text.splitlines():
        if line.startswith(f'databunker_decryption_failures_total{{kind="{kind}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _decryption_logs(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_swapped_profile_answers_cannot_be_decrypted(
    api: TestClient, vault: Context, caplog: pytest.LogCaptureFixture
) -> None:
    ann = create_user(api, {"login": "ann", "name": "Ann Secret"})
    bob = create_user(api, {"login": "bob", "name": "Bob"})
    with vault.database.transaction() as conn:
        bobs = conn.execute(sa.select(users.c.profile).where(users.c.token == bob)).scalar_one()
        conn.execute(sa.update(users).where(users.c.token == ann).values(profile=bobs))

    with caplog.at_level(logging.INFO):
        response = api.get(f"/v1/user/token/{ann}")
    assert (response.status_code, response.json()) == (500, CANNOT_DECRYPT)
    [record] = _decryption_logs(caplog)
    assert record.getMessage() == "record cannot be decrypted"
    assert (record.__dict__["kind"], record.__dict__["row"]) == ("users.profile", ann)
    assert "Bob" not in repr(record.__dict__)
    assert "Secret" not in repr(record.__dict__)
    assert _failures(api, "users.profile") == 1.0
    # Bob's own record is untouched, and a lookup by login fails the same way for Ann.
    assert api.get(f"/v1/user/token/{bob}").json()["data"] == {"login": "bob", "name": "Bob"}
    assert api.get("/v1/user/login/ann").status_code == 500
    assert _failures(api, "users.profile") == 2.0
    # The failed read is in Ann's audit trail.
    rows = api.get(f"/v1/audit/list/{ann}").json()["rows"]
    assert rows[0]["status"] == "error"


def test_a_corrupted_data_key_and_app_record_are_named(
    api: TestClient, vault: Context, caplog: pytest.LogCaptureFixture
) -> None:
    ann = create_user(api, {"login": "ann"})
    assert api.post(f"/v1/userapp/token/{ann}/shop", json={"cart": 1}).status_code == 200
    with vault.database.transaction() as conn:
        data = conn.execute(sa.select(user_apps.c.data)).scalar_one()
        flipped = data[:-1] + bytes([data[-1] ^ 1])
        conn.execute(sa.update(user_apps).values(data=flipped))
    with caplog.at_level(logging.INFO):
        response = api.get(f"/v1/userapp/token/{ann}/shop")
    assert (response.status_code, response.json()) == (500, CANNOT_DECRYPT)
    assert _failures(api, "user_apps.data") == 1.0

    with vault.database.transaction() as conn:
        conn.execute(sa.update(users).values(data_key=b"\x00" * 60))
    caplog.clear()
    with caplog.at_level(logging.INFO):
        response = api.get(f"/v1/user/token/{ann}")
    assert (response.status_code, response.json()) == (500, CANNOT_DECRYPT)
    [record] = _decryption_logs(caplog)
    assert (record.__dict__["kind"], record.__dict__["row"]) == ("data key", ann)
    assert _failures(api, "data key") == 1.0
