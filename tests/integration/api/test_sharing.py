"""Shared records over HTTP: ``POST /v1/sharedrecord/{mode}/{identity}`` and the anonymous
``GET /v1/get/{record}``.

Every assertion is about what a client observes: status, body, follow-up reads, the audit
trail and what the database holds.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from httpx2 import Response
from starlette.testclient import TestClient

from databunker.jobs import run_jobs
from databunker.services.context import Context
from support.vaults import Clock, client_for, create_user, issue_user_token

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ACCESS_DENIED = {"status": "error", "message": "access denied"}
PURGE = "purge expired shared records"
SESSION_MESSAGE = "the session does not belong to this user"
ANN: dict[str, Any] = {
    "email": "ann@example.com",
    "name": "Ann",
    "address": {"city": "London", "zip": "N1"},
    "tags": ["a", "b"],
}
BOB: dict[str, Any] = {"email": "bob@example.com", "name": "Bob"}
SHOP = {"basket": ["tea", "milk"], "card": {"last4": "4242", "brand": "visa"}}
SESSION_DATA = {"email": "ann@example.com", "ip": "192.0.2.1", "cart": {"items": 2}}


# -- helpers ---------------------------------------------------------------------------------


def share(client: TestClient, token: str, body: dict[str, Any] | None = None) -> Response:
    return client.post(f"/v1/sharedrecord/token/{token}", json=body)


def share_ok(client: TestClient, token: str, body: dict[str, Any] | None = None) -> str:
    response = share(client, token, body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer == {"status": "ok", "record": answer["record"]}
    assert UUID.match(answer["record"])
    return str(answer["record"])


def put_app_record(client: TestClient, token: str, app: str, data: dict[str, Any]) -> None:
    response = client.post(f"/v1/userapp/token/{token}/{app}", json=data)
    assert response.status_code == 200, response.text


def put_session(client: TestClient, data: dict[str, Any]) -> str:
    session = str(uuid.uuid4())
    response = client.post(f"/v1/session/{session}", json=data)
    assert response.status_code == 200, response.text
    return session


def assert_error(response: Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"status": "error", "message": message}


def admin_events(client: TestClient) -> list[dict[str, Any]]:
    response = client.get("/v1/audit/admin?limit=100")
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["rows"]
    return rows


# -- the profile as the source ---------------------------------------------------------------
def test_a_shared_profile_is_readable_without_credentials(
    api: TestClient, anonymous: TestClient
) -> None:
    token = create_user(api, ANN)
    record = share_ok(api, token)

    response = anonymous.get(f"/v1/get/{record}")

    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "data": ANN}


def test_fields_select_dot_paths_and_the_token_with_missing_paths_null(
    api: TestClient, anonymous: TestClient
) -> None:
    token = create_user(api, ANN)
    fields = "name,address.city,token,nothing,address.nope,tags.1,tags.¹"
    record = share_ok(api, token, {"fields": fields})

    response = anonymous.get(f"/v1/get/{record}")

    assert response.json() == {
        "status": "ok",
        "data": {
            "name": "Ann",
            "address.city": "London",
            "token": token,
            "nothing": None,
            "address.nope": None,
            "tags.1": "b",
            "tags.¹": None,
        },
    }


def test_a_form_body_and_a_whole_object_field_are_accepted(
    api: TestClient, anonymous: TestClient
) -> None:
    token = create_user(api, ANN)
    response = api.post(
        f"/v1/sharedrecord/email/{ANN['email']}",
        content="fields=address&partner=acme",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200, response.text

    shared = anonymous.get(f"/v1/get/{response.json()['record']}")

    assert shared.json() == {"status": "ok", "data": {"address": ANN["address"]}}
    assert token


def test_the_person_shares_their_own_record_with_their_token(
    api: TestClient, anonymous: TestClient, vault: Context
) -> None:
    token = create_user(api, ANN)
    with client_for(vault, issue_user_token(vault, token)) as own:
        record = share_ok(own, token, {"fields": "name"})

    assert anonymous.get(f"/v1/get/{record}").json() == {"status": "ok", "data": {"name": "Ann"}}


def test_a_record_token_reads_whatever_header_the_reader_sends(
    api: TestClient, vault: Context
) -> None:
    token = create_user(api, ANN)
    bob = create_user(api, BOB)
    record = share_ok(api, token, {"fields": "name"})

    for credential in (str(uuid.uuid4()), "garbage", issue_user_token(vault, bob)):
        with client_for(vault, credential) as reader:
            response = reader.get(f"/v1/get/{record}")
            assert response.json() == {"status": "ok", "data": {"name": "Ann"}}, credential


def test_the_record_token_is_case_insensitive(api: TestClient, anonymous: TestClient) -> None:
    token = create_user(api, ANN)
    record = share_ok(api, token, {"fields": "name"})

    assert anonymous.get(f"/v1/get/{record.upper()}").status_code == 200


# -- app records as the source ---------------------------------------------------------------
def test_an_app_record_is_shared_with_its_app_name(api: TestClient, anonymous: TestClient) -> None:
    token = create_user(api, ANN)
    put_app_record(api, token, "shop", SHOP)
    whole = share_ok(api, token, {"app": "Shop"})
    some = share_ok(api, token, {"app": "shop", "fields": "card.brand,basket.0,token,name"})

    assert anonymous.get(f"/v1/get/{whole}").json() == {"status": "ok", "app": "shop", "data": SHOP}
    assert anonymous.get(f"/v1/get/{some}").json() == {
        "status": "ok",
        "app": "shop",
        "data": {"card.brand": "visa", "basket.0": "tea", "token": token, "name": None},
    }


@pytest.mark.parametrize("app", ["1shop", "s", "shop-x", "a" * 32, 5])
def test_a_bad_app_name_is_rejected(api: TestClient, app: Any) -> None:
    token = create_user(api, ANN)
    assert_error(share(api, token, {"app": app}), 400, "unknown app name")


def test_an_app_without_a_record_of_the_person_is_not_found(api: TestClient) -> None:
    token = create_user(api, ANN)
    bob = create_user(api, BOB)
    put_app_record(api, bob, "shop", SHOP)

    assert_error(share(api, token, {"app": "shop"}), 404, "app not found")
    assert_error(share(api, token, {"app": "sho"}), 404, "app not found")


def test_a_deleted_app_record_is_no_longer_shared(api: TestClient, anonymous: TestClient) -> None:
    token = create_user(api, ANN)
    put_app_record(api, token, "shop", SHOP)
    record = share_ok(api, token, {"app": "shop"})
    assert api.delete(f"/v1/userapp/token/{token}/shop").status_code == 200

    assert_error(anonymous.get(f"/v1/get/{record}"), 404, "not found")


# -- sessions as the source ------------------------------------------------------------------
def test_the_persons_session_is_shared(api: TestClient, anonymous: TestClient) -> None:
    token = create_user(api, ANN)
    session = put_session(api, SESSION_DATA)
    whole = share_ok(api, token, {"session": session})
    some = share_ok(api, token, {"session": session, "fields": "cart.items,ip"})

    assert anonymous.get(f"/v1/get/{whole}").json() == {
        "status": "ok",
        "session": session,
        "data": SESSION_DATA,
    }
    assert anonymous.get(f"/v1/get/{some}").json() == {
        "status": "ok",
        "session": session,
        "data": {"cart.items": 2, "ip": "192.0.2.1"},
    }


@pytest.mark.parametrize("caller", ["root", "owner"])
def test_a_session_of_someone_else_cannot_be_shared(
    api: TestClient, vault: Context, caller: str
) -> None:
    token = create_user(api, ANN)
    create_user(api, BOB)
    bobs = put_session(api, {"email": BOB["email"], "secret": "bob's"})
    nobodys = put_session(api, {"secret": "unlinked"})
    never = str(uuid.uuid4())
    credential = None if caller == "root" else issue_user_token(vault, token)

    with client_for(vault, credential) if credential else client_for(vault) as client:
        for session in (bobs, nobodys, never):
            response = share(client, token, {"session": session})
            assert_error(response, 403, SESSION_MESSAGE)


def test_a_session_that_is_not_a_uuid_is_rejected(api: TestClient) -> None:
    token = create_user(api, ANN)
    assert_error(share(api, token, {"session": "not-a-uuid"}), 400, "bad uuid")


def test_an_expired_or_deleted_session_is_no_longer_shared(make_vault: Any, clock: Clock) -> None:
    vault = make_vault(
        policy={
            "max_session_retention_period": "1h",
            "max_shareable_record_retention_period": "1d",
        }
    )
    with client_for(vault) as api, client_for(vault, None) as anonymous:
        token = create_user(api, ANN)
        short = put_session(api, {**SESSION_DATA, "expiration": "60s"})
        kept = put_session(api, SESSION_DATA)
        expiring = share_ok(api, token, {"session": short})
        deleted = share_ok(api, token, {"session": kept})
        assert anonymous.get(f"/v1/get/{expiring}").status_code == 200
        assert api.delete(f"/v1/session/{kept}").status_code == 200

        clock.advance(61)

        assert_error(anonymous.get(f"/v1/get/{expiring}"), 403, "access denied")
        assert_error(anonymous.get(f"/v1/get/{deleted}"), 403, "access denied")
        assert_error(share(api, token, {"session": short}), 403, SESSION_MESSAGE)


# -- expiry ----------------------------------------------------------------------------------
def test_a_record_expires_at_its_expiration_and_is_then_purged(
    make_vault: Any, clock: Clock
) -> None:
    vault = make_vault()
    with client_for(vault) as api, client_for(vault, None) as anonymous:
        token = create_user(api, ANN)
        hour = share_ok(api, token, {"expiration": "1h", "fields": "name"})
        day = share_ok(api, token, {"expiration": 86400, "fields": "name"})

        clock.advance(3599)
        assert anonymous.get(f"/v1/get/{hour}").status_code == 200
        assert run_jobs(vault)[PURGE] == 0

        clock.advance(1)
        assert_error(anonymous.get(f"/v1/get/{hour}"), 403, "access denied")
        assert anonymous.get(f"/v1/get/{day}").status_code == 200
        assert run_jobs(vault)[PURGE] == 1
        assert run_jobs(vault)[PURGE] == 0
        assert anonymous.get(f"/v1/get/{day}").status_code == 200
        assert_error(anonymous.get(f"/v1/get/{hour}"), 403, "access denied")

        clock.advance(86400)
        assert run_jobs(vault)[PURGE] == 1


def test_the_expiration_is_capped_by_the_policy(make_vault: Any, clock: Clock) -> None:
    vault = make_vault(policy={"max_shareable_record_retention_period": "1h"})
    with client_for(vault) as api, client_for(vault, None) as anonymous:
        token = create_user(api, ANN)
        capped = share_ok(api, token, {"expiration": "10d"})
        default = share_ok(api, token)
        absolute = share_ok(api, token, {"expiration": clock.now + 600})

        clock.advance(600)
        assert_error(anonymous.get(f"/v1/get/{absolute}"), 403, "access denied")
        assert anonymous.get(f"/v1/get/{capped}").status_code == 200
        clock.advance(2999)
        assert anonymous.get(f"/v1/get/{default}").status_code == 200
        assert anonymous.get(f"/v1/get/{capped}").status_code == 200
        clock.advance(1)
        assert_error(anonymous.get(f"/v1/get/{capped}"), 403, "access denied")
        assert_error(anonymous.get(f"/v1/get/{default}"), 403, "access denied")


# -- bad input and unknown records -----------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"fields": ["name"]}, "bad fields"),
        ({"fields": ",".join(f"f{i}" for i in range(101))}, "too many fields"),
        ({"partner": 7}, "bad partner"),
        ({"partner": "p" * 129}, "bad partner"),
        ({"expiration": "soon"}, "bad expiration"),
        ({"session": 12}, "bad session"),
    ],
)
def test_bad_values_are_rejected(api: TestClient, body: dict[str, Any], message: str) -> None:
    token = create_user(api, ANN)
    assert_error(share(api, token, body), 400, message)


def test_a_body_that_is_not_an_object_is_rejected(api: TestClient) -> None:
    token = create_user(api, ANN)
    response = api.post(f"/v1/sharedrecord/token/{token}", json=["name"])
    assert_error(response, 400, "failed to decode request body")


def test_a_missing_person_is_not_found_for_root(api: TestClient) -> None:
    assert_error(share(api, str(uuid.uuid4())), 404, "not found")
    assert_error(api.post("/v1/sharedrecord/email/nobody@example.com"), 404, "not found")
    assert_error(api.post("/v1/sharedrecord/size/7"), 400, "bad mode")


def test_a_bad_record_token_is_rejected_and_an_unknown_one_denied(anonymous: TestClient) -> None:
    assert_error(anonymous.get("/v1/get/not-a-uuid"), 400, "bad uuid")
    assert_error(anonymous.get(f"/v1/get/{uuid.uuid4()}"), 403, "access denied")


# -- erasure ---------------------------------------------------------------------------------
def test_an_erased_persons_records_are_gone(api: TestClient, anonymous: TestClient) -> None:
    token = create_user(api, ANN)
    record = share_ok(api, token)
    assert api.delete(f"/v1/user/token/{token}").status_code == 200

    assert_error(anonymous.get(f"/v1/get/{record}"), 403, "access denied")
    assert_error(share(api, token), 404, "user record not found")


# -- audit and secrecy -----------------------------------------------------------------------
def test_creating_and_reading_are_audited_without_the_record_token(
    api: TestClient, anonymous: TestClient
) -> None:
    token = create_user(api, ANN)
    put_app_record(api, token, "shop", SHOP)
    record = api.post(f"/v1/sharedrecord/email/{ANN['email']}", json={"app": "shop"}).json()[
        "record"
    ]
    assert anonymous.get(f"/v1/get/{record}").status_code == 200
    assert anonymous.get(f"/v1/get/{uuid.uuid4()}").status_code == 403

    events = admin_events(api)
    created = [e for e in events if e["title"] == "create shareable record by email"]
    read = [e for e in events if e["title"] == "get shareable record by token"]
    assert [(e["status"], e["record"], e.get("identity")) for e in created] == [
        ("ok", token, "root")
    ]
    assert [(e["status"], e.get("record"), e["mode"], e.get("app")) for e in read] == [
        ("error", None, "record", None),
        ("ok", token, "record", "shop"),
    ]
    assert record not in api.get("/v1/audit/admin?limit=100").text
    trail = api.get(f"/v1/audit/list/{token}?limit=100").json()["rows"]
    assert "get shareable record by token" in [row["title"] for row in trail]


def test_the_record_token_is_stored_only_as_a_keyed_hash(api: TestClient, vault: Context) -> None:
    token = create_user(api, ANN)
    record = share_ok(api, token, {"partner": "acme", "fields": "name"})

    with vault.database.transaction() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.text("SELECT * FROM shared_records"))]
    assert len(rows) == 1
    stored = repr(rows).lower()
    assert record not in stored
    assert record.replace("-", "") not in stored
    assert uuid.UUID(record).bytes not in bytes(rows[0]["record_hash"])
    assert (rows[0]["partner"], rows[0]["fields"]) == ("acme", "name")
