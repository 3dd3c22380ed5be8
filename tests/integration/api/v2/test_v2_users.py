"""v2 users: UserCreate, UserGet, UserUpdate, UserPatch, UserDelete, UserCreateBulk,
UserDeleteBulk, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from starlette.testclient import TestClient

from databunker.jobs import run_jobs
from databunker.services.context import Context
from databunker.storage.outbox import open_payload
from databunker.storage.tables import outbox
from support.audit_chain import Verifier, chained, tamper, verify  # noqa: F401 - a fixture
from support.v2 import ANN, BOB, assert_error, call, create, ok
from support.vaults import ROOT_TOKEN, Clock, VaultFactory, client_for

NOT_FOUND = "The user record was not found"


def profile_of(client: TestClient, mode: str, identity: str) -> Any:
    return ok(client, "UserGet", {"mode": mode, "identity": identity})["profile"]


def webhooks(vault: Context) -> list[dict[str, Any]]:
    key = vault.keyring.service_key("outbox")
    with vault.database.transaction() as conn:
        rows = conn.execute(sa.select(outbox.c.id, outbox.c.payload).order_by(outbox.c.id)).all()
    return [open_payload(key, int(row.id), bytes(row.payload)) for row in rows]


# -- UserCreate / UserGet --------------------------------------------------------------------
def test_a_profile_without_any_lookup_identity_is_reached_by_its_token(api: TestClient) -> None:
    token = create(api, {"name": "Nobody in particular"})
    assert profile_of(api, "token", token) == {"name": "Nobody in particular"}


def test_create_refuses_an_invalid_email_and_a_non_object_profile(api: TestClient) -> None:
    assert_error(
        call(api, "UserCreate", {"profile": {"email": "not-an-email"}}), 400, "Invalid email"
    )
    assert_error(
        call(api, "UserCreate", {"profile": [1]}),
        400,
        "The profile parameter has an incorrect format",
    )


def test_create_with_a_group_or_role_finds_none(api: TestClient) -> None:
    assert_error(
        call(api, "UserCreate", {"profile": ANN, "groupname": "staff"}),
        404,
        "The group record was not found",
    )
    assert_error(
        call(api, "UserCreate", {"profile": ANN, "roleid": 1}),
        404,
        "The role record was not found",
    )
    assert_error(call(api, "UserGet", {"mode": "login", "identity": "ann"}), 404, NOT_FOUND)


def test_finaltime_is_reported_and_erases_the_person_when_it_passes(
    api: TestClient, vault: Context, clock: Clock
) -> None:
    now = clock()
    token = create(api, ANN, finaltime="1h")
    answer = ok(api, "UserGet", {"mode": "token", "identity": token})
    assert answer["finaltime"] == now + 3600
    assert answer["expirationtime"] == now + 3600
    assert answer["slidingtime"] == 0
    # the same deadline as v1's retention shows it
    status = api.get(f"/v1/exp/status/token/{token}").json()
    assert status["exptime"] == now + 3600
    clock.advance(3601)
    run_jobs(vault)
    assert_error(call(api, "UserGet", {"mode": "token", "identity": token}), 404, NOT_FOUND)


def test_finaltime_forms_and_slidingtime_refused(api: TestClient, clock: Clock) -> None:
    now = clock()
    token = create(api, {"login": "a"}, finaltime="30m")
    assert ok(api, "UserGet", {"mode": "token", "identity": token})["finaltime"] == now + 1800
    token = create(api, {"login": "b"}, finaltime=now + 99)
    assert ok(api, "UserGet", {"mode": "token", "identity": token})["finaltime"] == now + 99
    token = create(api, {"login": "c"}, finaltime="2030-01-01")
    assert ok(api, "UserGet", {"mode": "token", "identity": token})["finaltime"] == 1893456000
    assert_error(
        call(api, "UserCreate", {"profile": {"login": "d"}, "finaltime": "soon"}),
        400,
        "The finaltime parameter has an incorrect format",
    )
    assert_error(
        call(api, "UserCreate", {"profile": {"login": "d"}, "slidingtime": "1d"}),
        400,
        "The slidingtime parameter is not supported for user records",
    )
    assert_error(call(api, "UserGet", {"mode": "login", "identity": "d"}), 404, NOT_FOUND)


def test_get_with_a_version_finds_none(api: TestClient) -> None:
    token = create(api, ANN)
    assert_error(
        call(api, "UserGet", {"mode": "token", "identity": token, "version": 1}),
        404,
        "The record version was not found",
    )


def test_create_queues_the_profilenew_webhook(make_vault: VaultFactory) -> None:
    vault = make_vault(notification={"notification_url": "http://127.0.0.1:9/hook"})
    with client_for(vault, ROOT_TOKEN) as client:
        token = create(client, ANN)
    assert webhooks(vault) == [{"action": "profilenew", "identity": token, "mode": "token"}]


# -- UserUpdate / UserPatch ------------------------------------------------------------------
def test_update_merges_the_profile(api: TestClient) -> None:
    token = create(api, ANN)
    answer = ok(
        api,
        "UserUpdate",
        {"mode": "login", "identity": "ann", "profile": {"name": "Ann B", "address": None}},
    )
    assert answer == {"status": "ok"}
    expected = {**ANN, "name": "Ann B"}
    del expected["address"]
    assert profile_of(api, "token", token) == expected


def test_update_reindexes_and_refuses_a_taken_identity(api: TestClient) -> None:
    token = create(api, ANN)
    create(api, BOB)
    ok(api, "UserUpdate", {"mode": "token", "identity": token, "profile": {"login": "annie"}})
    assert profile_of(api, "login", "annie")["email"] == ANN["email"]
    assert_error(call(api, "UserGet", {"mode": "login", "identity": "ann"}), 404, NOT_FOUND)
    assert_error(
        call(api, "UserUpdate", {"mode": "token", "identity": token, "profile": {"login": "bob"}}),
        409,
        "Duplicate index: login",
    )


def test_update_of_nobody_is_404_and_needs_a_profile(api: TestClient) -> None:
    body = {"mode": "email", "identity": "nobody@example.com", "profile": {"a": 1}}
    assert_error(call(api, "UserUpdate", body), 404, NOT_FOUND)
    assert_error(
        call(api, "UserUpdate", {"mode": "email", "identity": "x@example.com"}),
        400,
        "Missing API request parameters: profile",
    )


def test_patch_applies_a_json_patch(api: TestClient) -> None:
    token = create(api, ANN)
    patch = [
        {"op": "replace", "path": "/name", "value": "Ann C"},
        {"op": "add", "path": "/tags", "value": ["x"]},
        {"op": "remove", "path": "/address"},
        {"op": "copy", "from": "/login", "path": "/nick"},
    ]
    assert ok(api, "UserPatch", {"mode": "token", "identity": token, "patch": patch}) == {
        "status": "ok"
    }
    profile = profile_of(api, "token", token)
    assert profile["name"] == "Ann C"
    assert profile["tags"] == ["x"]
    assert profile["nick"] == "ann"
    assert "address" not in profile


def test_a_bad_patch_is_400_and_changes_nothing(api: TestClient) -> None:
    token = create(api, ANN)
    body: dict[str, Any] = {"mode": "token", "identity": token}
    assert_error(
        call(api, "UserPatch", {**body, "patch": [{"op": "remove", "path": "/missing"}]}),
        400,
        "Failed to apply JSON patch",
    )
    assert_error(
        call(api, "UserPatch", {**body, "patch": [{"path": "/a"}]}),
        400,
        "Missing API request parameters: patch.0.op",
    )
    assert_error(
        call(api, "UserPatch", {**body, "patch": {"op": "add"}}),
        400,
        "The patch parameter has an incorrect format",
    )
    assert_error(
        call(api, "UserPatch", {**body, "patch": []}), 400, "Missing API request parameters: patch"
    )
    assert profile_of(api, "token", token) == ANN


# -- UserDelete ------------------------------------------------------------------------------
def test_delete_erases_the_person_for_good(api: TestClient) -> None:
    token = create(api, ANN)
    api.post(f"/v1/userapp/token/{token}/shop", json={"cart": 1})
    assert ok(api, "UserDelete", {"mode": "email", "identity": "ann@example.com"}) == {
        "status": "ok"
    }
    assert_error(call(api, "UserGet", {"mode": "token", "identity": token}), 404, NOT_FOUND)
    assert_error(call(api, "UserGet", {"mode": "login", "identity": "ann"}), 404, NOT_FOUND)
    assert_error(call(api, "UserDelete", {"mode": "token", "identity": token}), 404, NOT_FOUND)
    assert api.get(f"/v1/userapp/token/{token}/shop").status_code == 404
    # the identity is free again
    create(api, ANN)


def test_delete_of_nobody_is_404(api: TestClient) -> None:
    assert_error(
        call(api, "UserDelete", {"mode": "email", "identity": "nobody@example.com"}), 404, NOT_FOUND
    )
    assert_error(
        call(api, "UserDelete", {"mode": "token", "identity": str(uuid.uuid4())}), 404, NOT_FOUND
    )


# -- bulk ------------------------------------------------------------------------------------
def test_create_bulk_answers_every_record_in_order(api: TestClient, clock: Clock) -> None:
    records = [{"profile": {"login": f"user{i}", "n": i}} for i in range(25)]
    answer = ok(api, "UserCreateBulk", {"records": records, "finaltime": "1d"})
    created = answer["created"]
    assert [item["profile"] for item in created] == [r["profile"] for r in records]
    for i, item in enumerate(created):
        found = ok(api, "UserGet", {"mode": "login", "identity": f"user{i}"})
        assert found["token"] == item["token"]
        assert found["finaltime"] == clock() + 86400
    # one audit event per person, under v1's title
    events = api.get(f"/v1/audit/list/{created[3]['token']}").json()["rows"]
    assert [e["title"] for e in events if e["status"] == "ok"][-1] == "create user record"


def test_create_bulk_with_a_duplicate_creates_nobody(api: TestClient) -> None:
    create(api, BOB)
    records = [{"profile": {"login": "new1"}}, {"profile": {"login": "bob"}}]
    assert_error(call(api, "UserCreateBulk", {"records": records}), 409, "Duplicate index: login")
    twice = [{"profile": {"email": "x@example.com"}}, {"profile": {"email": "X@example.com"}}]
    assert_error(call(api, "UserCreateBulk", {"records": twice}), 409, "Duplicate index: email")
    assert_error(call(api, "UserGet", {"mode": "login", "identity": "new1"}), 404, NOT_FOUND)


def test_create_bulk_refuses_bad_input(api: TestClient) -> None:
    assert_error(
        call(api, "UserCreateBulk", {"records": []}), 400, "Missing API request parameters: records"
    )
    assert_error(call(api, "UserCreateBulk", {}), 400, "Missing API request parameters: records")
    assert_error(
        call(api, "UserCreateBulk", {"records": [{"name": "x"}]}),
        400,
        "Missing API request parameters: records.0.profile",
    )
    assert_error(
        call(api, "UserCreateBulk", {"records": [{"profile": {"email": "bad"}}]}),
        400,
        "Invalid email",
    )


def test_delete_bulk_skips_nobody_and_counts_the_erased(api: TestClient) -> None:
    ann = create(api, ANN)
    create(api, BOB)
    users = [
        {"mode": "token", "identity": ann},
        {"mode": "email", "identity": "bob@example.com"},
        {"mode": "email", "identity": "nobody@example.com"},
        {"mode": "token", "identity": ann},
    ]
    assert ok(api, "UserDeleteBulk", {"users": users}) == {"status": "ok", "deleted_count": 2}
    assert_error(call(api, "UserGet", {"mode": "login", "identity": "bob"}), 404, NOT_FOUND)
    titles = [e["title"] for e in api.get(f"/v1/audit/list/{ann}").json()["rows"]]
    assert "delete user record by token" in titles
    assert_error(
        call(api, "UserDeleteBulk", {"users": []}), 400, "Missing API request parameters: users"
    )
    assert_error(
        call(api, "UserDeleteBulk", {"users": [{"mode": "name", "identity": "x"}]}),
        400,
        "The mode parameter has an incorrect format",
    )


def test_bulk_events_are_linked_into_the_audit_chain(
    api: TestClient,
    verify: Verifier,  # noqa: F811
) -> None:
    records = [{"profile": {"login": f"chain{i}"}} for i in range(30)]
    created = ok(api, "UserCreateBulk", {"records": records, "request_metadata": {"job": "x"}})
    ok(api, "UserDeleteBulk", {"users": [{"mode": "login", "identity": "chain3"}]})
    events = api.get(f"/v1/audit/list/{created['created'][5]['token']}").json()["rows"]
    detail = api.get(f"/v1/audit/get/{events[0]['atoken']}").json()
    assert detail["event"]["request_metadata"] == {"job": "x"}
    assert detail["event"]["after"] == {"login": "chain5"}
    outcome = verify()
    assert outcome.code == 0, outcome
    # 30 creations, the bulk call's own event, the erasure, the bulk delete's event, and
    # the two audit reads just made
    assert outcome.stdout.splitlines()[0] == "audit chain intact: 35 events"


def test_a_changed_bulk_event_breaks_the_chain(
    api: TestClient,
    vault: Context,
    verify: Verifier,  # noqa: F811
) -> None:
    ok(api, "UserCreateBulk", {"records": [{"profile": {"login": f"t{i}"}} for i in range(5)]})
    victim = chained(vault)[2]
    tamper(vault, "UPDATE audit SET title = 'nothing' WHERE atoken = :a", a=victim)
    assert verify().code == 1
