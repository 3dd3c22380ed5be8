"""v2 app data: AppdataCreate, AppdataGet, AppdataUpdate, AppdataUpdateRequest,
AppdataDelete, AppdataListUserAppNames, AppdataListAppNames; the same records as v1's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.testclient import TestClient

from support.v2 import ANN, BOB, assert_error, call, create, ok

APP_NOT_FOUND = "The app record was not found"
UserClient = Callable[[str], TestClient]


def app_body(token: str, appname: str = "shop", **fields: Any) -> dict[str, Any]:
    return {"mode": "token", "identity": token, "appname": appname, **fields}


def test_create_then_get(api: TestClient) -> None:
    token = create(api, ANN)
    assert ok(api, "AppdataCreate", app_body(token, appdata={"cart": [1, 2]})) == {"status": "ok"}
    answer = ok(api, "AppdataGet", {"mode": "login", "identity": "ann", "appname": "Shop"})
    assert answer == {
        "status": "ok",
        "token": token,
        "appname": "shop",
        "appdata": {"cart": [1, 2]},
    }
    # the same record through v1
    assert api.get(f"/v1/userapp/token/{token}/shop").json()["data"] == {"cart": [1, 2]}


def test_create_overwrites_and_update_merges(api: TestClient) -> None:
    token = create(api, ANN)
    ok(api, "AppdataCreate", app_body(token, appdata={"a": 1, "b": 2}))
    ok(api, "AppdataCreate", app_body(token, appdata={"c": 3}))
    assert ok(api, "AppdataGet", app_body(token))["appdata"] == {"c": 3}
    ok(api, "AppdataUpdate", app_body(token, appdata={"d": 4, "c": None}))
    assert ok(api, "AppdataGet", app_body(token))["appdata"] == {"d": 4}


def test_update_of_a_missing_record_is_404(api: TestClient) -> None:
    token = create(api, ANN)
    assert_error(call(api, "AppdataUpdate", app_body(token, appdata={"a": 1})), 404, APP_NOT_FOUND)
    assert_error(call(api, "AppdataGet", app_body(token)), 404, APP_NOT_FOUND)
    assert_error(
        call(api, "AppdataGet", {"mode": "login", "identity": "nobody", "appname": "shop"}),
        404,
        "The user record was not found",
    )


def test_bad_app_names_and_fields(api: TestClient) -> None:
    token = create(api, ANN)
    assert_error(
        call(api, "AppdataCreate", app_body(token, "9bad!", appdata={})),
        400,
        "The appname parameter has an incorrect format",
    )
    assert_error(
        call(api, "AppdataCreate", app_body(token)),
        400,
        "Missing API request parameters: appdata",
    )
    assert_error(
        call(api, "AppdataCreate", app_body(token, appdata=[1])),
        400,
        "The appdata parameter has an incorrect format",
    )


def test_update_request_waits_for_approval(api: TestClient) -> None:
    token = create(api, ANN)
    ok(api, "AppdataCreate", app_body(token, appdata={"level": 1}))
    rid = ok(api, "AppdataUpdateRequest", app_body(token, appdata={"level": 2}))["requestuuid"]
    assert ok(api, "AppdataGet", app_body(token))["appdata"] == {"level": 1}
    request = ok(api, "UserRequestGet", {"requestuuid": rid})["request"]
    assert request["requesttype"] == "change-app-data"
    assert request["appname"] == "shop"
    assert request["original"] == {"level": 1}
    ok(api, "UserRequestApprove", {"requestuuid": rid})
    assert ok(api, "AppdataGet", app_body(token))["appdata"] == {"level": 2}


def test_delete_removes_the_record_and_a_missing_one_is_404(api: TestClient) -> None:
    token = create(api, ANN)
    ok(api, "AppdataCreate", app_body(token, appdata={"x": 1}))
    assert ok(api, "AppdataDelete", app_body(token)) == {"status": "ok"}
    assert_error(call(api, "AppdataGet", app_body(token)), 404, APP_NOT_FOUND)
    assert_error(call(api, "AppdataDelete", app_body(token)), 404, APP_NOT_FOUND)


def test_app_name_lists(api: TestClient) -> None:
    ann = create(api, ANN)
    bob = create(api, BOB)
    ok(api, "AppdataCreate", app_body(ann, "shop", appdata={}))
    ok(api, "AppdataCreate", app_body(ann, "forum", appdata={}))
    ok(api, "AppdataCreate", app_body(bob, "game", appdata={}))
    mine = ok(api, "AppdataListUserAppNames", {"mode": "token", "identity": ann})
    assert sorted(mine["apps"]) == ["forum", "shop"]
    assert ok(api, "AppdataListAppNames")["apps"] == ["forum", "game", "shop"]
    nobody = create(api, {"login": "empty"})
    assert ok(api, "AppdataListUserAppNames", {"mode": "token", "identity": nobody})["apps"] == []


def test_a_person_reads_their_records_and_asks_for_changes(
    api: TestClient, user_client: UserClient
) -> None:
    token = create(api, ANN)
    ok(api, "AppdataCreate", app_body(token, appdata={"x": 1}))
    own = user_client(token)
    assert ok(own, "AppdataGet", app_body(token))["appdata"] == {"x": 1}
    # a direct change is root's; without self-service a person's create becomes a request
    assert_error(
        call(own, "AppdataUpdate", app_body(token, appdata={"x": 2})), 403, "Access denied"
    )
    opened = ok(own, "AppdataCreate", app_body(token, appdata={"x": 3}))
    assert "requestuuid" in opened
    assert ok(api, "AppdataGet", app_body(token))["appdata"] == {"x": 1}
    assert_error(call(own, "AppdataListAppNames"), 403, "Access denied")
