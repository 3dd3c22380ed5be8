"""v2 bulk listings and system operations, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from databunker.services.context import Context
from support.v2 import ANN, BOB, assert_error, call, create, ok
from support.vaults import Clock, VaultFactory, client_for, issue_user_token

UNLOCK_REFUSED = "The unlockuuid value was not found or is not valid"
CAROL = {"login": "carol", "name": "Carol"}


@pytest.fixture
def listing_vault(make_vault: VaultFactory) -> Context:
    return make_vault(generic={"list_users": True})


@pytest.fixture
def root(listing_vault: Context) -> Iterator[TestClient]:
    with client_for(listing_vault) as client:
        yield client


def _unlock(client: TestClient) -> str:
    unlockuuid = ok(client, "BulkListUnlock")["unlockuuid"]
    assert isinstance(unlockuuid, str)
    return unlockuuid


def test_every_user_is_paged_oldest_first(root: TestClient, clock: Clock) -> None:
    tokens = []
    for profile in (ANN, BOB, CAROL):
        tokens.append(create(root, profile))
        clock.advance(1)
    ok(root, "UserDelete", {"mode": "token", "identity": tokens[1]})
    unlockuuid = _unlock(root)

    seen = []
    offset = 0
    while rows := ok(
        root, "BulkListAllUsers", {"unlockuuid": unlockuuid, "offset": offset, "limit": 1}
    )["rows"]:
        seen.extend(rows)
        offset += len(rows)
    assert [(row["token"], row["profile"]) for row in seen] == [
        (tokens[0], ANN),
        (tokens[2], CAROL),
    ]
    answer = ok(root, "BulkListAllUsers", {"unlockuuid": unlockuuid})
    assert answer["total"] == 2
    assert answer["rows"][0] == {
        "token": tokens[0],
        "profile": ANN,
        "finaltime": 0,
        "slidingtime": 0,
        "expirationtime": 0,
        "grouproles": [],
    }


def test_listed_identities_find_their_people(root: TestClient) -> None:
    ann, bob = create(root, ANN), create(root, BOB)
    unlockuuid = _unlock(root)
    users = [
        {"mode": "email", "identity": "BOB@example.com"},
        {"mode": "login", "identity": "nobody"},
        {"mode": "phone", "identity": "+44 7700 900123"},
    ]
    answer = ok(root, "BulkListUsers", {"unlockuuid": unlockuuid, "users": users})
    assert answer["total"] == 2
    assert [(row["token"], row["profile"]) for row in answer["rows"]] == [(bob, BOB), (ann, ANN)]
    assert_error(
        call(root, "BulkListUsers", {"unlockuuid": unlockuuid, "users": []}),
        400,
        "Missing API request parameters: users",
    )
    assert_error(
        call(
            root,
            "BulkListUsers",
            {"unlockuuid": unlockuuid, "users": [{"mode": "token", "identity": ann}]},
        ),
        400,
        "The mode parameter has an incorrect format",
    )


def test_every_request_and_every_event_of_the_vault(root: TestClient, clock: Clock) -> None:
    ann, bob = create(root, ANN), create(root, BOB)
    first = ok(root, "UserDeleteRequest", {"mode": "token", "identity": ann})["requestuuid"]
    clock.advance(1)
    ok(root, "UserRequestCancel", {"requestuuid": first})
    clock.advance(1)
    second = ok(root, "UserDeleteRequest", {"mode": "token", "identity": bob})["requestuuid"]
    unlockuuid = _unlock(root)

    requests = ok(root, "BulkListAllUserRequests", {"unlockuuid": unlockuuid})
    assert requests["total"] == 2
    assert [(r["requestuuid"], r["token"], r["status"]) for r in requests["rows"]] == [
        (second, bob, "open"),
        (first, ann, "canceled"),
    ]
    events = ok(root, "BulkListAllAuditEvents", {"unlockuuid": unlockuuid, "limit": 2})
    assert len(events["rows"]) == 2
    assert events["total"] >= 6
    assert events["rows"][0]["eventtype"] == "BulkListAllUserRequests"
    assert set(events["rows"][0]) == {"auditeventuuid", "eventtype", "timestamp", "status", "more"}


@pytest.mark.parametrize(
    "operation",
    ["BulkListUsers", "BulkListAllUsers", "BulkListAllUserRequests", "BulkListAllAuditEvents"],
)
def test_every_listing_needs_a_live_unlock_id(
    root: TestClient, clock: Clock, operation: str
) -> None:
    users = [{"mode": "login", "identity": "ann"}]
    unlockuuid = _unlock(root)
    assert ok(root, operation, {"unlockuuid": unlockuuid, "users": users})["total"] >= 0
    clock.advance(59)
    assert ok(root, operation, {"unlockuuid": unlockuuid, "users": users})["status"] == "ok"
    clock.advance(1)
    for presented in (unlockuuid, "5b7f3a1e-0000-4000-8000-0000000000ff", "nope"):
        assert_error(
            call(root, operation, {"unlockuuid": presented, "users": users}), 403, UNLOCK_REFUSED
        )
    assert_error(
        call(root, operation, {"users": users}), 400, "Missing API request parameters: unlockuuid"
    )


def test_listing_users_is_off_unless_list_users(api: TestClient) -> None:
    unlockuuid = _unlock(api)
    assert_error(
        call(api, "BulkListAllUsers", {"unlockuuid": unlockuuid}),
        403,
        "BulkListAllUsers is disabled",
    )
    assert_error(
        call(api, "BulkListUsers", {"unlockuuid": unlockuuid, "users": []}),
        403,
        "BulkListUsers is disabled",
    )
    # requests and audit events are not users: they stay listable
    assert ok(api, "BulkListAllUserRequests", {"unlockuuid": unlockuuid})["total"] == 0


# -- system ----------------------------------------------------------------------------------
def test_system_stats_count_the_vault(root: TestClient) -> None:
    ann = create(root, ANN)
    create(root, BOB)
    ok(
        root,
        "SessionUpsert",
        {"sessionuuid": "5b7f3a1e-0000-4000-8000-0000000000a1", "sessiondata": {"token": ann}},
    )
    answer = ok(root, "SystemGetSystemStats")
    assert answer["stats"] == {
        "numusers": 2,
        "numtenants": 1,
        "numtokens": 0,
        "numsessions": 1,
        "totalnumrecords": 2,
        "licensemaxrecords": 0,
        "licensefinalexpiration": 0,
    }
    assert (answer["totalnumrecords"], answer["licensemaxrecords"]) == (2, 0)


def test_a_persons_report_holds_everything_stored_about_them(
    root: TestClient, listing_vault: Context
) -> None:
    ann = create(root, ANN)
    ok(
        root,
        "AppdataCreate",
        {"mode": "token", "identity": ann, "appname": "shop", "appdata": {"cart": [1]}},
    )
    ok(
        root,
        "AgreementAccept",
        {"mode": "token", "identity": ann, "brief": "core-send-email-on-login"},
    )
    ok(root, "UserUpdateRequest", {"mode": "token", "identity": ann, "profile": {"name": "A"}})

    report = ok(root, "SystemGetUserReport", {"mode": "email", "identity": "ann@example.com"})
    report = report["report"]
    assert (report["token"], report["profile"], report["apps"]) == (
        ann,
        ANN,
        {"shop": {"cart": [1]}},
    )
    assert [a["brief"] for a in report["agreements"]] == ["core-send-email-on-login"]
    assert [r["requesttype"] for r in report["requests"]] == ["change-profile"]
    assert report["audit"][0]["eventtype"] == "user change-profile request"
    assert (report["groups"], report["files"], report["sessions"]) == ([], [], [])

    html = ok(root, "SystemGetUserHTMLReport", {"mode": "token", "identity": ann})["html"]
    assert html.startswith("<!DOCTYPE html>")
    assert ann in html
    assert "Ann Ærø" in html
    with client_for(listing_vault, issue_user_token(listing_vault, ann)) as own:
        mine = ok(own, "SystemGetUserReport", {"mode": "token", "identity": ann})["report"]
        assert mine["profile"] == ANN


def test_the_html_report_escapes_what_is_stored(root: TestClient) -> None:
    token = create(root, {"login": "mallory", "name": "<script>alert(1)</script>"})
    html = ok(root, "SystemGetUserHTMLReport", {"mode": "token", "identity": token})["html"]
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_report_errors(root: TestClient) -> None:
    for operation in ("SystemGetUserReport", "SystemGetUserHTMLReport"):
        assert_error(
            call(root, operation, {"mode": "login", "identity": "nobody"}),
            404,
            "The user record was not found",
        )
        assert_error(call(root, operation, {"mode": "token", "identity": "x"}), 400, "Bad UUID")
