"""v2 audit and login, on SQLite and PostgreSQL: the same trail and the same passwordless
login as v1's."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from databunker.services.context import Context
from support.v2 import ANN, BOB, assert_error, call, create, ok
from support.vaults import Clock, FixedDigits, VaultFactory, client_for, issue_user_token

CODE = "123456"
DELIVERY = {"smtp": {"server": "127.0.0.1"}, "sms": {"url": "http://127.0.0.1:9/sms"}}
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


# -- audit -----------------------------------------------------------------------------------
def test_a_persons_events_are_listed_newest_first_and_read_one_by_one(
    api: TestClient, clock: Clock
) -> None:
    ann = create(api, ANN)
    clock.advance(1)
    metadata = {"purpose": "support", "ticket_id": "T-1"}
    ok(
        api,
        "UserUpdate",
        {
            "mode": "token",
            "identity": ann,
            "profile": {"name": "Ann B"},
            "request_metadata": metadata,
        },
    )
    clock.advance(1)

    listed = ok(api, "AuditListUserEvents", {"mode": "email", "identity": "ann@example.com"})
    assert listed["total"] == 2
    assert [row["eventtype"] for row in listed["rows"]] == [
        "change user record by token",
        "create user record",
    ]
    assert all(TIMESTAMP.match(row["timestamp"]) for row in listed["rows"])
    assert [row["more"] for row in listed["rows"]] == [True, True]
    first = ok(
        api, "AuditListUserEvents", {"mode": "token", "identity": ann, "offset": 1, "limit": 1}
    )
    assert (first["total"], [r["eventtype"] for r in first["rows"]]) == (
        3,
        ["change user record by token"],
    )

    change = listed["rows"][0]["auditeventuuid"]
    event = ok(api, "AuditGetEvent", {"auditeventuuid": change})
    assert (event["auditeventuuid"], event["eventtype"]) == (change, "change user record by token")
    assert TIMESTAMP.match(event["timestamp"])
    details = event["details"]
    assert (details["token"], details["who"], details["status"]) == (ann, "root", "ok")
    assert details["request_metadata"] == metadata
    assert details["before"]["name"] == ANN["name"]
    assert details["after"]["name"] == "Ann B"
    # the same event through v1
    assert api.get(f"/v1/audit/get/{change}").json()["event"]["after"]["name"] == "Ann B"


def test_audit_errors(api: TestClient) -> None:
    assert_error(
        call(api, "AuditListUserEvents", {"mode": "login", "identity": "nobody"}),
        404,
        "The user record was not found",
    )
    assert_error(call(api, "AuditGetEvent", {"auditeventuuid": "x"}), 400, "Bad UUID")
    assert_error(
        call(api, "AuditGetEvent", {"auditeventuuid": "5b7f3a1e-0000-4000-8000-0000000000ff"}),
        404,
        "The audit event was not found",
    )
    assert_error(
        call(api, "AuditGetEvent", {}), 400, "Missing API request parameters: auditeventuuid"
    )


def test_a_person_reads_only_their_own_trail(api: TestClient, vault: Context) -> None:
    ann, bob = create(api, ANN), create(api, BOB)
    bobs_event = ok(api, "AuditListUserEvents", {"mode": "token", "identity": bob})["rows"][0]
    with client_for(vault, issue_user_token(vault, ann)) as own:
        mine = ok(own, "AuditListUserEvents", {"mode": "token", "identity": ann})
        assert mine["total"] >= 1
        event = ok(own, "AuditGetEvent", {"auditeventuuid": mine["rows"][-1]["auditeventuuid"]})
        assert event["details"]["token"] == ann
        assert_error(
            call(own, "AuditListUserEvents", {"mode": "token", "identity": bob}),
            403,
            "Access denied",
        )
        for atoken in (bobs_event["auditeventuuid"], "5b7f3a1e-0000-4000-8000-0000000000ff"):
            assert_error(
                call(own, "AuditGetEvent", {"auditeventuuid": atoken}), 403, "Access denied"
            )


# -- login -----------------------------------------------------------------------------------
@pytest.fixture
def login_vault(make_vault: VaultFactory) -> Context:
    return make_vault(random=FixedDigits(CODE), **DELIVERY)


@pytest.fixture
def root(login_vault: Context) -> Iterator[TestClient]:
    with client_for(login_vault) as client:
        yield client


@pytest.fixture
def stranger(login_vault: Context) -> Iterator[TestClient]:
    with client_for(login_vault, None) as client:
        yield client


def test_captcha_prelogin_and_login_give_a_persons_access_token(
    root: TestClient, stranger: TestClient, login_vault: Context
) -> None:
    ann = create(root, ANN)
    captcha = ok(stranger, "CaptchaCreate")
    assert captcha["captchaimage"].startswith("data:image/png;base64,")
    assert base64.b64decode(captcha["captchaimage"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"

    body = {"mode": "email", "identity": "ANN@example.com", "captchacode": captcha["captchacode"]}
    assert ok(stranger, "UserPrelogin", {**body, "code": CODE}) == {"status": "ok"}
    logged_in = ok(
        stranger, "UserLogin", {"mode": "email", "identity": "ann@example.com", "smscode": CODE}
    )
    assert logged_in["token"] == ann
    with client_for(login_vault, logged_in["xtoken"]) as own:
        assert ok(own, "UserGet", {"mode": "token", "identity": ann})["profile"] == ANN
    # the code is spent
    assert_error(
        call(
            stranger, "UserLogin", {"mode": "email", "identity": "ann@example.com", "smscode": CODE}
        ),
        403,
        "Access denied",
    )


def test_a_wrong_captcha_is_a_200_captcha_error_and_spends_the_captcha(
    root: TestClient, stranger: TestClient
) -> None:
    create(root, ANN)
    captcha = ok(stranger, "CaptchaCreate")["captchacode"]
    body = {"mode": "email", "identity": "ann@example.com", "captchacode": captcha}
    wrong = call(stranger, "UserPrelogin", {**body, "code": "000000"})
    assert (wrong.status_code, wrong.json()) == (
        200,
        {"status": "error", "message": "captcha-error"},
    )
    again = call(stranger, "UserPrelogin", {**body, "code": CODE})
    assert (again.status_code, again.json()["message"]) == (200, "captcha-error")


def test_prelogin_answers_alike_for_nobody(root: TestClient, stranger: TestClient) -> None:
    captcha = ok(stranger, "CaptchaCreate")["captchacode"]
    body = {"mode": "email", "identity": "nobody@example.com", "captchacode": captcha, "code": CODE}
    assert ok(stranger, "UserPrelogin", body) == {"status": "ok"}
    assert_error(
        call(
            stranger,
            "UserLogin",
            {"mode": "email", "identity": "nobody@example.com", "smscode": CODE},
        ),
        403,
        "Access denied",
    )


def test_wrong_codes_count_and_void_the_code(root: TestClient, stranger: TestClient) -> None:
    create(root, ANN)
    captcha = ok(stranger, "CaptchaCreate")["captchacode"]
    ok(
        stranger,
        "UserPrelogin",
        {"mode": "phone", "identity": "+44 7700 900123", "captchacode": captcha, "code": CODE},
    )
    wrong = {"mode": "phone", "identity": "+447700900123", "smscode": "999999"}
    for _ in range(5):
        assert_error(call(stranger, "UserLogin", wrong), 403, "Access denied")
    # the refusals were kept: after five wrong tries the right code is void
    assert_error(call(stranger, "UserLogin", {**wrong, "smscode": CODE}), 403, "Access denied")


def test_login_errors_and_rate_limits(root: TestClient, stranger: TestClient) -> None:
    assert_error(
        call(stranger, "UserLogin", {"mode": "login", "identity": "ann", "smscode": CODE}),
        400,
        "The mode parameter has an incorrect format",
    )
    assert_error(
        call(stranger, "UserPrelogin", {"mode": "email", "identity": "a@example.com"}),
        400,
        "Missing API request parameters: code, captchacode",
    )
    body = {"mode": "email", "identity": "x@example.com", "smscode": "1"}
    for _ in range(10):
        assert call(stranger, "UserLogin", body).status_code == 403
    assert_error(call(stranger, "UserLogin", body), 429, "Too many requests")


def test_the_limit_per_client_address_reads_the_network_not_the_body(
    stranger: TestClient,
) -> None:
    # 60 logins per address per window, each for another identity and claiming another
    # address in the body: the 61st is refused all the same.
    for n in range(60):
        body = {
            "mode": "email",
            "identity": f"p{n}@example.com",
            "smscode": "1",
            "client_address": f"10.0.0.{n}",
        }
        assert call(stranger, "UserLogin", body).status_code == 403
    body = {
        "mode": "email",
        "identity": "last@example.com",
        "smscode": "1",
        "client_address": "10.9.9.9",
    }
    assert_error(call(stranger, "UserLogin", body), 429, "Too many requests")


def test_root_mints_a_persons_xtoken(root: TestClient, login_vault: Context, clock: Clock) -> None:
    ann = create(root, ANN)
    minted = ok(
        root, "XTokenCreateForUser", {"mode": "login", "identity": "ann", "finaltime": "1m"}
    )
    assert minted["token"] == ann
    with client_for(login_vault, minted["xtoken"]) as own:
        assert ok(own, "UserGet", {"mode": "token", "identity": ann})["profile"] == ANN
        assert_error(
            call(own, "XTokenCreateForUser", {"mode": "token", "identity": ann}),
            403,
            "Access denied",
        )
        clock.advance(61)
        assert_error(call(own, "UserGet", {"mode": "token", "identity": ann}), 403, "Access denied")
    assert_error(
        call(root, "XTokenCreateForUser", {"mode": "login", "identity": "nobody"}),
        404,
        "The user record was not found",
    )
    assert_error(
        call(root, "XTokenCreateForUser", {"mode": "login", "identity": "ann", "finaltime": "no"}),
        400,
        "The finaltime parameter has an incorrect format",
    )
