"""v2 sessions and shared records, on SQLite and PostgreSQL: the same sessions and shared
records as v1's."""

from __future__ import annotations

from starlette.testclient import TestClient

from databunker.jobs import run_jobs
from databunker.services.context import Context
from support.v2 import ANN, BOB, assert_error, call, create, ok
from support.vaults import Clock, client_for, issue_user_token

SESSION = "5b7f3a1e-0000-4000-8000-0000000000a1"
OTHER = "5b7f3a1e-0000-4000-8000-0000000000a2"
SESSION_NOT_FOUND = "The session record was not found"
RECORD_NOT_FOUND = "The shared record was not found"


# -- sessions --------------------------------------------------------------------------------
def test_a_session_is_upserted_read_listed_and_deleted(api: TestClient, clock: Clock) -> None:
    ann = create(api, ANN)
    data = {"token": ann, "cookie": {"path": "/"}, "cart": [1, 2]}

    assert ok(api, "SessionUpsert", {"sessionuuid": SESSION, "sessiondata": data}) == {
        "status": "ok"
    }
    assert ok(api, "SessionGet", {"sessionuuid": SESSION}) == {
        "status": "ok",
        "sessionuuid": SESSION,
        "sessiondata": data,
    }
    # v1 reads the same session
    assert api.get(f"/v1/session/{SESSION}").json()["data"] == data
    clock.advance(1)
    changed = {**data, "cart": []}
    ok(api, "SessionUpsert", {"sessionuuid": SESSION, "sessiondata": changed})
    listed = ok(api, "SessionListUserSessions", {"mode": "login", "identity": "ann"})
    assert listed == {
        "status": "ok",
        "total": 1,
        "rows": [{"sessionuuid": SESSION, "sessiondata": changed, "when": clock()}],
    }
    ok(api, "SessionDelete", {"sessionuuid": SESSION})
    assert_error(call(api, "SessionGet", {"sessionuuid": SESSION}), 404, SESSION_NOT_FOUND)
    assert_error(call(api, "SessionDelete", {"sessionuuid": SESSION}), 404, SESSION_NOT_FOUND)


def test_a_session_lives_until_its_finaltime_or_slidingtime(
    api: TestClient, vault: Context, clock: Clock
) -> None:
    ok(api, "SessionUpsert", {"sessionuuid": SESSION, "sessiondata": {"a": 1}, "finaltime": "30s"})
    ok(
        api,
        "SessionUpsert",
        {"sessionuuid": OTHER, "sessiondata": {"b": 1}, "finaltime": "1h", "slidingtime": "10s"},
    )
    clock.advance(11)
    assert ok(api, "SessionGet", {"sessionuuid": SESSION})["sessiondata"] == {"a": 1}
    assert_error(call(api, "SessionGet", {"sessionuuid": OTHER}), 404, SESSION_NOT_FOUND)
    clock.advance(20)
    run_jobs(vault)
    assert_error(call(api, "SessionGet", {"sessionuuid": SESSION}), 404, SESSION_NOT_FOUND)


def test_session_errors(api: TestClient) -> None:
    assert_error(
        call(api, "SessionUpsert", {"sessionuuid": "nope", "sessiondata": {}}), 400, "Bad UUID"
    )
    assert_error(
        call(api, "SessionUpsert", {"sessionuuid": SESSION}),
        400,
        "Missing API request parameters: sessiondata",
    )
    assert_error(
        call(api, "SessionUpsert", {"sessionuuid": SESSION, "sessiondata": [1]}),
        400,
        "The sessiondata parameter has an incorrect format",
    )
    assert_error(
        call(api, "SessionUpsert", {"sessionuuid": SESSION, "sessiondata": {}, "finaltime": "x"}),
        400,
        "The finaltime parameter has an incorrect format",
    )
    assert_error(call(api, "SessionGet", {"sessionuuid": "nope"}), 400, "Bad UUID")
    assert_error(
        call(api, "SessionListUserSessions", {"mode": "login", "identity": "nobody"}),
        404,
        "The user record was not found",
    )


def test_a_person_reads_only_their_own_sessions(api: TestClient, vault: Context) -> None:
    ann, bob = create(api, ANN), create(api, BOB)
    ok(api, "SessionUpsert", {"sessionuuid": SESSION, "sessiondata": {"token": ann}})
    ok(api, "SessionUpsert", {"sessionuuid": OTHER, "sessiondata": {"token": bob}})
    with client_for(vault, issue_user_token(vault, ann)) as own:
        assert ok(own, "SessionGet", {"sessionuuid": SESSION})["sessiondata"] == {"token": ann}
        assert ok(own, "SessionListUserSessions", {"mode": "token", "identity": ann})["total"] == 1
        for session in (OTHER, "5b7f3a1e-0000-4000-8000-0000000000ff"):
            assert_error(call(own, "SessionGet", {"sessionuuid": session}), 403, "Access denied")
        assert_error(
            call(own, "SessionListUserSessions", {"mode": "token", "identity": bob}),
            403,
            "Access denied",
        )


# -- shared records --------------------------------------------------------------------------
def test_a_shared_record_shows_its_fields_to_anyone_until_its_finaltime(
    api: TestClient, anonymous: TestClient, vault: Context, clock: Clock
) -> None:
    ann = create(api, ANN)
    record = ok(
        api,
        "SharedRecordCreate",
        {
            "mode": "email",
            "identity": "ann@example.com",
            "fields": "name,address.city",
            "partner": "courier",
            "finaltime": "1h",
        },
    )["recorduuid"]

    assert ok(anonymous, "SharedRecordGet", {"recorduuid": record}) == {
        "status": "ok",
        "data": {"name": ANN["name"], "address.city": "London"},
    }
    # the v1 route reads the same record
    assert anonymous.get(f"/v1/get/{record}").json()["data"]["name"] == ANN["name"]
    ok(
        api,
        "AppdataCreate",
        {
            "mode": "token",
            "identity": ann,
            "appname": "shop",
            "appdata": {"cart": [3], "coupon": "X"},
        },
    )
    app_record = ok(
        api,
        "SharedRecordCreate",
        {"mode": "token", "identity": ann, "appname": "shop", "fields": "cart"},
    )["recorduuid"]
    assert ok(anonymous, "SharedRecordGet", {"recorduuid": app_record})["data"] == {"cart": [3]}
    clock.advance(3601)
    assert_error(call(anonymous, "SharedRecordGet", {"recorduuid": record}), 404, RECORD_NOT_FOUND)


def test_shared_record_errors(api: TestClient, anonymous: TestClient, vault: Context) -> None:
    ann, bob = create(api, ANN), create(api, BOB)
    unknown = "5b7f3a1e-0000-4000-8000-0000000000ff"
    assert_error(call(anonymous, "SharedRecordGet", {"recorduuid": unknown}), 404, RECORD_NOT_FOUND)
    assert_error(call(anonymous, "SharedRecordGet", {"recorduuid": "x"}), 400, "Bad UUID")
    assert_error(
        call(anonymous, "SharedRecordGet", {}), 400, "Missing API request parameters: recorduuid"
    )
    assert_error(
        call(api, "SharedRecordCreate", {"mode": "login", "identity": "nobody"}),
        404,
        "The user record was not found",
    )
    assert_error(
        call(api, "SharedRecordCreate", {"mode": "token", "identity": ann, "appname": "none"}),
        404,
        "The app record was not found",
    )
    assert_error(
        call(api, "SharedRecordCreate", {"mode": "token", "identity": ann, "finaltime": "x"}),
        400,
        "The finaltime parameter has an incorrect format",
    )
    with client_for(vault, issue_user_token(vault, ann)) as own:
        mine = ok(own, "SharedRecordCreate", {"mode": "token", "identity": ann})["recorduuid"]
        assert ok(anonymous, "SharedRecordGet", {"recorduuid": mine})["data"] == ANN
        assert_error(
            call(own, "SharedRecordCreate", {"mode": "token", "identity": bob}),
            403,
            "Access denied",
        )
