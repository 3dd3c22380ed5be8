"""v2 user requests: opening (UserUpdateRequest, UserPatchRequest, UserDeleteRequest),
reading, listing, approving and cancelling; the same requests as v1's."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from starlette.testclient import TestClient

from support.v2 import ANN, BOB, assert_error, call, create, ok

NOT_FOUND = "The user request was not found"
UserClient = Callable[[str], TestClient]


def profile_of(client: TestClient, token: str) -> Any:
    return ok(client, "UserGet", {"mode": "token", "identity": token})["profile"]


def test_an_update_request_changes_nothing_until_approved(api: TestClient) -> None:
    token = create(api, ANN)
    body = {"mode": "login", "identity": "ann", "profile": {"name": "Ann New"}}
    rid = ok(api, "UserUpdateRequest", body)["requestuuid"]
    uuid.UUID(rid)
    assert profile_of(api, token)["name"] == ANN["name"]
    request = ok(api, "UserRequestGet", {"requestuuid": rid})["request"]
    assert request["requestuuid"] == rid
    assert request["token"] == token
    assert request["requesttype"] == "change-profile"
    assert request["status"] == "open"
    assert request["change"] == {"name": "Ann New"}
    assert request["original"] == ANN
    assert request["reason"] == ""
    assert ok(api, "UserRequestApprove", {"requestuuid": rid, "reason": "fine"}) == {"status": "ok"}
    assert profile_of(api, token)["name"] == "Ann New"
    request = ok(api, "UserRequestGet", {"requestuuid": rid})["request"]
    assert request["status"] == "approved"
    assert request["reason"] == "fine"
    assert_error(
        call(api, "UserRequestApprove", {"requestuuid": rid}), 409, "This user request is closed"
    )
    assert_error(
        call(api, "UserRequestCancel", {"requestuuid": rid}), 409, "This user request is closed"
    )


def test_a_patch_request_is_applied_as_a_patch(api: TestClient) -> None:
    token = create(api, ANN)
    patch = [{"op": "replace", "path": "/address/city", "value": "Leeds"}]
    rid = ok(api, "UserPatchRequest", {"mode": "token", "identity": token, "patch": patch})[
        "requestuuid"
    ]
    ok(api, "UserRequestApprove", {"requestuuid": rid})
    assert profile_of(api, token)["address"] == {"city": "Leeds"}


def test_a_patch_that_cannot_apply_is_refused_when_asked(api: TestClient) -> None:
    token = create(api, ANN)
    patch = [{"op": "remove", "path": "/nothing"}]
    assert_error(
        call(api, "UserPatchRequest", {"mode": "token", "identity": token, "patch": patch}),
        400,
        "Failed to apply JSON patch",
    )


def test_a_delete_request_erases_when_approved(api: TestClient) -> None:
    token = create(api, ANN)
    rid = ok(api, "UserDeleteRequest", {"mode": "email", "identity": "ann@example.com"})[
        "requestuuid"
    ]
    assert profile_of(api, token) == ANN
    ok(api, "UserRequestApprove", {"requestuuid": rid})
    assert_error(
        call(api, "UserGet", {"mode": "token", "identity": token}),
        404,
        "The user record was not found",
    )


def test_cancel_closes_the_request_with_its_reason(api: TestClient) -> None:
    token = create(api, ANN)
    rid = ok(api, "UserDeleteRequest", {"mode": "token", "identity": token})["requestuuid"]
    ok(api, "UserRequestCancel", {"requestuuid": rid, "reason": "asked by mistake"})
    request = ok(api, "UserRequestGet", {"requestuuid": rid})["request"]
    assert request["status"] == "canceled"
    assert request["reason"] == "asked by mistake"
    assert profile_of(api, token) == ANN


def test_an_open_request_for_the_same_thing_is_answered_again(api: TestClient) -> None:
    token = create(api, ANN)
    first = ok(api, "UserDeleteRequest", {"mode": "token", "identity": token})["requestuuid"]
    again = ok(api, "UserDeleteRequest", {"mode": "token", "identity": token})["requestuuid"]
    assert again == first


def test_list_pages_the_persons_requests_newest_first(api: TestClient) -> None:
    token = create(api, ANN)
    create(api, BOB)
    ok(api, "UserDeleteRequest", {"mode": "login", "identity": "bob"})
    ids = [
        ok(api, "UserDeleteRequest", {"mode": "token", "identity": token})["requestuuid"],
        ok(
            api,
            "UserUpdateRequest",
            {"mode": "token", "identity": token, "profile": {"name": "x"}},
        )["requestuuid"],
    ]
    answer = ok(api, "UserRequestListUserRequests", {"mode": "token", "identity": token})
    assert answer["total"] == 2
    assert {row["requestuuid"] for row in answer["rows"]} == set(ids)
    for row in answer["rows"]:
        assert set(row) == {"requestuuid", "token", "requesttype", "status", "creationtime", "when"}
        assert row["token"] == token
    page = ok(
        api,
        "UserRequestListUserRequests",
        {"mode": "token", "identity": token, "offset": 1, "limit": 1},
    )
    assert page["total"] == 2
    assert len(page["rows"]) == 1
    # out-of-range paging is clamped, never an error
    clamped = ok(
        api,
        "UserRequestListUserRequests",
        {"mode": "token", "identity": token, "offset": -5, "limit": 1000},
    )
    assert len(clamped["rows"]) == 2
    empty = ok(
        api, "UserRequestListUserRequests", {"mode": "token", "identity": token, "offset": 9}
    )
    assert empty["rows"] == []
    assert empty["total"] == 2
    assert_error(
        call(
            api,
            "UserRequestListUserRequests",
            {"mode": "token", "identity": token, "offset": 10**30},
        ),
        400,
        "The offset parameter has an incorrect format",
    )
    assert_error(
        call(
            api, "UserRequestListUserRequests", {"mode": "token", "identity": token, "limit": "x"}
        ),
        400,
        "The limit parameter has an incorrect format",
    )
    # digit strings are accepted for integers
    assert (
        len(
            ok(
                api,
                "UserRequestListUserRequests",
                {"mode": "token", "identity": token, "limit": "1"},
            )["rows"]
        )
        == 1
    )


def test_unknown_and_malformed_requests(api: TestClient) -> None:
    assert_error(call(api, "UserRequestGet", {"requestuuid": "x"}), 400, "Bad UUID")
    missing = {"requestuuid": str(uuid.uuid4())}
    assert_error(call(api, "UserRequestGet", missing), 404, NOT_FOUND)
    assert_error(call(api, "UserRequestApprove", missing), 404, NOT_FOUND)
    assert_error(call(api, "UserRequestCancel", missing), 404, NOT_FOUND)
    assert_error(
        call(api, "UserRequestGet", {}), 400, "Missing API request parameters: requestuuid"
    )
    assert_error(
        call(api, "UserUpdateRequest", {"mode": "login", "identity": "nobody", "profile": {}}),
        404,
        "The user record was not found",
    )


def test_a_person_opens_reads_and_cancels_their_own_requests(
    api: TestClient, user_client: UserClient
) -> None:
    token = create(api, ANN)
    own = user_client(token)
    body = {"mode": "token", "identity": token, "profile": {"name": "Mine"}}
    rid = ok(own, "UserUpdateRequest", body)["requestuuid"]
    assert ok(own, "UserRequestGet", {"requestuuid": rid})["request"]["status"] == "open"
    listed = ok(own, "UserRequestListUserRequests", {"mode": "token", "identity": token})
    assert [row["requestuuid"] for row in listed["rows"]] == [rid]
    assert_error(call(own, "UserRequestApprove", {"requestuuid": rid}), 403, "Access denied")
    ok(own, "UserRequestCancel", {"requestuuid": rid})
    assert ok(api, "UserRequestGet", {"requestuuid": rid})["request"]["reason"] == "user operation"


def test_the_same_request_through_v1(api: TestClient) -> None:
    token = create(api, ANN)
    rid = ok(api, "UserDeleteRequest", {"mode": "token", "identity": token})["requestuuid"]
    v1 = api.get(f"/v1/request/{rid}").json()
    assert v1["status"] == "ok"
    assert v1["action"] == "forget-me"
    assert api.get(f"/v1/requests/token/{token}").json()["total"] == 1
