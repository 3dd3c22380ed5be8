"""The v2 wire itself: envelope, error shapes and codes, body rules, tenants, credentials,
``request_metadata`` in the audit trail. Every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
from starlette.testclient import TestClient

from databunker.api.v2 import OPERATIONS
from databunker.api.v2.registry import index_operations
from databunker.services.context import Context
from support.v2 import ANN, assert_error, call, create, ok
from support.vaults import ROOT_TOKEN, VaultFactory, client_for

UNKNOWN_OP = "The API request was not found"
NOT_DECODED = "Failed to decode the request body"


def test_user_create_then_get_answers_in_the_v2_envelope(api: TestClient) -> None:
    token = create(api, ANN)
    uuid.UUID(token)
    answer = ok(api, "UserGet", {"mode": "email", "identity": "ANN@example.com"})
    assert answer == {
        "status": "ok",
        "token": token,
        "profile": ANN,
        "finaltime": 0,
        "slidingtime": 0,
        "expirationtime": 0,
        "grouproles": [],
    }


def test_an_unknown_operation_is_404_in_the_v2_shape(api: TestClient) -> None:
    assert_error(call(api, "UserFly", {}), 404, UNKNOWN_OP)
    assert_error(call(api, "usercreate", {"profile": ANN}), 404, UNKNOWN_OP)
    assert_error(call(api, "UserCreate/extra", {"profile": ANN}), 404, UNKNOWN_OP)


def test_other_methods_than_post_are_405(api: TestClient) -> None:
    response = api.get("/v2/UserGet")
    assert_error(response, 405, "Method not allowed")
    assert response.headers["allow"] == "POST"
    assert_error(api.put("/v2/UserCreate", json={}), 405, "Method not allowed")


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"[1, 2]", b'"text"', b"42", b"\xff\xfe", b'{"profile": {"a": 1}'],
)
def test_a_body_that_is_not_a_json_object_is_400(api: TestClient, raw: bytes) -> None:
    response = api.post("/v2/UserCreate", content=raw, headers={"Content-Type": "text/plain"})
    assert_error(response, 400, NOT_DECODED)


def test_the_body_is_json_whatever_the_content_type(api: TestClient) -> None:
    response = api.post(
        "/v2/UserCreate",
        content=b'{"profile": {"login": "formless"}}',
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200, response.text
    assert ok(api, "UserGet", {"mode": "login", "identity": "formless"})["profile"] == {
        "login": "formless"
    }


def test_missing_fields_are_named(api: TestClient) -> None:
    assert_error(call(api, "UserCreate", {}), 400, "Missing API request parameters: profile")
    assert_error(call(api, "UserCreate"), 400, "Missing API request parameters: profile")
    assert_error(
        call(api, "UserGet", {"profile": {}}),
        400,
        "Missing API request parameters: mode, identity",
    )
    # null counts as absent
    assert_error(
        call(api, "UserGet", {"mode": "email", "identity": None}),
        400,
        "Missing API request parameters: identity",
    )


def test_wrong_types_name_the_field(api: TestClient) -> None:
    assert_error(
        call(api, "UserCreate", {"profile": "ann"}),
        400,
        "The profile parameter has an incorrect format",
    )
    assert_error(
        call(api, "UserGet", {"mode": "email", "identity": 42}),
        400,
        "The identity parameter has an incorrect format",
    )
    assert_error(
        call(api, "UserGet", {"mode": "email", "identity": "ann@example.com", "version": "x"}),
        400,
        "The version parameter has an incorrect format",
    )


def test_a_bad_mode_and_a_bad_uuid_have_the_spec_messages(api: TestClient) -> None:
    assert_error(
        call(api, "UserGet", {"mode": "name", "identity": "ann"}),
        400,
        "The mode parameter has an incorrect format",
    )
    assert_error(call(api, "UserGet", {"mode": "token", "identity": "nope"}), 400, "Bad UUID")


def test_unknown_fields_are_ignored(api: TestClient) -> None:
    token = create(api, ANN, colour="blue", nested={"a": [1]})
    assert ok(api, "UserGet", {"mode": "token", "identity": token, "x": 1})["token"] == token


def test_an_unknown_user_is_404(api: TestClient) -> None:
    assert_error(
        call(api, "UserGet", {"mode": "email", "identity": "nobody@example.com"}),
        404,
        "The user record was not found",
    )
    assert_error(
        call(api, "UserGet", {"mode": "token", "identity": str(uuid.uuid4())}),
        404,
        "The user record was not found",
    )


def test_a_duplicate_identity_is_409(api: TestClient) -> None:
    create(api, ANN)
    assert_error(
        call(api, "UserCreate", {"profile": {"email": "Ann@Example.com"}}),
        409,
        "Duplicate index: email",
    )


@pytest.mark.parametrize(
    "token", [None, "", "garbage", "0b4f3c1e-8f0a-4d6e-9c55-1a2b3c4d5e6f", "DEMO"]
)
def test_no_or_a_wrong_token_is_403_before_the_body_is_judged(
    vault: Context, token: str | None
) -> None:
    with client_for(vault, token) as client:
        assert_error(call(client, "UserCreate", {"profile": ANN}), 403, "Access denied")
        # Authentication comes before the fields: a stranger learns nothing from them.
        assert_error(call(client, "UserGet", {}), 403, "Access denied")
        assert_error(
            call(client, "UserGet", {"mode": "email", "identity": "nobody@example.com"}),
            403,
            "Access denied",
        )


def test_the_default_tenant_is_reached_with_or_without_its_name(api: TestClient) -> None:
    token = create(api, ANN)
    for tenant in ("default", "DEFAULT", ""):
        answer = call(
            api, "UserGet", {"mode": "token", "identity": token}, **{"X-Bunker-Tenant": tenant}
        )
        assert answer.status_code == 200, answer.text


def test_any_other_tenant_is_denied_like_a_wrong_token(api: TestClient) -> None:
    token = create(api, ANN)
    body = {"mode": "token", "identity": token}
    assert_error(call(api, "UserGet", body, **{"X-Bunker-Tenant": "acme"}), 403, "Access denied")
    assert_error(
        call(api, "UserCreate", {"profile": {"login": "x"}}, **{"X-Bunker-Tenant": "acme"}),
        403,
        "Access denied",
    )
    # nothing was created in the default tenant by the refused call
    assert_error(
        call(api, "UserGet", {"mode": "login", "identity": "x"}),
        404,
        "The user record was not found",
    )


def test_request_metadata_is_kept_sealed_with_the_audit_event(
    api: TestClient, vault: Context
) -> None:
    metadata = {"purpose": "support", "ticket_id": "T-1"}
    token = create(api, ANN, request_metadata=metadata)
    ok(api, "UserGet", {"mode": "token", "identity": token, "request_metadata": metadata})
    events = api.get(f"/v1/audit/list/{token}").json()["rows"]
    titles = [event["title"] for event in events]
    assert "create user record" in titles
    assert "get user record by token" in titles
    for event in events:
        assert event["more"] is True
        detail = api.get(f"/v1/audit/get/{event['atoken']}").json()
        assert detail["event"]["request_metadata"] == metadata
    # Stored encrypted: the plain values are nowhere in the audit table.
    with vault.database.transaction() as conn:
        stored = conn.exec_driver_sql("SELECT debug FROM audit").scalars().all()
    sealed = [value for value in stored if value]
    assert sealed
    assert all("support" not in value and "T-1" not in value for value in sealed)


def test_request_metadata_must_be_an_object(api: TestClient) -> None:
    assert_error(
        call(api, "UserCreate", {"profile": ANN, "request_metadata": "x"}), 400, NOT_DECODED
    )


def test_request_metadata_of_a_denied_attempt_is_kept_too(api: TestClient, vault: Context) -> None:
    token = create(api, ANN)
    with client_for(vault, str(uuid.uuid4())) as stranger:
        body = {"mode": "token", "identity": token, "request_metadata": {"caller_ip": "1.2.3.4"}}
        assert_error(call(stranger, "UserGet", body), 403, "Access denied")
    events = api.get(f"/v1/audit/list/{token}").json()["rows"]
    denied = [event for event in events if event["status"] == "error"]
    assert len(denied) == 1
    detail = api.get(f"/v1/audit/get/{denied[0]['atoken']}").json()
    assert detail["event"]["request_metadata"] == {"caller_ip": "1.2.3.4"}


def test_a_body_over_the_size_bound_is_413(make_vault: VaultFactory) -> None:
    vault = make_vault(server={"max_body_bytes": 200})
    with client_for(vault, ROOT_TOKEN) as client:
        response = call(client, "UserCreate", {"profile": {"note": "x" * 500}})
    assert_error(response, 413, "The request body is too large")


def test_the_cors_preflight_allows_the_tenant_header(api: TestClient) -> None:
    response = api.options(
        "/v2/UserCreate",
        headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 204
    assert "X-Bunker-Tenant" in response.headers["access-control-allow-headers"]
    assert "POST" in response.headers["allow"]


def test_a_v2_person_is_the_same_person_through_v1_and_back(api: TestClient) -> None:
    token = create(api, ANN)
    v1 = api.get("/v1/user/login/ann").json()
    assert v1 == {"status": "ok", "token": token, "data": ANN}
    created = api.post("/v1/user", json={"login": "bob", "email": "bob@example.com"}).json()
    answer = ok(api, "UserGet", {"mode": "email", "identity": "bob@example.com"})
    assert answer["token"] == created["token"]
    assert answer["profile"] == {"login": "bob", "email": "bob@example.com"}


def test_an_operation_defined_twice_is_refused_at_start() -> None:
    operation = OPERATIONS["UserGet"]
    with pytest.raises(ValueError, match="UserGet is defined twice"):
        index_operations([(operation,), (operation,)])


def test_every_operation_name_is_served(api: TestClient) -> None:
    for name in OPERATIONS:
        response = call(api, name, {})
        assert response.status_code != 404 or response.json()["message"] != UNKNOWN_OP, name


@pytest.mark.parametrize("control", ["\x00", "\x1b"], ids=["nul", "esc"])
def test_an_identity_with_a_control_character_matches_nobody(api: TestClient, control: str) -> None:
    token = create(api, ANN)
    for mode, identity in (("email", "ann@example.com"), ("login", "ann")):
        body = {"mode": mode, "identity": identity + control}
        assert_error(call(api, "UserGet", body), 404, "The user record was not found")
    assert_error(
        call(api, "UserGet", {"mode": "token", "identity": token + control}), 400, "Bad UUID"
    )
    response = call(api, "UserCreate", {"profile": {"login": "x" + control}})
    assert response.status_code == 400, response.text
