"""User app records over HTTP: ``/v1/userapp/{mode}/{identity}[/{app}]`` and ``/v1/userapps``.

Every assertion is about what an API client observes: status, body, follow-up reads and the
audit trail.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from httpx2 import Response
from starlette.testclient import TestClient

from databunker.crypto import value_context
from databunker.jobs import SYSTEM
from databunker.services import apps, documents
from databunker.services.context import Context, Work
from databunker.storage import repositories as user_repo
from databunker.storage import requests as request_repo
from support.vaults import ROOT_TOKEN, client_for, create_user, issue_user_token

JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ANN = {"login": "ann", "email": "ann@example.com", "name": "Ann"}
BOB = {"login": "bob", "email": "bob@example.com", "name": "Bob"}
CART = {"items": [{"sku": "A-1", "qty": 2}], "total": 19.5, "gift": False, "note": None}


# -- helpers ---------------------------------------------------------------------------------


def app_path(token: str, app: str, mode: str = "token") -> str:
    return f"/v1/userapp/{mode}/{token}/{app}"


def post_app(client: TestClient, token: str, app: str, record: Any) -> Response:
    return client.post(app_path(token, app), json=record)


def record_of(client: TestClient, token: str, app: str) -> Any:
    response = client.get(app_path(token, app))
    assert response.status_code == 200, response.text
    return response.json()["data"]


def assert_error(response: Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"status": "error", "message": message}


def assert_ok(response: Response, token: str) -> None:
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "token": token}


def audit_rows(client: TestClient, token: str) -> list[dict[str, Any]]:
    response = client.get(f"/v1/audit/list/{token}?limit=100")
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["rows"]
    return rows


@pytest.fixture
def ann(api: TestClient) -> str:
    return create_user(api, ANN)


# -- create and read -------------------------------------------------------------------------
def test_create_then_get_returns_the_record_exactly_as_posted(api: TestClient, ann: str) -> None:
    assert_ok(post_app(api, ann, "shop", CART), ann)

    response = api.get(app_path(ann, "shop"))

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "token": ann, "data": CART}


@pytest.mark.parametrize(("mode", "identity"), [("login", "ann"), ("email", "Ann@Example.com")])
def test_every_lookup_mode_reaches_the_record(
    api: TestClient, ann: str, mode: str, identity: str
) -> None:
    assert_ok(api.post(app_path(identity, "shop", mode), json=CART), ann)
    assert api.get(app_path(identity, "shop", mode)).json() == {
        "status": "ok",
        "token": ann,
        "data": CART,
    }


def test_app_names_are_lower_cased(api: TestClient, ann: str) -> None:
    assert_ok(post_app(api, ann, "Shop_2", {"a": 1}), ann)
    assert record_of(api, ann, "SHOP_2") == {"a": 1}
    assert api.get(f"/v1/userapp/token/{ann}").json()["apps"] == ["shop_2"]


def test_post_overwrites_the_whole_record(api: TestClient, ann: str) -> None:
    post_app(api, ann, "shop", {"a": 1, "b": 2})
    assert_ok(post_app(api, ann, "shop", {"c": 3}), ann)
    assert record_of(api, ann, "shop") == {"c": 3}


def test_form_body_values_are_stored_as_strings(api: TestClient, ann: str) -> None:
    response = api.post(app_path(ann, "shop"), content="qty=2&gift=true", headers=FORM)
    assert_ok(response, ann)
    assert record_of(api, ann, "shop") == {"qty": "2", "gift": "true"}


def test_records_of_different_apps_and_people_are_separate(api: TestClient, ann: str) -> None:
    bob = create_user(api, BOB)
    post_app(api, ann, "shop", {"who": "ann-shop"})
    post_app(api, ann, "forum", {"who": "ann-forum"})
    post_app(api, bob, "shop", {"who": "bob-shop"})
    assert record_of(api, ann, "shop") == {"who": "ann-shop"}
    assert record_of(api, ann, "forum") == {"who": "ann-forum"}
    assert record_of(api, bob, "shop") == {"who": "bob-shop"}


def test_records_are_encrypted_at_rest(vault: Context, api: TestClient, ann: str) -> None:
    post_app(api, ann, "shop", {"secret": "plaintext-marker-4711"})
    with vault.database.transaction() as conn:
        stored = conn.exec_driver_sql("SELECT data FROM user_apps").scalar_one()
    assert b"plaintext-marker-4711" not in bytes(stored)


# -- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "headers", "message"),
    [
        ("", JSON, "empty body"),
        ("{}", JSON, "empty body"),
        ('{"a": ', JSON, "failed to decode request body"),
        ('[{"a": 1}]', JSON, "failed to decode request body"),
        ('{"a": 1}', FORM, "wrong content-type, json instead of url encoded data"),
    ],
)
def test_create_rejects_bad_bodies(
    api: TestClient, ann: str, body: str, headers: dict[str, str], message: str
) -> None:
    assert_error(api.post(app_path(ann, "shop"), content=body, headers=headers), 400, message)
    assert_error(api.get(app_path(ann, "shop")), 404, "not found")


@pytest.mark.parametrize("app", ["a", "1shop", "_shop", "sh-op", "sh%20op", "s" * 32, "shöp"])
@pytest.mark.parametrize("method", ["POST", "GET", "PUT", "DELETE"])
def test_bad_app_names_are_rejected(api: TestClient, ann: str, method: str, app: str) -> None:
    response = api.request(method, app_path(ann, app), json={"a": 1})
    assert_error(response, 400, "bad appname")


def test_the_longest_and_shortest_app_names_are_accepted(api: TestClient, ann: str) -> None:
    for app in ("ab", "a" + "b" * 30, "a_1"):
        assert_ok(post_app(api, ann, app, {"n": app}), ann)
        assert record_of(api, ann, app) == {"n": app}


@pytest.mark.parametrize(
    ("mode", "identity", "status", "message"),
    [
        ("fax", "ann", 400, "bad mode"),
        ("token", "not-a-uuid", 400, "bad uuid"),
        ("token", "0b6f4ca2-7f0e-4c4e-9c55-3d7cbbd0f1a9", 404, "not found"),
        ("email", "nobody@example.com", 404, "not found"),
    ],
)
@pytest.mark.parametrize("method", ["POST", "GET", "PUT", "DELETE"])
def test_person_lookup_errors_for_root(
    api: TestClient, ann: str, method: str, mode: str, identity: str, status: int, message: str
) -> None:
    response = api.request(method, app_path(identity, "shop", mode), json={"a": 1})
    assert_error(response, status, message)


@pytest.mark.parametrize(
    ("mode", "identity", "status", "message"),
    [
        ("fax", "ann", 400, "bad mode"),
        ("token", "not-a-uuid", 400, "bad uuid"),
        ("login", "nobody", 404, "not found"),
    ],
)
def test_app_list_lookup_errors_for_root(
    api: TestClient, mode: str, identity: str, status: int, message: str
) -> None:
    assert_error(api.get(f"/v1/userapp/{mode}/{identity}"), status, message)


def test_get_of_a_missing_record_is_not_found(api: TestClient, ann: str) -> None:
    post_app(api, ann, "forum", {"a": 1})
    assert_error(api.get(app_path(ann, "shop")), 404, "not found")


# -- change ----------------------------------------------------------------------------------
def test_put_object_is_a_merge_patch(api: TestClient, ann: str) -> None:
    post_app(api, ann, "shop", {"a": 1, "b": {"c": 2, "d": 3}})
    assert_ok(api.put(app_path(ann, "shop"), json={"a": None, "b": {"d": 4}, "e": 5}), ann)
    assert record_of(api, ann, "shop") == {"b": {"c": 2, "d": 4}, "e": 5}


def test_put_array_is_a_json_patch(api: TestClient, ann: str) -> None:
    post_app(api, ann, "shop", {"items": ["a"], "n": 1})
    patch = [
        {"op": "add", "path": "/items/-", "value": "b"},
        {"op": "replace", "path": "/n", "value": 2},
    ]
    assert_ok(api.put(app_path(ann, "shop"), json=patch), ann)
    assert record_of(api, ann, "shop") == {"items": ["a", "b"], "n": 2}


def test_put_form_body_merges_strings(api: TestClient, ann: str) -> None:
    post_app(api, ann, "shop", {"a": 1})
    response = api.put(app_path(ann, "shop"), content="b=2", headers=FORM)
    assert_ok(response, ann)
    assert record_of(api, ann, "shop") == {"a": 1, "b": "2"}


@pytest.mark.parametrize(
    ("body", "headers", "message"),
    [
        ("", JSON, "empty body"),
        ("{}", JSON, "empty body"),
        ('{"a": ', JSON, "failed to decode request body"),
        ('"a string"', JSON, "failed to decode request body"),
        ('[{"op": "remove", "path": "/missing"}]', JSON, "failed to apply JSON patch"),
        ('[{"op": "test", "path": "/a", "value": 2}]', JSON, "failed to apply JSON patch"),
        ('[{"op": "replace", "path": "", "value": 1}]', JSON, None),
        ("a=1", {"Content-Type": "text/plain"}, "wrong content-type, not a json string"),
    ],
)
def test_put_rejects_bad_input_and_changes_nothing(
    api: TestClient, ann: str, body: str, headers: dict[str, str], message: str | None
) -> None:
    post_app(api, ann, "shop", {"a": 1})
    response = api.put(app_path(ann, "shop"), content=body, headers=headers)
    assert response.status_code == 400, response.text
    if message is not None:
        assert response.json() == {"status": "error", "message": message}
    assert record_of(api, ann, "shop") == {"a": 1}


def test_put_of_a_missing_record_is_not_found(api: TestClient, ann: str) -> None:
    assert_error(api.put(app_path(ann, "shop"), json={"a": 1}), 404, "not found")
    assert_error(api.get(app_path(ann, "shop")), 404, "not found")


def test_concurrent_changes_are_never_lost(vault: Context, api: TestClient, ann: str) -> None:
    post_app(api, ann, "shop", {"start": 0})

    def change(number: int) -> tuple[int, int]:
        response = api.put(app_path(ann, "shop"), json={f"k{number}": number})
        return number, response.status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(change, range(24)))

    assert {status for _n, status in outcomes} <= {200, 409}
    record = record_of(api, ann, "shop")
    applied = {f"k{n}" for n, status in outcomes if status == 200}
    assert applied, outcomes
    # Every change that was answered "ok" is in the record; a lost race answers 409.
    assert applied <= record.keys()
    assert record.keys() - {"start"} == applied


# -- delete ----------------------------------------------------------------------------------
def test_delete_removes_the_record_and_is_idempotent(api: TestClient, ann: str) -> None:
    post_app(api, ann, "shop", {"a": 1})
    post_app(api, ann, "forum", {"b": 2})

    assert_ok(api.delete(app_path(ann, "shop")), ann)
    assert_ok(api.delete(app_path(ann, "shop")), ann)

    assert_error(api.get(app_path(ann, "shop")), 404, "not found")
    assert record_of(api, ann, "forum") == {"b": 2}
    assert api.get(f"/v1/userapp/token/{ann}").json()["apps"] == ["forum"]


# -- lists -----------------------------------------------------------------------------------
def test_a_persons_app_list_is_sorted_descending(api: TestClient, ann: str) -> None:
    for app in ("beta", "alpha", "gamma"):
        post_app(api, ann, app, {"a": 1})
    response = api.get("/v1/userapp/email/ann@example.com")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "token": ann, "apps": ["gamma", "beta", "alpha"]}


def test_a_person_without_records_has_an_empty_app_list(api: TestClient, ann: str) -> None:
    bob = create_user(api, BOB)
    post_app(api, bob, "shop", {"a": 1})
    assert api.get(f"/v1/userapp/token/{ann}").json() == {"status": "ok", "token": ann, "apps": []}


def test_all_app_names_are_distinct_and_ascending(api: TestClient, ann: str) -> None:
    assert api.get("/v1/userapps").json() == {"status": "ok", "apps": []}
    bob = create_user(api, BOB)
    post_app(api, ann, "shop", {"a": 1})
    post_app(api, bob, "shop", {"a": 2})
    post_app(api, bob, "crm", {"a": 3})
    assert api.get("/v1/userapps").json() == {"status": "ok", "apps": ["crm", "shop"]}


def test_listing_all_app_names_is_not_audited(api: TestClient, ann: str) -> None:
    api.get("/v1/userapps")
    titles = [row["title"] for row in api.get("/v1/audit/admin?limit=100").json()["rows"]]
    assert titles == ["create user record"]


# -- the person's own token ------------------------------------------------------------------
def test_a_person_reads_and_lists_their_own_records(
    api: TestClient, ann: str, user_client: Any
) -> None:
    post_app(api, ann, "shop", CART)
    client = user_client(ann)
    assert client.get(app_path(ann, "shop")).json() == {"status": "ok", "token": ann, "data": CART}
    assert client.get("/v1/userapp/login/ann").json()["apps"] == ["shop"]
    assert_error(client.get("/v1/userapps"), 403, "access denied")


def test_a_person_cannot_reach_someone_elses_records(
    api: TestClient, ann: str, user_client: Any
) -> None:
    bob = create_user(api, BOB)
    post_app(api, ann, "shop", {"a": 1})
    client = user_client(bob)
    for method in ("POST", "GET", "PUT", "DELETE"):
        response = client.request(method, app_path(ann, "shop"), json={"a": 2})
        assert_error(response, 403, "access denied")
        # A person who does not exist looks the same.
        missing = client.request(method, app_path("nobody", "shop", "login"), json={"a": 2})
        assert_error(missing, 403, "access denied")
    assert_error(client.get(f"/v1/userapp/token/{ann}"), 403, "access denied")
    assert record_of(api, ann, "shop") == {"a": 1}


@pytest.mark.parametrize(
    ("patterns", "app", "direct"),
    [
        (["*"], "shop", True),
        (["sh*"], "shop", True),
        (["*op"], "shop", True),
        (["*ho*"], "shop", True),
        (["shop"], "shop", True),
        (["Shop"], "shop", True),
        (["forum", "shop"], "shop", True),
        (["shop"], "shops", False),
        (["sh*"], "forum", False),
        (["*op"], "shopper", False),
        (["*ho*"], "forum", False),
        ([], "shop", False),
    ],
)
def test_self_service_patterns_decide_whether_a_change_applies_directly(
    make_vault: Any, patterns: list[str], app: str, direct: bool
) -> None:
    vault = make_vault(selfservice={"app_record_change": patterns})
    with client_for(vault) as root:
        ann = create_user(root, ANN)
        post_app(root, ann, app, {"a": 1})
        with client_for(vault, issue_user_token(vault, ann)) as client:
            response = client.put(app_path(ann, app), json={"a": 2})

        assert response.status_code == 200, response.text
        if direct:
            assert response.json() == {"status": "ok", "token": ann}
            assert record_of(root, ann, app) == {"a": 2}
        else:
            body = response.json()
            assert body == {"status": "ok", "result": "request-created", "rtoken": body["rtoken"]}
            assert UUID.match(body["rtoken"])
            assert record_of(root, ann, app) == {"a": 1}


def test_a_change_needing_approval_is_requested_once(make_vault: Any) -> None:
    vault = make_vault(selfservice={"app_record_change": ["forum"]})
    with client_for(vault) as root:
        ann = create_user(root, ANN)
        post_app(root, ann, "shop", {"a": 1})
        with client_for(vault, issue_user_token(vault, ann)) as client:
            first = client.put(app_path(ann, "shop"), json={"a": 2}).json()
            second = client.put(app_path(ann, "shop"), json=[{"op": "remove", "path": "/a"}])

        assert first["result"] == "request-created"
        assert second.json() == {
            "status": "ok",
            "result": "request-exists",
            "rtoken": first["rtoken"],
        }
        assert record_of(root, ann, "shop") == {"a": 1}
        rows = audit_rows(root, ann)
        changes = [r for r in rows if r["title"] == "change user app record by token"]
        assert [(r["status"], r.get("msg"), r["app"]) for r in changes] == [
            ("ok", f"request {first['rtoken']}", "shop"),
            ("ok", f"request {first['rtoken']}", "shop"),
        ]


def test_a_change_request_needs_a_valid_patch(api: TestClient, ann: str, user_client: Any) -> None:
    client = user_client(ann)
    post_app(api, ann, "shop", {"a": 1})
    bad_patch = [{"op": "remove", "path": "/missing"}]
    assert_error(
        client.put(app_path(ann, "shop"), json=bad_patch), 400, "failed to apply JSON patch"
    )
    created = client.put(app_path(ann, "shop"), json={"a": 2}).json()
    assert created["result"] == "request-created"


def test_a_persons_change_to_a_record_not_yet_there_is_requested(
    api: TestClient, ann: str, user_client: Any
) -> None:
    client = user_client(ann)
    bad_patch = [{"op": "remove", "path": "/missing"}]
    assert_error(
        client.put(app_path(ann, "shop"), json=bad_patch), 400, "failed to apply JSON patch"
    )
    first = client.put(app_path(ann, "shop"), json={"a": 2})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body == {"status": "ok", "result": "request-created", "rtoken": body["rtoken"]}
    again = client.put(app_path(ann, "shop"), json={"a": 3}).json()
    assert again == {"status": "ok", "result": "request-exists", "rtoken": body["rtoken"]}
    assert api.get(app_path(ann, "shop")).status_code == 404

    approved = api.post(f"/v1/request/{body['rtoken']}", json={"reason": "ok"})
    assert approved.status_code == 200, approved.text
    assert record_of(api, ann, "shop") == {"a": 2}


def test_root_is_never_routed_to_approval(api: TestClient, ann: str) -> None:
    assert_ok(post_app(api, ann, "shop", {"a": 1}), ann)
    assert_ok(api.put(app_path(ann, "shop"), json={"a": 2}), ann)
    assert record_of(api, ann, "shop") == {"a": 2}
    assert_ok(api.delete(app_path(ann, "shop")), ann)


def test_a_person_creates_self_service_records_directly(make_vault: Any) -> None:
    vault = make_vault(selfservice={"app_record_change": ["shop*"]})
    with client_for(vault) as root:
        ann = create_user(root, ANN)
        with client_for(vault, issue_user_token(vault, ann)) as client:
            assert_ok(post_app(client, ann, "shop", CART), ann)
            assert_ok(client.put(app_path(ann, "shop"), json={"total": 1}), ann)
            assert record_of(client, ann, "shop") == {**CART, "total": 1}
            assert_ok(client.delete(app_path(ann, "shop")), ann)
        assert_error(root.get(app_path(ann, "shop")), 404, "not found")


def test_a_person_creating_a_record_of_another_app_asks_for_approval(
    vault: Context, api: TestClient, ann: str, user_client: Any
) -> None:
    post_app(api, ann, "shop", {"old": True, "kept": "no"})
    client = user_client(ann)

    first = post_app(client, ann, "shop", {"new": True})
    second = post_app(client, ann, "shop", {"newer": True})

    assert first.status_code == 200, first.text
    rtoken = first.json()["rtoken"]
    assert first.json() == {"status": "ok", "result": "request-created", "rtoken": rtoken}
    assert second.json() == {"status": "ok", "result": "request-exists", "rtoken": rtoken}
    assert record_of(api, ann, "shop") == {"old": True, "kept": "no"}

    # An administrator approving the request makes the record exactly what was posted.
    with vault.database.transaction() as conn:
        request = request_repo.get(conn, rtoken)
        assert request is not None
        assert (request.action, request.app, request.status) == ("change-app-data", "shop", "open")
        work = Work(vault, conn, SYSTEM, vault.clock())
        person = user_repo.get_user(conn, ann)
        assert person is not None
        assert person.data_key is not None
        key = vault.keyring.unwrap(person.data_key, ann)
        assert request.change is not None
        context = value_context("requests", "change", rtoken, ann)
        change = documents.decode(key.decrypt(request.change, context))
        apps.apply_app_change(work, ann, key, "shop", change, create_missing=True)
    assert record_of(api, ann, "shop") == {"new": True}


def test_a_person_cannot_delete_a_record_of_another_app(
    api: TestClient, ann: str, user_client: Any
) -> None:
    post_app(api, ann, "shop", {"a": 1})

    response = user_client(ann).delete(app_path(ann, "shop"))

    assert response.status_code == 403
    assert response.json() == {
        "status": "error",
        "message": "this app record can be deleted only by an administrator",
    }
    assert record_of(api, ann, "shop") == {"a": 1}


# -- audit -----------------------------------------------------------------------------------
def test_every_operation_is_audited_with_its_app_and_values(api: TestClient, ann: str) -> None:
    post_app(api, ann, "shop", {"a": 1})
    api.put(app_path(ann, "shop"), json={"a": 2})
    api.get(app_path(ann, "shop"))
    api.get("/v1/userapp/login/ann")
    api.delete(app_path(ann, "shop"))
    api.get(app_path(ann, "shop"))

    rows = list(reversed(audit_rows(api, ann)))[1:]
    assert [(r["title"], r["status"], r.get("app"), r["identity"]) for r in rows] == [
        ("create user app record by token", "ok", "shop", "root"),
        ("change user app record by token", "ok", "shop", "root"),
        ("get user app record by token", "ok", "shop", "root"),
        ("get user app list by login", "ok", None, "root"),
        ("delete user app record by token", "ok", "shop", "root"),
        ("get user app record by token", "error", "shop", "root"),
    ]
    assert rows[3]["who"] == "ann"
    created = api.get(f"/v1/audit/get/{rows[0]['atoken']}").json()
    changed = api.get(f"/v1/audit/get/{rows[1]['atoken']}").json()
    assert created == {"status": "ok", "event": {"after": {"a": 1}}}
    assert changed == {"status": "ok", "event": {"before": {"a": 1}, "after": {"a": 2}}}


def test_a_denied_attempt_is_audited(api: TestClient, ann: str, user_client: Any) -> None:
    bob = create_user(api, BOB)
    user_client(bob).get(app_path(ann, "shop"))
    rows = audit_rows(api, ann)
    assert (rows[0]["title"], rows[0]["status"], rows[0]["msg"]) == (
        "get user app record by token",
        "error",
        "access denied",
    )


# -- erasure ---------------------------------------------------------------------------------
def test_erasing_the_person_deletes_their_app_records(api: TestClient, ann: str) -> None:
    bob = create_user(api, BOB)
    post_app(api, ann, "shop", {"a": 1})
    post_app(api, ann, "forum", {"a": 1})
    post_app(api, bob, "crm", {"b": 1})

    assert api.delete(f"/v1/user/token/{ann}").status_code == 200

    assert_error(api.get(app_path(ann, "shop")), 404, "not found")
    assert api.get(f"/v1/userapp/token/{ann}").json() == {"status": "ok", "token": ann, "apps": []}
    assert api.get("/v1/userapps").json()["apps"] == ["crm"]
    for method in ("POST", "PUT", "DELETE"):
        response = api.request(method, app_path(ann, "shop"), json={"a": 2})
        assert_error(response, 404, "user record not found")
    assert record_of(api, bob, "crm") == {"b": 1}


def test_root_token_is_required_for_all_app_names(anonymous: TestClient) -> None:
    assert_error(anonymous.get("/v1/userapps"), 403, "access denied")
    assert anonymous.get("/v1/userapps", headers={"X-Bunker-Token": ROOT_TOKEN}).status_code == 200
