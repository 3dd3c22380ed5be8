"""User records over HTTP: ``/v1/user``, ``/v1/user/{mode}/{identity}`` and ``/v1/users``.

Every assertion is about what an API client observes: status, body and follow-up reads.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from httpx2 import Response
from starlette.testclient import TestClient

from databunker.services.context import Context
from support.vaults import client_for, issue_user_token

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON = {"Content-Type": "application/json"}
ANN: dict[str, Any] = {
    "login": "ann",
    "email": "ann@example.com",
    "phone": "07700 900123",
    "custom": "c-1",
    "name": "Ann Ærø",
    "address": {"city": "London", "zip": "N1"},
    "tags": ["a", "b"],
    "age": 41,
    "score": 1.5,
    "vip": True,
    "note": None,
}
SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "login": {"type": "string", "preserve": True},
        "email": {"type": "string"},
        "ssn": {"type": "string", "locked": True},
    },
    "required": ["name"],
}


# -- helpers ---------------------------------------------------------------------------------
def create(client: TestClient, profile: dict[str, Any]) -> str:
    response = client.post("/v1/user", json=profile)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {"status": "ok", "token": body["token"]}
    assert UUID.match(body["token"])
    return str(body["token"])


def get(client: TestClient, mode: str, identity: str) -> Response:
    return client.get(f"/v1/user/{mode}/{identity}")


def profile_of(client: TestClient, token: str) -> Any:
    response = get(client, "token", token)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def put_json(client: TestClient, path: str, document: Any) -> Response:
    return client.put(path, json=document)


def assert_error(response: Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"status": "error", "message": message}


# -- create and read -------------------------------------------------------------------------
def test_create_then_get_returns_the_profile_exactly_as_posted(api: TestClient) -> None:
    token = create(api, ANN)
    response = get(api, "token", token)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "token": token, "data": ANN}


@pytest.mark.parametrize(
    ("mode", "identity"),
    [("login", "ann"), ("email", "ann@example.com"), ("phone", "+447700900123"), ("custom", "c-1")],
)
def test_every_lookup_mode_finds_the_record(api: TestClient, mode: str, identity: str) -> None:
    token = create(api, ANN)
    assert get(api, mode, identity).json() == {"status": "ok", "token": token, "data": ANN}


def test_a_chunked_body_without_a_length_is_read(api: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"login": "ann", '
        yield b'"name": "Ann"}'

    response = api.post("/v1/user", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    assert profile_of(api, response.json()["token"]) == {"login": "ann", "name": "Ann"}


def test_form_body_values_are_stored_as_strings(api: TestClient) -> None:
    body = "login=ann&age=42&vip=true&email=ann%40example.com"
    response = api.post("/v1/user", content=body, headers=FORM)
    assert response.status_code == 200, response.text
    token = response.json()["token"]
    expected = {"login": "ann", "age": "42", "vip": "true", "email": "ann@example.com"}
    assert profile_of(api, token) == expected


def test_json_content_type_with_charset_is_accepted(api: TestClient) -> None:
    response = api.post(
        "/v1/user",
        content=b'{"login":"ann","name":"Ann"}',
        headers={"Content-Type": "application/json;charset=UTF-8"},
    )
    assert response.status_code == 200, response.text
    assert profile_of(api, response.json()["token"]) == {"login": "ann", "name": "Ann"}


def test_trailing_slash_is_served_without_redirect(api: TestClient) -> None:
    response = api.post("/v1/user/", json={"login": "ann"}, follow_redirects=False)
    assert response.status_code == 200, response.text
    token = response.json()["token"]
    found = api.get(f"/v1/user/token/{token}/", follow_redirects=False)
    assert found.status_code == 200
    assert found.json()["data"] == {"login": "ann"}


# -- normalisation ---------------------------------------------------------------------------
def test_email_lookup_ignores_case_and_keeps_the_posted_spelling(api: TestClient) -> None:
    token = create(api, {"email": "Ann@Example.com"})
    for spelling in ("ann@example.com", "ANN@EXAMPLE.COM", "Ann@Example.com"):
        response = get(api, "email", spelling)
        assert response.status_code == 200, spelling
        expected = {"status": "ok", "token": token, "data": {"email": "Ann@Example.com"}}
        assert response.json() == expected


def test_email_lookup_takes_plus_addresses_and_escapes_literally(api: TestClient) -> None:
    token = create(api, {"email": "ann+news@example.com"})
    assert get(api, "email", "ann+news@example.com").json()["token"] == token
    assert get(api, "email", "ann%2Bnews%40example.com").json()["token"] == token
    assert_error(get(api, "email", "ann news@example.com"), 404, "not found")


def test_numeric_login_is_found_by_its_text(api: TestClient) -> None:
    token = create(api, {"login": 123})
    assert get(api, "login", "123").json() == {
        "status": "ok",
        "token": token,
        "data": {"login": 123},
    }


def test_phone_lookup_uses_the_default_country_gb(api: TestClient) -> None:
    token = create(api, {"phone": "07700 900123"})
    for spelling in ("+447700900123", "07700900123", "07700 900123"):
        response = get(api, "phone", spelling)
        assert response.status_code == 200, spelling
        assert response.json()["token"] == token


def test_phone_lookup_uses_the_configured_default_country(make_vault: Any) -> None:
    with client_for(make_vault(sms={"default_country": "US"})) as client:
        token = create(client, {"phone": "(202) 555-0143"})
        for spelling in ("+12025550143", "2025550143"):
            assert get(client, "phone", spelling).json()["token"] == token


def test_login_and_custom_are_trimmed_but_custom_keeps_its_case(api: TestClient) -> None:
    token = create(api, {"login": "  ann  ", "custom": " C-1 "})
    assert get(api, "login", "ann").json()["token"] == token
    assert get(api, "login", "%20ann%20").json()["token"] == token
    assert get(api, "custom", "C-1").json()["token"] == token
    assert_error(get(api, "custom", "c-1"), 404, "not found")
    assert profile_of(api, token) == {"login": "  ann  ", "custom": " C-1 "}


@pytest.mark.parametrize(
    ("field", "first", "second"),
    [
        ("login", "ann", " ann "),
        ("email", "ann@example.com", "ANN@Example.COM"),
        ("phone", "07700 900123", "+447700900123"),
        ("custom", "c-1", "c-1 "),
    ],
)
def test_a_taken_identity_is_a_conflict(
    api: TestClient, field: str, first: str, second: str
) -> None:
    create(api, {field: first, "name": "first"})
    response = api.post("/v1/user", json={field: second, "name": "second"})
    assert_error(response, 409, f"duplicate index: {field}")
    mode_identity = {"phone": "+447700900123", "email": "ann@example.com"}.get(field, first.strip())
    assert get(api, field, mode_identity).json()["data"]["name"] == "first"


# -- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "headers", "message"),
    [
        ('{"name":"Ann"}', JSON, "failed to create user, all user lookup fields are missing"),
        ('{"login":"ann","email":"not-an-email"}', JSON, "invalid email"),
        ('{"login":"ann","phone":"call me"}', JSON, "invalid phone"),
        ('{"login":"ann","phone":"12"}', JSON, "invalid phone"),
        ('{"login": "ann",', JSON, "failed to decode request body"),
        ('[{"login":"ann"}]', JSON, "failed to decode request body"),
        ("", JSON, "empty request body"),
        ("{}", JSON, "empty request body"),
        ('{"login":"ann"}', FORM, "wrong content-type, json instead of url encoded data"),
    ],
)
def test_create_rejects_bad_input(
    api: TestClient, body: str, headers: dict[str, str], message: str
) -> None:
    assert_error(api.post("/v1/user", content=body, headers=headers), 400, message)
    assert_error(get(api, "login", "ann"), 404, "not found")


@pytest.mark.parametrize(
    ("mode", "identity", "status", "message"),
    [
        ("fax", "ann", 400, "bad mode"),
        ("Email", "ann@example.com", 400, "bad mode"),
        ("token", "not-a-uuid", 400, "bad uuid"),
        ("token", "0b6f4ca2-7f0e-4c4e-9c55-3d7cbbd0f1a9", 404, "not found"),
        ("login", "nobody", 404, "not found"),
        ("email", "nobody@example.com", 404, "not found"),
        ("phone", "+447700900999", 404, "not found"),
    ],
)
def test_lookup_errors_for_root(
    api: TestClient, mode: str, identity: str, status: int, message: str
) -> None:
    create(api, ANN)
    assert_error(get(api, mode, identity), status, message)


def test_other_callers_cannot_tell_a_missing_record_from_a_foreign_one(
    api: TestClient, anonymous: TestClient, vault: Context
) -> None:
    ann = create(api, ANN)
    bob = create(api, {"login": "bob"})
    with client_for(vault, issue_user_token(vault, bob)) as bob_client:
        for client in (anonymous, bob_client):
            assert_error(get(client, "token", ann), 403, "access denied")
            assert_error(get(client, "token", str(uuid.uuid4())), 403, "access denied")
            assert_error(get(client, "email", "nobody@example.com"), 403, "access denied")


# -- change ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        ("", JSON, 400, "empty request body"),
        ("{}", JSON, 400, "empty request body"),
        ('{"name": ', JSON, 400, "failed to decode request body"),
        ('"a string"', JSON, 400, None),
        ('{"phone": "call me"}', JSON, 400, "invalid phone"),
        ('{"email": "nope"}', JSON, 400, "invalid email"),
        ("[1, 2]", JSON, 400, None),
        ('[{"op": "remove", "path": "/missing"}]', JSON, 400, None),
        ('{"name":"Eve"}', FORM, 400, None),
        ("name=Eve", {"Content-Type": "text/plain"}, 400, None),
    ],
)
def test_put_rejects_bad_input_and_changes_nothing(
    api: TestClient, body: str, headers: dict[str, str], status: int, message: str | None
) -> None:
    token = create(api, ANN)
    response = api.put(f"/v1/user/token/{token}", content=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.json()["status"] == "error"
    if message is not None:
        assert response.json()["message"] == message
    assert profile_of(api, token) == ANN


def test_unknown_records_cannot_be_changed_or_erased_by_root(api: TestClient) -> None:
    missing = "0b6f4ca2-7f0e-4c4e-9c55-3d7cbbd0f1a9"
    assert_error(put_json(api, f"/v1/user/token/{missing}", {"a": 1}), 404, "not found")
    assert_error(put_json(api, "/v1/user/login/nobody", {"a": 1}), 404, "not found")
    assert_error(api.delete(f"/v1/user/token/{missing}"), 404, "not found")


def test_put_object_is_a_merge_patch(api: TestClient) -> None:
    token = create(api, ANN)
    patch = {"name": None, "address": {"zip": "E1"}, "tags": ["c"], "new": {"x": 1}}
    response = put_json(api, f"/v1/user/token/{token}", patch)
    assert response.json() == {"status": "ok", "token": token}
    expected = {k: v for k, v in ANN.items() if k != "name"}
    expected |= {"address": {"city": "London", "zip": "E1"}, "tags": ["c"], "new": {"x": 1}}
    assert profile_of(api, token) == expected


def test_put_array_is_a_json_patch(api: TestClient) -> None:
    token = create(api, {"login": "ann", "name": "Ann", "nick": "A"})
    patch = [
        {"op": "test", "path": "/login", "value": "ann"},
        {"op": "add", "path": "/age", "value": 30},
        {"op": "replace", "path": "/name", "value": "Annie"},
        {"op": "remove", "path": "/nick"},
    ]
    assert put_json(api, "/v1/user/login/ann", patch).status_code == 200
    assert profile_of(api, token) == {"login": "ann", "name": "Annie", "age": 30}


def test_a_failing_json_patch_test_changes_nothing(api: TestClient) -> None:
    token = create(api, {"login": "ann", "name": "Ann"})
    patch = [
        {"op": "replace", "path": "/name", "value": "Eve"},
        {"op": "test", "path": "/login", "value": "bob"},
    ]
    response = put_json(api, f"/v1/user/token/{token}", patch)
    assert response.status_code == 400
    assert response.json()["status"] == "error"
    assert profile_of(api, token) == {"login": "ann", "name": "Ann"}


def test_put_form_body_merges_strings(api: TestClient) -> None:
    token = create(api, {"login": "ann", "age": 41})
    response = api.put(f"/v1/user/token/{token}", content="age=42&city=Paris", headers=FORM)
    assert response.status_code == 200, response.text
    assert profile_of(api, token) == {"login": "ann", "age": "42", "city": "Paris"}


def test_changing_the_email_moves_its_index(api: TestClient) -> None:
    token = create(api, ANN)
    assert put_json(api, f"/v1/user/token/{token}", {"email": "ANN@example.com"}).is_success
    assert get(api, "email", "ann@example.com").json()["token"] == token
    assert put_json(api, "/v1/user/email/ann@example.com", {"email": "Ann@New.org"}).is_success
    assert_error(get(api, "email", "ann@example.com"), 404, "not found")
    assert get(api, "email", "ann@new.org").json()["token"] == token
    create(api, {"email": "ann@example.com"})  # the old address is free again


def test_removing_the_email_drops_its_index(api: TestClient) -> None:
    token = create(api, ANN)
    assert put_json(api, f"/v1/user/token/{token}", {"email": None}).is_success
    assert_error(get(api, "email", "ann@example.com"), 404, "not found")
    assert "email" not in profile_of(api, token)
    create(api, {"email": "ann@example.com"})


def test_changing_to_a_taken_email_is_a_conflict_and_changes_nothing(api: TestClient) -> None:
    ann = create(api, ANN)
    bob = create(api, {"login": "bob", "email": "bob@example.com"})
    response = put_json(api, f"/v1/user/token/{bob}", {"email": "ANN@example.com", "x": 1})
    assert_error(response, 409, "duplicate index: email")
    assert profile_of(api, bob) == {"login": "bob", "email": "bob@example.com"}
    assert get(api, "email", "ann@example.com").json()["token"] == ann
    assert get(api, "email", "bob@example.com").json()["token"] == bob


def test_a_change_taking_several_identities_names_the_first_lookup_field(
    api: TestClient,
) -> None:
    create(api, {"login": "ann", "email": "ann@example.com", "phone": "+447700900123"})
    bob = create(api, {"login": "bob"})
    taken = {"phone": "+447700900123", "email": "ann@example.com", "login": "ann"}
    response = put_json(api, f"/v1/user/token/{bob}", taken)
    assert_error(response, 409, "duplicate index: login")
    response = put_json(
        api, f"/v1/user/token/{bob}", {"phone": taken["phone"], "email": taken["email"]}
    )
    assert_error(response, 409, "duplicate index: email")
    assert profile_of(api, bob) == {"login": "bob"}


def test_changing_an_erased_record_is_not_found(api: TestClient) -> None:
    token = create(api, ANN)
    assert api.delete(f"/v1/user/token/{token}").is_success
    response = put_json(api, f"/v1/user/token/{token}", {"name": "Back"})
    assert_error(response, 404, "user record not found")
    assert profile_of(api, token) == {}


# -- schema ----------------------------------------------------------------------------------
@pytest.mark.parametrize("profile", [{"login": "ann"}, {"login": "ann", "name": 7}])
def test_create_violating_the_schema_is_rejected(make_vault: Any, profile: Any) -> None:
    with client_for(make_vault(schema=SCHEMA)) as client:
        response = client.post("/v1/user", json=profile)
        assert response.status_code == 400
        assert response.json()["message"].startswith("user schema error")
        assert_error(get(client, "login", "ann"), 404, "not found")


@pytest.mark.parametrize("patch", [{"name": 7}, {"name": None}])
def test_update_is_validated_against_the_schema(make_vault: Any, patch: Any) -> None:
    with client_for(make_vault(schema=SCHEMA)) as client:
        profile = {"name": "Ann", "login": "ann", "ssn": "123"}
        token = create(client, profile)
        response = put_json(client, f"/v1/user/token/{token}", patch)
        assert response.status_code == 400, response.text
        assert response.json()["status"] == "error"
        assert profile_of(client, token) == profile


@pytest.mark.parametrize("patch", [{"ssn": "999"}, {"ssn": None}])
def test_a_locked_field_cannot_change(make_vault: Any, patch: Any) -> None:
    with client_for(make_vault(schema=SCHEMA)) as client:
        profile = {"name": "Ann", "login": "ann", "ssn": "123"}
        token = create(client, profile)
        response = put_json(client, f"/v1/user/token/{token}", patch)
        assert response.status_code == 400
        assert "Locked value changed: /ssn" in response.json()["message"]
        assert profile_of(client, token) == profile
        assert put_json(client, f"/v1/user/token/{token}", {"name": "Annie"}).is_success


def test_erasure_keeps_preserved_fields(make_vault: Any) -> None:
    with client_for(make_vault(schema=SCHEMA)) as client:
        profile = {"name": "Ann", "login": "ann", "email": "ann@example.com", "ssn": "123"}
        token = create(client, profile)
        assert client.delete(f"/v1/user/token/{token}").json() == {"status": "ok", "result": "done"}
        assert get(client, "token", token).json() == {
            "status": "ok",
            "token": token,
            "data": {"login": "ann"},
        }
        assert get(client, "login", "ann").json()["token"] == token
        assert_error(get(client, "email", "ann@example.com"), 404, "not found")


# -- erase -----------------------------------------------------------------------------------
def test_delete_erases_the_record_and_its_indexes(api: TestClient) -> None:
    token = create(api, ANN)
    assert api.delete("/v1/user/login/ann").json() == {"status": "ok", "result": "done"}
    assert get(api, "token", token).json() == {"status": "ok", "token": token, "data": {}}
    gone = (("email", "ann@example.com"), ("phone", "07700900123"), ("login", "ann"))
    for mode, identity in gone:
        assert_error(get(api, mode, identity), 404, "not found")
    again = api.delete(f"/v1/user/token/{token}")
    assert again.status_code == 404
    assert again.json()["status"] == "error"


def test_root_deleting_an_unknown_email_is_done(api: TestClient) -> None:
    response = api.delete("/v1/user/email/nobody@example.com")
    assert response.json() == {"status": "ok", "result": "done"}


def test_erasure_shreds_the_audit_values(api: TestClient) -> None:
    token = create(api, ANN)
    assert get(api, "email", "ann@example.com").status_code == 200
    assert put_json(api, "/v1/user/email/ann@example.com", {"name": "Annie"}).is_success
    rows = api.get(f"/v1/audit/list/{token}").json()["rows"]
    assert any(row.get("who") == "ann@example.com" for row in rows)
    titles = ("create user record", "change user record by email")
    valued = [row["atoken"] for row in rows if row["title"] in titles]
    assert len(valued) == 2
    for atoken in valued:
        assert api.get(f"/v1/audit/get/{atoken}").json()["event"] != {}

    assert api.delete(f"/v1/user/token/{token}").is_success

    trail = api.get(f"/v1/audit/list/{token}")
    assert trail.status_code == 200
    assert "ann@example.com" not in trail.text
    assert all("who" not in row for row in trail.json()["rows"])
    assert "ann@example.com" not in api.get("/v1/audit/admin?limit=100").text
    for atoken in valued:
        assert api.get(f"/v1/audit/get/{atoken}").json() == {"status": "ok", "event": {}}


# -- list ------------------------------------------------------------------------------------
def test_listing_users_is_off_by_default(api: TestClient) -> None:
    create(api, ANN)
    assert_error(api.post("/v1/users"), 403, "access denied")


def test_listing_users_pages_through_every_profile(make_vault: Any, clock: Any) -> None:
    with client_for(make_vault(generic={"list_users": True})) as client:
        profiles = {}
        for name in ("ann", "bob", "cat"):
            profile = {"login": name, "name": name.title()}
            profiles[create(client, profile)] = profile
            clock.advance(1)
        listing = client.post("/v1/users").json()
        assert listing["status"] == "ok"
        assert listing["total"] == 3
        assert {row["token"]: row["private"] for row in listing["rows"]} == profiles
        assert all(set(row) == {"token", "private"} for row in listing["rows"])
        seen = []
        for offset in range(3):
            page = client.post(f"/v1/users?offset={offset}&limit=1").json()
            assert page["total"] == 3
            assert len(page["rows"]) == 1
            seen.append(page["rows"][0]["token"])
        assert set(seen) == set(profiles)
        assert client.post("/v1/users?offset=1&limit=1").json()["rows"] == listing["rows"][1:2]
        assert client.post("/v1/users?offset=3&limit=1").json()["rows"] == []
        assert_error(client.post("/v1/users?limit=abc"), 400, "bad limit")
        # digits of other scripts are not numbers here
        assert_error(client.post("/v1/users?offset=²"), 400, "bad offset")
        assert_error(client.post("/v1/users?limit=٣"), 400, "bad limit")


# -- anonymous creation ----------------------------------------------------------------------
def test_anonymous_create_is_denied_by_default(api: TestClient, anonymous: TestClient) -> None:
    assert_error(anonymous.post("/v1/user", json={"login": "ann"}), 403, "access denied")
    assert_error(get(api, "login", "ann"), 404, "not found")


def test_anonymous_create_when_allowed(make_vault: Any) -> None:
    vault = make_vault(generic={"create_user_without_access_token": True})
    with client_for(vault, None) as anonymous, client_for(vault) as root:
        token = create(anonymous, {"login": "ann"})
        assert get(root, "login", "ann").json()["token"] == token
        assert_error(get(anonymous, "token", token), 403, "access denied")


# -- limits ----------------------------------------------------------------------------------
def test_a_body_over_the_size_limit_is_rejected(make_vault: Any) -> None:
    with client_for(make_vault(server={"max_body_bytes": 1024})) as client:
        big = {"login": "big", "pad": "x" * 2000}
        response = client.post("/v1/user", json=big)
        assert response.status_code == 413
        assert response.json()["status"] == "error"
        streamed = client.post(
            "/v1/user", content=iter([b'{"login":"big","pad":"', b"x" * 2000, b'"}']), headers=JSON
        )
        assert streamed.status_code == 413
        assert_error(get(client, "login", "big"), 404, "not found")

        token = create(client, {"login": "ann"})
        assert put_json(client, f"/v1/user/token/{token}", {"pad": "y" * 2000}).status_code == 413
        assert profile_of(client, token) == {"login": "ann"}


def _nested(depth: int) -> dict[str, Any]:
    document: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        document = {"a": document}
    return document


def test_json_nested_too_deeply_is_rejected(make_vault: Any) -> None:
    with client_for(make_vault(server={"max_json_depth": 5})) as client:
        response = client.post("/v1/user", json={"login": "deep", "a": _nested(10)})
        assert response.status_code == 400
        assert response.json()["status"] == "error"
        assert_error(get(client, "login", "deep"), 404, "not found")

        token = create(client, {"login": "ann", "a": _nested(3)})
        assert put_json(client, f"/v1/user/token/{token}", {"b": _nested(10)}).status_code == 400
        assert profile_of(client, token) == {"login": "ann", "a": _nested(3)}
