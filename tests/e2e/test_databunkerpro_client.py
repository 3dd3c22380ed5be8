"""The published DatabunkerPro Python client (``databunkerpro`` on PyPI) against a started
``databunker serve``, on SQLite and PostgreSQL: users, user requests and app data, checked
by the values the client gets back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from databunkerpro import DatabunkerproAPI

from support.server import ServerProcess, run_cli

pytestmark = pytest.mark.e2e

ANN: dict[str, Any] = {"email": "ann.pro@example.com", "login": "annpro", "name": "Ann"}
METADATA = {"purpose": "e2e", "ticket_id": "T-42"}


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[tuple[ServerProcess, str]]:
    workdir = tmp_path / "work"
    workdir.mkdir()
    result = run_cli(["init", "--db", database_url], cwd=workdir)
    assert result.returncode == 0, result.stderr
    values = dict(
        line.split("=", 1) for line in result.stdout.splitlines() if line.startswith("DATABUNKER_")
    )
    env = {"DATABUNKER_MASTERKEY": values["DATABUNKER_MASTERKEY"].strip()}
    with ServerProcess(["serve", "--db", database_url], env, cwd=workdir) as server:
        yield server, values["DATABUNKER_ROOTTOKEN"].strip()


def test_users_through_the_published_client(served: tuple[ServerProcess, str]) -> None:
    server, root_token = served
    api = DatabunkerproAPI(server.url, root_token)

    created = api.create_user(ANN, {"finaltime": "30d"}, request_metadata=METADATA)
    assert created["status"] == "ok", created
    token = created["token"]
    found = api.get_user("email", "ANN.PRO@example.com")
    assert found["status"] == "ok"
    assert found["token"] == token
    assert found["profile"] == ANN
    assert found["finaltime"] > 0

    assert api.update_user("token", token, {"name": "Ann Updated"})["status"] == "ok"
    patch = [{"op": "add", "path": "/city", "value": "Leeds"}]
    assert api.patch_user("login", "annpro", patch)["status"] == "ok"
    assert api.get_user("token", token)["profile"] == {
        **ANN,
        "name": "Ann Updated",
        "city": "Leeds",
    }

    duplicate = api.create_user({"email": "ann.pro@example.com"})
    assert duplicate == {"status": "error", "message": "Duplicate index: email"}
    missing = api.get_user("email", "nobody@example.com")
    assert missing == {"status": "error", "message": "The user record was not found"}
    stranger = DatabunkerproAPI(server.url, "00000000-0000-4000-8000-000000000000")
    assert stranger.get_user("token", token) == {"status": "error", "message": "Access denied"}
    other_tenant = DatabunkerproAPI(server.url, root_token, "acme")
    assert other_tenant.get_user("token", token)["message"] == "Access denied"
    default_tenant = DatabunkerproAPI(server.url, root_token, "default")
    assert default_tenant.get_user("token", token)["token"] == token

    records = [{"profile": {"login": f"bulk{i}", "n": i}} for i in range(50)]
    bulk = api.create_users_bulk(records, {"finaltime": "1y"})
    assert bulk["status"] == "ok", bulk
    assert len(bulk["created"]) == len(records)
    assert [item["profile"] for item in bulk["created"]] == [r["profile"] for r in records]
    assert api.get_user("login", "bulk7")["token"] == bulk["created"][7]["token"]

    users = [{"mode": "login", "identity": "bulk0"}, {"mode": "login", "identity": "bulk1"}]
    deleted = api.delete_users_bulk(users)
    assert deleted == {"status": "ok", "deleted_count": 2}
    assert api.get_user("login", "bulk0")["status"] == "error"

    assert api.delete_user("token", token) == {"status": "ok"}
    assert api.get_user("token", token)["message"] == "The user record was not found"


def test_requests_and_app_data_through_the_published_client(
    served: tuple[ServerProcess, str],
) -> None:
    server, root_token = served
    api = DatabunkerproAPI(server.url, root_token)
    token = api.create_user(ANN)["token"]

    opened = api.request_user_update("token", token, {"name": "Ann Later"})
    assert opened["status"] == "ok", opened
    request_uuid = opened["requestuuid"]
    detail = api.get_user_request(request_uuid)
    assert detail["request"]["status"] == "open"
    assert detail["request"]["change"] == {"name": "Ann Later"}
    listed = api.list_user_requests("token", token, 0, 10)
    assert listed["total"] == 1
    assert listed["rows"][0]["requestuuid"] == request_uuid
    assert api.approve_user_request(request_uuid, {"reason": "ok"})["status"] == "ok"
    assert api.get_user("token", token)["profile"]["name"] == "Ann Later"

    patch = [{"op": "replace", "path": "/name", "value": "Never"}]
    patched = api.request_user_patch("token", token, patch)
    assert api.cancel_user_request(patched["requestuuid"])["status"] == "ok"
    assert api.get_user_request(patched["requestuuid"])["request"]["status"] == "canceled"
    erase = api.request_user_deletion("token", token)
    assert api.get_user_request(erase["requestuuid"])["request"]["requesttype"] == "forget-me"

    assert api.create_app_data("token", token, "mytestapp", {"score": 0})["status"] == "ok"
    app = api.get_app_data("token", token, "mytestapp")
    assert app == {
        "status": "ok",
        "token": token,
        "appname": "mytestapp",
        "appdata": {"score": 0},
    }
    assert api.update_app_data("token", token, "mytestapp", {"note": "x"})["status"] == "ok"
    assert api.get_app_data("token", token, "mytestapp")["appdata"] == {"score": 0, "note": "x"}
    change = api.request_app_data_update("token", token, "mytestapp", {"score": 5})
    assert api.approve_user_request(change["requestuuid"])["status"] == "ok"
    assert api.get_app_data("token", token, "mytestapp")["appdata"]["score"] == 5
    assert api.list_app_data_names("token", token)["apps"] == ["mytestapp"]
    assert api.list_app_names()["apps"] == ["mytestapp"]
    assert api.delete_app_data("token", token, "mytestapp")["status"] == "ok"
    assert api.get_app_data("token", token, "mytestapp")["message"] == (
        "The app record was not found"
    )
