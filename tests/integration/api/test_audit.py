"""The audit trail over HTTP: ``/v1/audit/list``, ``/v1/audit/admin`` and ``/v1/audit/get``.

Every operation on a person's record leaves an event, failed and denied attempts included;
what a caller may read of the trail depends on who they are.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from httpx2 import Response
from starlette.testclient import TestClient

from databunker.services.context import Context
from support.vaults import Clock, client_for, issue_user_token
from support.vaults import create_user as create

ROW_FIELDS = {"atoken", "when", "mode", "identity", "record", "title", "status", "more"}
ANN = {"login": "ann", "email": "ann@example.com", "phone": "07700 900123", "custom": "c-1"}


def trail(client: TestClient, token: str, query: str = "limit=100") -> dict[str, Any]:
    response = client.get(f"/v1/audit/list/{token}?{query}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def everything(client: TestClient, query: str = "limit=100") -> dict[str, Any]:
    response = client.get(f"/v1/audit/admin?{query}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def atoken_of(client: TestClient, token: str, title: str) -> str:
    rows = [row for row in trail(client, token)["rows"] if row["title"] == title]
    assert len(rows) == 1, rows
    return str(rows[0]["atoken"])


def assert_error(response: Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"status": "error", "message": message}


# -- what is written -------------------------------------------------------------------------
def test_every_user_operation_writes_an_event_with_the_spec_title(
    api: TestClient, clock: Clock
) -> None:
    token = create(api, ANN)
    steps = [
        ("GET", "token", token),
        ("GET", "login", "ann"),
        ("GET", "email", "ann@example.com"),
        ("GET", "phone", "+447700900123"),
        ("GET", "custom", "c-1"),
        ("PUT", "email", "ann@example.com"),
        ("DELETE", "login", "ann"),
    ]
    for method, mode, identity in steps:
        clock.advance(1)
        kwargs = {"json": {"name": "Ann"}} if method == "PUT" else {}
        response = api.request(method, f"/v1/user/{mode}/{identity}", **kwargs)
        assert response.status_code == 200, response.text

    rows = trail(api, token)["rows"]
    verbs = {"GET": "get", "PUT": "change", "DELETE": "delete"}
    expected = [f"{verbs[method]} user record by {mode}" for method, mode, _ in reversed(steps)]
    assert [row["title"] for row in rows] == [*expected, "create user record"]
    assert [row.get("mode") for row in rows[:-1]] == [mode for _, mode, _ in reversed(steps)]
    for row in rows:
        assert row["identity"] == "root"
        assert row["status"] == "ok"
        assert row["record"] == token
        assert "msg" not in row


def test_trail_rows_have_the_documented_shape_newest_first(api: TestClient, clock: Clock) -> None:
    token = create(api, ANN)
    clock.advance(5)
    assert api.get(f"/v1/user/token/{token}").status_code == 200
    clock.advance(5)
    assert api.get("/v1/user/email/ann@example.com").status_code == 200

    body = trail(api, token)
    assert set(body) == {"status", "total", "rows"}
    assert body["status"] == "ok"
    assert body["total"] == 3
    newest, middle, oldest = body["rows"]
    assert [newest["when"], middle["when"], oldest["when"]] == [
        clock.now,
        clock.now - 5,
        clock.now - 10,
    ]
    for row in (newest, middle):
        assert set(row) >= ROW_FIELDS, row
        assert row["more"] is False
        assert uuid.UUID(row["atoken"])
    assert newest["who"] == "ann@example.com"
    assert newest["mode"] == "email"
    assert middle["mode"] == "token"
    assert oldest["title"] == "create user record"
    assert oldest["more"] is True


def test_a_failed_create_is_recorded_with_its_message(api: TestClient) -> None:
    create(api, ANN)
    assert api.post("/v1/user", json={"email": "ANN@example.com"}).status_code == 409
    newest = everything(api)["rows"][0]
    assert newest["title"] == "create user record"
    assert newest["status"] == "error"
    assert newest["msg"] == "duplicate index: email"
    assert newest["identity"] == "root"


def test_a_failed_change_is_recorded_without_values(api: TestClient) -> None:
    create(api, ANN)
    bob = create(api, {"login": "bob"})
    response = api.put(f"/v1/user/token/{bob}", json={"email": "ann@example.com"})
    assert response.status_code == 409
    newest = trail(api, bob)["rows"][0]
    assert newest["title"] == "change user record by token"
    assert newest["status"] == "error"
    assert newest["msg"] == "duplicate index: email"
    assert newest["more"] is False
    assert api.get(f"/v1/audit/get/{newest['atoken']}").json() == {"status": "ok", "event": {}}


def test_a_denied_anonymous_read_is_recorded(api: TestClient, anonymous: TestClient) -> None:
    token = create(api, ANN)
    assert_error(anonymous.get(f"/v1/user/token/{token}"), 403, "access denied")
    newest = everything(api)["rows"][0]
    assert newest["title"] == "get user record by token"
    assert newest["status"] == "error"
    assert newest["msg"] == "access denied"
    assert "identity" not in newest


def test_reading_a_trail_is_itself_audited(api: TestClient, clock: Clock) -> None:
    token = create(api, ANN)
    assert trail(api, token)["total"] == 1
    clock.advance(1)
    body = trail(api, token)
    assert body["total"] == 2
    assert body["rows"][0]["title"] == "view audit events"


# -- reading the trail -----------------------------------------------------------------------
def test_trail_paging(api: TestClient, clock: Clock) -> None:
    token = create(api, ANN)
    for _ in range(4):
        clock.advance(1)
        assert api.get("/v1/user/login/ann").status_code == 200
    full = trail(api, token)
    assert full["total"] == 5
    clock.advance(1)
    # The read above is now the newest event: skip it with offset=1.
    page = trail(api, token, "offset=1&limit=2")
    assert page["total"] == 6
    assert [r["atoken"] for r in page["rows"]] == [r["atoken"] for r in full["rows"][:2]]
    clock.advance(1)
    # Two reads are newer than ``full`` now.
    tail = trail(api, token, "offset=4&limit=10")
    assert [r["atoken"] for r in tail["rows"]] == [r["atoken"] for r in full["rows"][2:]]


def test_an_unknown_token_has_an_empty_trail_for_root(api: TestClient) -> None:
    body = api.get(f"/v1/audit/list/{uuid.uuid4()}").json()
    assert body == {"status": "ok", "total": 0, "rows": []}


@pytest.mark.parametrize("path", ["/v1/audit/list/not-a-uuid", "/v1/audit/get/not-a-uuid"])
def test_a_bad_uuid_is_rejected(api: TestClient, path: str) -> None:
    assert_error(api.get(path), 400, "bad uuid")


def test_an_event_holds_the_values_before_and_after(api: TestClient) -> None:
    token = create(api, ANN)
    assert api.put(f"/v1/user/token/{token}", json={"email": None, "name": "Ann"}).is_success
    assert api.get(f"/v1/user/token/{token}").status_code == 200

    change = atoken_of(api, token, "change user record by token")
    after = {"login": "ann", "phone": "07700 900123", "custom": "c-1", "name": "Ann"}
    assert api.get(f"/v1/audit/get/{change}").json() == {
        "status": "ok",
        "event": {"before": ANN, "after": after},
    }
    created = atoken_of(api, token, "create user record")
    assert api.get(f"/v1/audit/get/{created}").json() == {"status": "ok", "event": {"after": ANN}}
    read = atoken_of(api, token, "get user record by token")
    assert api.get(f"/v1/audit/get/{read}").json() == {"status": "ok", "event": {}}


def test_an_unknown_event_is_not_found_for_root(api: TestClient) -> None:
    assert_error(api.get(f"/v1/audit/get/{uuid.uuid4()}"), 404, "not found")


def test_admin_lists_every_event_with_paging(
    api: TestClient, anonymous: TestClient, clock: Clock
) -> None:
    ann = create(api, ANN)
    clock.advance(1)
    bob = create(api, {"login": "bob"})
    clock.advance(1)
    assert api.get(f"/v1/user/token/{ann}").status_code == 200

    full = everything(api)
    assert full["status"] == "ok"
    assert full["total"] == 3
    assert [row["record"] for row in full["rows"]] == [ann, bob, ann]
    page = everything(api, "offset=1&limit=1")
    assert page["total"] == 3
    assert page["rows"] == full["rows"][1:2]
    assert_error(anonymous.get("/v1/audit/admin"), 403, "access denied")


def test_disabled_audit_writes_no_events(make_vault: Any) -> None:
    with client_for(make_vault(generic={"disable_audit": True})) as client:
        token = create(client, ANN)
        assert client.get("/v1/user/login/ann").status_code == 200
        assert client.put(f"/v1/user/token/{token}", json={"name": "Ann"}).status_code == 200
        assert client.post("/v1/user", json={"login": "ann"}).status_code == 409
        assert trail(client, token) == {"status": "ok", "total": 0, "rows": []}
        assert everything(client) == {"status": "ok", "total": 0, "rows": []}


# -- a person reading their own trail --------------------------------------------------------
def test_a_user_token_reads_only_its_own_trail_and_events(api: TestClient, vault: Context) -> None:
    ann = create(api, ANN)
    bob = create(api, {"login": "bob", "email": "bob@example.com"})
    assert api.put(f"/v1/user/token/{ann}", json={"name": "Ann"}).is_success
    assert api.put(f"/v1/user/token/{bob}", json={"name": "Bob"}).is_success
    ann_change = atoken_of(api, ann, "change user record by token")
    bob_change = atoken_of(api, bob, "change user record by token")

    with client_for(vault, issue_user_token(vault, ann)) as client:
        own = trail(client, ann)
        assert ann_change in [row["atoken"] for row in own["rows"]]
        event = client.get(f"/v1/audit/get/{ann_change}")
        assert event.status_code == 200
        assert event.json()["event"]["after"]["name"] == "Ann"

        assert_error(client.get(f"/v1/audit/list/{bob}"), 403, "access denied")
        assert_error(client.get(f"/v1/audit/get/{bob_change}"), 403, "access denied")
        assert_error(client.get(f"/v1/audit/get/{uuid.uuid4()}"), 403, "access denied")
        assert_error(client.get("/v1/audit/admin"), 403, "access denied")


def test_another_users_denied_reads_show_in_the_persons_own_trail(
    api: TestClient, vault: Context
) -> None:
    ann = create(api, {"email": "ann@example.com"})
    bob = create(api, {"email": "bob@example.com"})
    event = atoken_of(api, ann, "create user record")
    with client_for(vault, issue_user_token(vault, bob)) as bob_client:
        assert bob_client.get(f"/v1/audit/list/{ann}").status_code == 403
        assert bob_client.get(f"/v1/audit/get/{event}").status_code == 403

    denied = [
        (row["title"], row["msg"]) for row in trail(api, ann)["rows"] if row["status"] == "error"
    ]
    assert ("view audit events", "access denied") in denied
    assert ("view audit event", "access denied") in denied
