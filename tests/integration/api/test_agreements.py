"""Agreements (consents) over HTTP: ``/v1/agreement/...`` and ``/v1/agreements/...``.

Accept, read, list, withdraw and revoke; anonymous consent by email or phone before the
person has a record; webhooks queued in the outbox; the expiry job; what the database holds.
Assertions are about what an API client, a webhook receiver or a database reader observes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from httpx2 import Response
from starlette.testclient import TestClient

from conftest import VaultFactory
from databunker.jobs import run_jobs
from databunker.services.context import Context
from databunker.storage.outbox import open_payload
from databunker.storage.tables import agreements, metadata, outbox
from support.vaults import Clock, client_for, issue_user_token
from support.vaults import create_user as create

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
OK = {"status": "ok"}
ACCESS_DENIED = {"status": "error", "message": "access denied"}
HOOK = {"notification": {"notification_url": "http://127.0.0.1:9/hook"}}

BRIEF = "newsletter"  # the person may withdraw it directly
LOCKED = "contract-terms"  # withdrawing needs an administrator's approval
OTHER_BRIEF = "profiling"

ANN: dict[str, Any] = {
    "login": "ann",
    "email": "ann@example.com",
    "phone": "+447700900123",
    "custom": "cust-ann",
    "name": "Ann",
}
BOB: dict[str, Any] = {"login": "bob", "email": "bob@example.com", "phone": "+447700900456"}
EMAIL, PHONE = ANN["email"], ANN["phone"]


# -- helpers ---------------------------------------------------------------------------------
def assert_ok(response: Response) -> None:
    assert response.status_code == 200, response.text
    assert response.json() == OK


def assert_error(response: Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"status": "error", "message": message}


def define_catalogue(api: TestClient) -> None:
    for brief, usercontrol in ((BRIEF, True), (LOCKED, False), (OTHER_BRIEF, True)):
        body = {"module": "signup-page", "basistype": "consent", "usercontrol": usercontrol}
        assert_ok(api.post(f"/v1/lbasis/{brief}", json=body))


def accept(client: TestClient, brief: str, mode: str, identity: str, body: Any = None) -> Response:
    return client.post(f"/v1/agreement/{brief}/{mode}/{identity}", json=body)


def withdraw(
    client: TestClient, brief: str, mode: str, identity: str, body: Any = None
) -> Response:
    return client.request("DELETE", f"/v1/agreement/{brief}/{mode}/{identity}", json=body)


def agreement(api: TestClient, token: str, brief: str = BRIEF) -> dict[str, Any]:
    response = api.get(f"/v1/agreement/{brief}/token/{token}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"status", "data"}
    data: dict[str, Any] = body["data"]
    return data


def listed(api: TestClient, token: str) -> list[dict[str, Any]]:
    response = api.get(f"/v1/agreements/token/{token}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"status", "total", "rows"}
    assert body["status"] == "ok"
    assert body["total"] == len(body["rows"])
    rows: list[dict[str, Any]] = body["rows"]
    return rows


def statuses(api: TestClient, token: str) -> dict[str, str]:
    return {row["brief"]: row["status"] for row in listed(api, token)}


def raw_agreements(vault: Context) -> list[dict[str, Any]]:
    with vault.database.transaction() as conn:
        result = conn.execute(sa.select(agreements).order_by(agreements.c.id))
        return [dict(row._mapping) for row in result]


def webhooks(vault: Context) -> list[dict[str, Any]]:
    """Every queued webhook payload, decrypted, oldest first."""
    key = vault.keyring.service_key("outbox")
    with vault.database.transaction() as conn:
        rows = conn.execute(sa.select(outbox.c.id, outbox.c.payload).order_by(outbox.c.id)).all()
    return [open_payload(key, int(row.id), bytes(row.payload)) for row in rows]


def consent_changes(vault: Context) -> list[dict[str, Any]]:
    return [p for p in webhooks(vault) if p.get("action") == "consentchange"]


@pytest.fixture
def api(vault: Context) -> Iterator[TestClient]:
    """Root client of a vault whose catalogue holds BRIEF, LOCKED and OTHER_BRIEF."""
    with client_for(vault) as client:
        define_catalogue(client)
        yield client


@pytest.fixture
def hooked(make_vault: VaultFactory) -> Context:
    """A vault that sends webhooks, with the catalogue defined.

    Its clients are used without ``with``: no server lifespan, so no dispatcher delivers
    (or races for) the queued rows these tests read.
    """
    vault = make_vault(**HOOK)
    define_catalogue(client_for(vault))
    return vault


def identity_of(token: str, mode: str) -> str:
    return token if mode == "token" else str(ANN[mode])


# -- accept and read -------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["token", "login", "email", "phone", "custom"])
def test_root_accepts_by_every_mode(api: TestClient, clock: Clock, mode: str) -> None:
    ann = create(api, ANN)
    clock.advance(20)

    assert_ok(accept(api, BRIEF, mode, identity_of(ann, mode)))

    expected: dict[str, Any] = {
        "brief": BRIEF,
        "status": "yes",
        "mode": mode,
        "token": ann,
        "agreementmethod": "api",
        "creationtime": clock.now,
        "starttime": 0,
        "endtime": 0,
        "when": clock.now,
    }
    if mode in ("email", "phone"):
        expected["who"] = ANN[mode]
    response = api.get(f"/v1/agreement/{BRIEF}/{mode}/{identity_of(ann, mode)}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"status", "data"}
    assert body["status"] == "ok"
    data = body["data"]
    if mode not in ("email", "phone"):
        data.pop("who", None)  # the spec names the identity only for email and phone
    assert data == expected
    assert listed(api, ann) == [agreement(api, ann)]


def test_owner_accepts_with_their_user_token(api: TestClient, vault: Context) -> None:
    ann = create(api, ANN)
    with client_for(vault, issue_user_token(vault, ann)) as owner:
        assert_ok(accept(owner, BRIEF, "token", ann))
        assert_ok(accept(owner, OTHER_BRIEF, "email", EMAIL))
        assert owner.get(f"/v1/agreement/{BRIEF}/token/{ann}").json()["data"]["status"] == "yes"
        own = owner.get(f"/v1/agreements/login/{ANN['login']}")
        assert own.status_code == 200
        assert {row["brief"] for row in own.json()["rows"]} == {BRIEF, OTHER_BRIEF}


def test_list_holds_every_agreement_of_the_person_only(api: TestClient) -> None:
    ann = create(api, ANN)
    bob = create(api, BOB)
    assert_ok(accept(api, BRIEF, "token", ann))
    assert_ok(accept(api, OTHER_BRIEF, "email", EMAIL, {"status": "no"}))
    assert_ok(accept(api, BRIEF, "token", bob))

    response = api.get(f"/v1/agreements/email/{EMAIL}")

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["total"]) == ("ok", 2)
    assert {(r["brief"], r["status"], r["token"]) for r in body["rows"]} == {
        (BRIEF, "yes", ann),
        (OTHER_BRIEF, "no", ann),
    }


def test_list_is_empty_not_null(api: TestClient) -> None:
    ann = create(api, ANN)
    response = api.get(f"/v1/agreements/token/{ann}")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "total": 0, "rows": []}


def test_get_missing_agreement_is_not_found(api: TestClient) -> None:
    ann = create(api, ANN)
    assert_error(api.get(f"/v1/agreement/{BRIEF}/token/{ann}"), 404, "not found")
    assert_error(api.get(f"/v1/agreement/undefined-brief/token/{ann}"), 404, "not found")
    assert_error(api.get(f"/v1/agreement/1bad/token/{ann}"), 400, "bad brief format")


@pytest.mark.parametrize("value", ["accept", "given", "true", "1", "on", "yes", "YES", "agree"])
def test_consent_spellings_mean_yes(api: TestClient, value: str) -> None:
    ann = create(api, ANN)
    assert_ok(accept(api, BRIEF, "token", ann, {"status": value}))
    assert agreement(api, ann)["status"] == "yes"


@pytest.mark.parametrize("value", ["nope", "no", "false", "0", "off", "refused"])
def test_other_spellings_mean_no(api: TestClient, value: str) -> None:
    ann = create(api, ANN)
    assert_ok(accept(api, BRIEF, "token", ann, {"status": value}))
    assert agreement(api, ann)["status"] == "no"


@pytest.mark.parametrize(("body", "status"), [(None, "yes"), ({"status": True}, "yes")])
def test_absent_or_json_true_status_means_yes(api: TestClient, body: Any, status: str) -> None:
    ann = create(api, ANN)
    assert_ok(accept(api, BRIEF, "token", ann, body))
    assert agreement(api, ann)["status"] == status


def test_form_body_is_read(api: TestClient) -> None:
    ann = create(api, ANN)
    response = api.post(
        f"/v1/agreement/{BRIEF}/token/{ann}",
        content="status=no&referencecode=ref-9&agreementmethod=form",
        headers=FORM,
    )
    assert_ok(response)
    data = agreement(api, ann)
    assert (data["status"], data["referencecode"], data["agreementmethod"]) == (
        "no",
        "ref-9",
        "form",
    )


def test_expiration_as_a_duration_is_counted_from_now(api: TestClient, clock: Clock) -> None:
    ann = create(api, ANN)
    assert_ok(accept(api, BRIEF, "token", ann, {"expiration": "1h"}))
    assert agreement(api, ann)["endtime"] == clock.now + 3600
    assert_ok(accept(api, OTHER_BRIEF, "token", ann, {"expiration": "2d"}))
    assert agreement(api, ann, OTHER_BRIEF)["endtime"] == clock.now + 2 * 86400


def test_expiration_as_a_number_is_an_absolute_time(api: TestClient) -> None:
    ann = create(api, ANN)
    assert_ok(accept(api, BRIEF, "token", ann, {"expiration": 1_900_000_000}))
    assert agreement(api, ann)["endtime"] == 1_900_000_000


def test_reference_code_modifier_and_method_are_kept(api: TestClient) -> None:
    ann = create(api, ANN)
    body = {"referencecode": "ref-1", "lastmodifiedby": "web shop", "agreementmethod": "checkbox"}
    assert_ok(accept(api, BRIEF, "token", ann, body))
    data = agreement(api, ann)
    assert {k: data[k] for k in body} == body


def test_second_accept_updates_the_same_agreement(api: TestClient, clock: Clock) -> None:
    ann = create(api, ANN)
    assert_ok(
        accept(
            api,
            BRIEF,
            "token",
            ann,
            {"expiration": "1h", "referencecode": "ref-1", "agreementmethod": "checkbox"},
        )
    )
    created = clock.now
    clock.advance(600)

    assert_ok(accept(api, BRIEF, "email", EMAIL, {"status": "no", "agreementmethod": "other"}))

    data = agreement(api, ann)
    assert data["status"] == "no"
    assert data["creationtime"] == created
    assert data["when"] == clock.now
    assert data["endtime"] == 0
    assert data["referencecode"] == "ref-1"
    assert data["agreementmethod"] == "checkbox"
    assert len(listed(api, ann)) == 1


@pytest.mark.parametrize("brief", ["1bad", "x", "a" * 66, "a_b"])
def test_accept_with_bad_brief_is_refused(api: TestClient, brief: str) -> None:
    ann = create(api, ANN)
    assert_error(accept(api, brief, "token", ann), 400, "incorrect brief format")
    assert listed(api, ann) == []


def test_accept_with_unknown_brief_is_not_found(api: TestClient, anonymous: TestClient) -> None:
    ann = create(api, ANN)
    assert_error(accept(api, "never-defined", "token", ann), 404, "not found")
    assert_error(accept(anonymous, "never-defined", "email", EMAIL), 404, "not found")
    assert listed(api, ann) == []


def test_brief_in_the_path_is_lower_cased(api: TestClient) -> None:
    ann = create(api, ANN)
    assert_ok(accept(api, "NewsLetter", "token", ann))
    assert agreement(api, ann)["brief"] == BRIEF
    assert api.get(f"/v1/agreement/NEWSLETTER/token/{ann}").json()["data"]["brief"] == BRIEF


@pytest.mark.parametrize(
    ("mode", "identity"), [("email", "not-an-email"), ("email", "a@"), ("phone", "12")]
)
def test_accept_with_an_invalid_identity_is_refused(
    api: TestClient, anonymous: TestClient, vault: Context, mode: str, identity: str
) -> None:
    response = accept(api, BRIEF, mode, identity)
    assert response.status_code == 400, response.text
    assert response.json()["status"] == "error"
    assert accept(anonymous, BRIEF, mode, identity).status_code == 400
    assert raw_agreements(vault) == []


def test_accept_with_bad_mode_is_refused(api: TestClient) -> None:
    assert_error(accept(api, BRIEF, "nickname", "ann"), 400, "bad mode")


def test_root_accept_for_a_missing_token_login_or_custom_is_not_found(api: TestClient) -> None:
    assert_error(
        accept(api, BRIEF, "token", "9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f"), 404, "not found"
    )
    assert_error(accept(api, BRIEF, "login", "nobody"), 404, "not found")
    assert_error(accept(api, BRIEF, "custom", "nobody"), 404, "not found")


# -- anonymous consent -----------------------------------------------------------------------
@pytest.mark.parametrize("spelling", ["ann@example.com", "Ann@Example.COM"])
@pytest.mark.parametrize("giver", ["anonymous", "root"])
def test_consent_by_email_before_the_record_exists_is_bound_at_creation(
    api: TestClient, anonymous: TestClient, clock: Clock, spelling: str, giver: str
) -> None:
    client = anonymous if giver == "anonymous" else api
    assert_ok(accept(client, BRIEF, "email", EMAIL, {"referencecode": "signup"}))
    given = clock.now
    clock.advance(100)

    ann = create(api, {**ANN, "email": spelling})

    assert listed(api, ann) == [
        {
            "brief": BRIEF,
            "status": "yes",
            "mode": "email",
            "token": ann,
            "who": EMAIL,
            "referencecode": "signup",
            "agreementmethod": "api",
            "creationtime": given,
            "starttime": 0,
            "endtime": 0,
            "when": given,
        }
    ]


def test_consent_by_phone_before_the_record_exists_is_bound_at_creation(
    api: TestClient, anonymous: TestClient
) -> None:
    assert_ok(accept(anonymous, BRIEF, "phone", PHONE, {"status": "no"}))
    ann = create(api, {"phone": "07700 900123", "name": "Ann"})
    rows = listed(api, ann)
    assert [(r["brief"], r["status"], r["mode"], r["token"], r["who"]) for r in rows] == [
        (BRIEF, "no", "phone", ann, PHONE)
    ]


def test_anonymous_identity_is_kept_normalised(api: TestClient, anonymous: TestClient) -> None:
    """Databunker v1 stores the normalised email or phone as ``who``."""
    assert_ok(accept(anonymous, BRIEF, "email", "Ann@Example.COM"))
    assert_ok(accept(anonymous, OTHER_BRIEF, "phone", "07700 900123"))
    ann = create(api, ANN)
    assert {row["brief"]: row["who"] for row in listed(api, ann)} == {
        BRIEF: EMAIL,
        OTHER_BRIEF: PHONE,
    }


def test_consent_of_someone_else_is_not_bound(api: TestClient, anonymous: TestClient) -> None:
    assert_ok(accept(anonymous, BRIEF, "email", "carol@example.com"))
    ann = create(api, ANN)
    assert listed(api, ann) == []
    carol = create(api, {"email": "carol@example.com"})
    assert [row["brief"] for row in listed(api, carol)] == [BRIEF]


@pytest.mark.parametrize("latest", ["email", "phone"])
def test_when_email_and_phone_both_answered_the_latest_answer_wins(
    api: TestClient, anonymous: TestClient, vault: Context, clock: Clock, latest: str
) -> None:
    first = "phone" if latest == "email" else "email"
    assert_ok(accept(anonymous, BRIEF, first, ANN[first], {"status": "yes"}))
    clock.advance(60)
    assert_ok(accept(anonymous, BRIEF, latest, ANN[latest], {"status": "no"}))
    assert_ok(accept(anonymous, OTHER_BRIEF, first, ANN[first]))
    clock.advance(60)

    ann = create(api, ANN)

    rows = {row["brief"]: row for row in listed(api, ann)}
    assert set(rows) == {BRIEF, OTHER_BRIEF}
    assert (rows[BRIEF]["status"], rows[BRIEF]["mode"], rows[BRIEF]["who"]) == (
        "no",
        latest,
        ANN[latest],
    )
    assert (rows[OTHER_BRIEF]["status"], rows[OTHER_BRIEF]["who"]) == ("yes", ANN[first])
    assert len(raw_agreements(vault)) == 2


def test_anonymous_accept_for_an_existing_person_is_recorded_for_them(
    api: TestClient, anonymous: TestClient
) -> None:
    ann = create(api, ANN)
    assert_ok(accept(anonymous, BRIEF, "email", "ANN@example.com"))
    assert_ok(accept(anonymous, OTHER_BRIEF, "phone", PHONE))
    rows = {row["brief"]: row for row in listed(api, ann)}
    assert (rows[BRIEF]["status"], rows[BRIEF]["token"], rows[BRIEF]["mode"]) == (
        "yes",
        ann,
        "email",
    )
    assert (rows[OTHER_BRIEF]["status"], rows[OTHER_BRIEF]["token"]) == ("yes", ann)


def test_anonymous_accept_cannot_change_an_existing_agreement(
    api: TestClient, anonymous: TestClient, clock: Clock
) -> None:
    ann = create(api, ANN)
    assert_ok(accept(api, BRIEF, "token", ann))
    assert_ok(withdraw(api, BRIEF, "token", ann))
    assert_ok(accept(api, OTHER_BRIEF, "token", ann))
    before = listed(api, ann)
    clock.advance(30)

    assert_ok(accept(anonymous, BRIEF, "email", EMAIL, {"status": "yes"}))
    assert_ok(accept(anonymous, OTHER_BRIEF, "phone", PHONE, {"status": "no"}))

    assert listed(api, ann) == before
    assert statuses(api, ann) == {BRIEF: "no", OTHER_BRIEF: "yes"}


def test_anonymous_accept_cannot_change_an_earlier_anonymous_answer(
    api: TestClient, anonymous: TestClient, clock: Clock
) -> None:
    assert_ok(accept(anonymous, BRIEF, "email", EMAIL, {"status": "no"}))
    clock.advance(30)
    assert_ok(accept(anonymous, BRIEF, "email", EMAIL, {"status": "yes"}))
    ann = create(api, ANN)
    assert statuses(api, ann) == {BRIEF: "no"}


@pytest.mark.parametrize("mode", ["token", "login", "custom"])
def test_anonymous_accept_by_token_login_or_custom_is_denied(
    api: TestClient, anonymous: TestClient, mode: str
) -> None:
    ann = create(api, ANN)
    response = accept(anonymous, BRIEF, mode, identity_of(ann, mode))
    assert (response.status_code, response.json()) == (403, ACCESS_DENIED)
    assert listed(api, ann) == []


@pytest.mark.parametrize("token", ["not-a-token", "DEMO", "9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f"])
def test_accept_with_a_bad_token_header_is_denied(
    api: TestClient, vault: Context, token: str
) -> None:
    ann = create(api, ANN)
    with client_for(vault, token) as client:
        for mode in ("email", "phone"):
            response = accept(client, BRIEF, mode, ANN[mode])
            assert (response.status_code, response.json()) == (403, ACCESS_DENIED)
        response = accept(client, BRIEF, "email", "carol@example.com")
        assert (response.status_code, response.json()) == (403, ACCESS_DENIED)
    assert listed(api, ann) == []
    assert raw_agreements(vault) == []


def test_accept_with_an_expired_token_is_denied(
    api: TestClient, vault: Context, clock: Clock
) -> None:
    ann = create(api, ANN)
    token = issue_user_token(vault, ann, ttl=60)
    clock.advance(61)
    with client_for(vault, token) as client:
        response = accept(client, BRIEF, "email", EMAIL)
    assert (response.status_code, response.json()) == (403, ACCESS_DENIED)
    assert listed(api, ann) == []


@pytest.mark.parametrize("mode", ["email", "phone"])
def test_anonymous_withdraw_is_always_denied(
    api: TestClient, anonymous: TestClient, mode: str
) -> None:
    ann = create(api, ANN)
    assert_ok(accept(api, BRIEF, "token", ann))
    assert_ok(accept(anonymous, BRIEF, "email", "carol@example.com"))
    assert_ok(accept(anonymous, BRIEF, "phone", "+447700900777"))
    before = listed(api, ann)

    for identity in (ANN[mode], "carol@example.com" if mode == "email" else "+447700900777"):
        response = withdraw(anonymous, BRIEF, mode, identity)
        assert (response.status_code, response.json()) == (403, ACCESS_DENIED)

    assert listed(api, ann) == before
    assert statuses(api, ann) == {BRIEF: "yes"}
    carol = create(api, {"email": "carol@example.com", "phone": "+447700900777"})
    assert statuses(api, carol) == {BRIEF: "yes"}


# -- withdraw --------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["token", "login", "email", "phone", "custom"])
def test_root_withdraws(api: TestClient, clock: Clock, mode: str) -> None:
    ann = create(api, ANN)
    assert_ok(accept(api, LOCKED, "token", ann, {"expiration": "1h"}))
    created = clock.now
    clock.advance(15)

    assert_ok(withdraw(api, LOCKED, mode, identity_of(ann, mode), {"lastmodifiedby": "dpo"}))

    data = agreement(api, ann, LOCKED)
    assert data["status"] == "no"
    assert data["endtime"] == 0
    assert data["lastmodifiedby"] == "dpo"
    assert data["when"] == clock.now
    assert data["creationtime"] == created
    assert data["mode"] == mode


def test_owner_withdraws_a_consent_under_their_control(api: TestClient, vault: Context) -> None:
    ann = create(api, ANN)
    assert_ok(accept(api, BRIEF, "token", ann))
    assert_ok(accept(api, OTHER_BRIEF, "token", ann))

    with client_for(vault, issue_user_token(vault, ann)) as owner:
        assert_ok(withdraw(owner, BRIEF, "token", ann))
        assert_ok(withdraw(owner, OTHER_BRIEF, "email", EMAIL))

    assert statuses(api, ann) == {BRIEF: "no", OTHER_BRIEF: "no"}


def test_owner_withdrawal_of_a_locked_consent_becomes_a_request(
    api: TestClient, vault: Context
) -> None:
    ann = create(api, ANN)
    assert_ok(accept(api, LOCKED, "token", ann))
    before = agreement(api, ann, LOCKED)

    with client_for(vault, issue_user_token(vault, ann)) as owner:
        first = withdraw(owner, LOCKED, "token", ann)
        second = withdraw(owner, LOCKED, "email", EMAIL)

    assert first.status_code == 200, first.text
    created = first.json()
    assert created == {"status": "ok", "result": "request-created", "rtoken": created["rtoken"]}
    assert UUID.match(created["rtoken"])
    assert second.status_code == 200, second.text
    assert second.json() == {
        "status": "ok",
        "result": "request-exists",
        "rtoken": created["rtoken"],
    }
    assert agreement(api, ann, LOCKED) == before


def test_other_person_cannot_withdraw(api: TestClient, vault: Context) -> None:
    ann = create(api, ANN)
    bob = create(api, BOB)
    assert_ok(accept(api, BRIEF, "token", ann))
    with client_for(vault, issue_user_token(vault, bob)) as other:
        response = withdraw(other, BRIEF, "token", ann)
    assert (response.status_code, response.json()) == (403, ACCESS_DENIED)
    assert statuses(api, ann) == {BRIEF: "yes"}


def test_withdrawing_a_missing_agreement_creates_nothing(api: TestClient, vault: Context) -> None:
    ann = create(api, ANN)
    assert_ok(withdraw(api, BRIEF, "token", ann))
    assert_ok(withdraw(api, BRIEF, "email", "carol@example.com"))
    with client_for(vault, issue_user_token(vault, ann)) as owner:
        assert_ok(withdraw(owner, OTHER_BRIEF, "token", ann))
    assert listed(api, ann) == []
    assert raw_agreements(vault) == []


def test_withdraw_errors(api: TestClient) -> None:
    ann = create(api, ANN)
    assert_error(withdraw(api, "1bad", "token", ann), 400, "bad brief format")
    assert_error(withdraw(api, "never-defined", "token", ann), 404, "not found")
    assert_error(
        withdraw(api, BRIEF, "token", "9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f"), 404, "not found"
    )


def test_root_withdraws_an_anonymous_consent_by_email(
    api: TestClient, anonymous: TestClient
) -> None:
    assert_ok(accept(anonymous, BRIEF, "email", EMAIL))
    assert_ok(withdraw(api, BRIEF, "email", EMAIL, {"lastmodifiedby": "dpo"}))
    ann = create(api, ANN)
    [row] = listed(api, ann)
    assert (row["status"], row["lastmodifiedby"], row["who"]) == ("no", "dpo", EMAIL)


# -- revoke for everyone ---------------------------------------------------------------------
def test_revoke_turns_every_given_consent_of_the_brief_into_revoked(
    api: TestClient, anonymous: TestClient, clock: Clock
) -> None:
    ann = create(api, ANN)
    bob = create(api, BOB)
    assert_ok(accept(api, BRIEF, "token", ann))
    assert_ok(accept(api, OTHER_BRIEF, "token", ann))
    assert_ok(accept(api, BRIEF, "token", bob, {"status": "no"}))
    assert_ok(accept(anonymous, BRIEF, "email", "carol@example.com"))
    clock.advance(40)

    assert_ok(api.delete(f"/v1/agreement/{BRIEF}"))

    assert statuses(api, ann) == {BRIEF: "revoked", OTHER_BRIEF: "yes"}
    assert agreement(api, ann)["when"] == clock.now
    assert statuses(api, bob) == {BRIEF: "no"}
    carol = create(api, {"email": "carol@example.com"})
    [row] = listed(api, carol)
    assert (row["status"], row["who"]) == ("revoked", "carol@example.com")
    # the legal basis itself stays usable
    assert_ok(accept(api, BRIEF, "token", bob))
    assert statuses(api, bob) == {BRIEF: "yes"}


def test_revoke_errors(api: TestClient) -> None:
    assert_error(api.delete("/v1/agreement/never-defined"), 404, "not found")
    assert_error(api.delete("/v1/agreement/1bad"), 400, "bad brief format")


# -- webhooks --------------------------------------------------------------------------------
def test_withdraw_queues_one_consent_change_webhook(hooked: Context) -> None:
    api = client_for(hooked)
    ann = create(api, ANN)
    assert_ok(accept(api, BRIEF, "token", ann))
    assert_ok(accept(api, OTHER_BRIEF, "email", EMAIL))
    queued = len(webhooks(hooked))
    assert consent_changes(hooked) == []  # accepting notifies nobody

    owner = client_for(hooked, issue_user_token(hooked, ann))
    assert_ok(withdraw(owner, BRIEF, "email", EMAIL))

    assert webhooks(hooked)[queued:] == [
        {
            "action": "consentchange",
            "brief": BRIEF,
            "identity": ann,
            "mode": "token",
            "status": "no",
        }
    ]

    assert_ok(withdraw(api, OTHER_BRIEF, "phone", PHONE))
    assert consent_changes(hooked)[1:] == [
        {
            "action": "consentchange",
            "brief": OTHER_BRIEF,
            "identity": ann,
            "mode": "token",
            "status": "no",
        }
    ]


@pytest.mark.parametrize(("mode", "identity"), [("email", EMAIL), ("phone", PHONE)])
def test_withdrawing_an_anonymous_consent_names_the_identity(
    hooked: Context, mode: str, identity: str
) -> None:
    anonymous = client_for(hooked, None)
    assert_ok(accept(anonymous, BRIEF, mode, identity))
    api = client_for(hooked)
    assert_ok(withdraw(api, BRIEF, mode, identity))
    assert webhooks(hooked) == [
        {
            "action": "consentchange",
            "brief": BRIEF,
            "identity": identity,
            "mode": mode,
            "status": "no",
        }
    ]


def test_no_webhook_for_nothing_to_withdraw_or_a_request(hooked: Context) -> None:
    api = client_for(hooked)
    ann = create(api, ANN)
    assert_ok(accept(api, LOCKED, "token", ann))
    assert_ok(withdraw(api, BRIEF, "token", ann))
    owner = client_for(hooked, issue_user_token(hooked, ann))
    response = withdraw(owner, LOCKED, "token", ann)
    assert response.json()["result"] == "request-created"
    assert consent_changes(hooked) == []


def test_no_webhook_without_a_notification_url(
    api: TestClient, vault: Context, clock: Clock
) -> None:
    ann = create(api, ANN)
    assert_ok(accept(api, BRIEF, "token", ann, {"expiration": "1h"}))
    assert_ok(accept(api, OTHER_BRIEF, "token", ann))
    assert_ok(withdraw(api, OTHER_BRIEF, "token", ann))
    with vault.database.transaction() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one() == 0
    clock.advance(3601)
    run_jobs(vault)
    assert statuses(api, ann)[BRIEF] == "expired"
    with vault.database.transaction() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one() == 0


# -- expiry ----------------------------------------------------------------------------------
def test_expiry_job_expires_due_consents_once(hooked: Context, clock: Clock) -> None:
    api = client_for(hooked)
    ann = create(api, ANN)
    assert_ok(accept(api, BRIEF, "token", ann, {"expiration": "1h"}))
    assert_ok(accept(api, OTHER_BRIEF, "token", ann))
    assert_ok(accept(api, LOCKED, "token", ann, {"expiration": "2h"}))
    queued = len(webhooks(hooked))

    clock.advance(3601)
    run_jobs(hooked)

    assert statuses(api, ann) == {BRIEF: "expired", OTHER_BRIEF: "yes", LOCKED: "yes"}
    assert agreement(api, ann)["when"] == clock.now
    expected = {
        "action": "consentchange",
        "brief": BRIEF,
        "identity": ann,
        "mode": "token",
        "status": "expired",
    }
    assert webhooks(hooked)[queued:] == [expected]

    run_jobs(hooked)

    assert statuses(api, ann) == {BRIEF: "expired", OTHER_BRIEF: "yes", LOCKED: "yes"}
    assert webhooks(hooked)[queued:] == [expected]


def test_expiry_of_an_anonymous_consent_names_the_identity(hooked: Context, clock: Clock) -> None:
    anonymous = client_for(hooked, None)
    assert_ok(accept(anonymous, BRIEF, "email", EMAIL, {"expiration": "1h"}))
    clock.advance(3601)
    run_jobs(hooked)
    assert consent_changes(hooked) == [
        {
            "action": "consentchange",
            "brief": BRIEF,
            "identity": EMAIL,
            "mode": "email",
            "status": "expired",
        }
    ]
    api = client_for(hooked)
    ann = create(api, ANN)
    assert statuses(api, ann) == {BRIEF: "expired"}


def test_withdrawn_or_refused_consents_do_not_expire(
    api: TestClient, vault: Context, clock: Clock
) -> None:
    ann = create(api, ANN)
    assert_ok(accept(api, BRIEF, "token", ann, {"expiration": "1h", "status": "no"}))
    assert_ok(accept(api, OTHER_BRIEF, "token", ann, {"expiration": "1h"}))
    assert_ok(withdraw(api, OTHER_BRIEF, "token", ann))
    clock.advance(3601)
    run_jobs(vault)
    assert statuses(api, ann) == {BRIEF: "no", OTHER_BRIEF: "no"}


# -- what the database holds -----------------------------------------------------------------
def _cells(row: dict[str, Any]) -> Iterator[str]:
    for value in row.values():
        if isinstance(value, bytes | bytearray | memoryview):
            yield bytes(value).decode("latin-1")
        elif value is not None:
            yield str(value)


def test_no_email_or_phone_is_stored_in_clear(
    api: TestClient, anonymous: TestClient, vault: Context
) -> None:
    needles = [
        "ann@example.com",
        "example.com",
        "+447700900123",
        "7700900123",
        "carol@example.com",
        "carol",
        "+447700900777",
        "7700900777",
    ]
    assert_ok(accept(anonymous, BRIEF, "email", "carol@example.com"))
    assert_ok(accept(anonymous, OTHER_BRIEF, "phone", "+447700900777"))
    assert_ok(accept(anonymous, BRIEF, "email", EMAIL))
    assert_ok(accept(anonymous, OTHER_BRIEF, "phone", PHONE))
    ann = create(api, ANN)
    assert_ok(accept(api, LOCKED, "email", EMAIL, {"referencecode": "r", "lastmodifiedby": "m"}))
    assert_ok(withdraw(api, OTHER_BRIEF, "phone", PHONE))
    assert len(listed(api, ann)) == 3

    rows = raw_agreements(vault)

    assert len(rows) == 5
    for row in rows:
        for cell in _cells(row):
            for needle in needles:
                assert needle not in cell.lower(), row


def test_no_table_holds_an_anonymous_identity_in_clear(
    make_vault: VaultFactory, clock: Clock
) -> None:
    vault = make_vault(**HOOK)
    api = client_for(vault)
    anonymous = client_for(vault, None)
    define_catalogue(api)
    assert_ok(accept(anonymous, BRIEF, "email", "Carol@Example.org"))
    assert_ok(accept(anonymous, OTHER_BRIEF, "phone", "+447700900777"))
    assert_ok(accept(anonymous, LOCKED, "email", "dave@example.org", {"expiration": "1h"}))
    assert_ok(withdraw(api, BRIEF, "email", "Carol@Example.org"))
    assert_ok(withdraw(api, OTHER_BRIEF, "phone", "+447700900777"))
    clock.advance(3601)
    run_jobs(vault)
    assert len(consent_changes(vault)) == 3

    needles = ("carol@", "dave@", "example.org", "7700900777")
    with vault.database.transaction() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(sa.select(table)):
                for cell in _cells(dict(row._mapping)):
                    for needle in needles:
                        assert needle not in cell.lower(), (table.name, row)


def test_identity_encryption_is_randomised(
    api: TestClient, anonymous: TestClient, vault: Context
) -> None:
    assert_ok(accept(anonymous, BRIEF, "email", EMAIL))
    assert_ok(accept(anonymous, OTHER_BRIEF, "email", EMAIL))
    assert_ok(accept(anonymous, LOCKED, "email", "carol@example.com"))
    rows = raw_agreements(vault)
    sealed = [bytes(row["who"]) for row in rows]
    assert len(sealed) == 3
    assert len(set(sealed)) == 3
    # same length plaintexts would show a shared key stream as equal prefixes
    assert sealed[0][:16] != sealed[1][:16]


# -- erasure ---------------------------------------------------------------------------------
def test_agreements_survive_erasure_without_the_identity(
    api: TestClient, anonymous: TestClient
) -> None:
    assert_ok(accept(anonymous, BRIEF, "email", EMAIL))
    ann = create(api, ANN)
    assert_ok(accept(api, OTHER_BRIEF, "phone", PHONE))
    assert_ok(accept(api, LOCKED, "token", ann))
    assert_ok(withdraw(api, LOCKED, "login", ANN["login"]))
    before = listed(api, ann)
    # ``who``: the identity of each agreement's latest change (the withdrawal by login).
    assert {row["brief"]: row.get("who") for row in before} == {
        BRIEF: EMAIL,
        OTHER_BRIEF: PHONE,
        LOCKED: ANN["login"],
    }

    response = api.delete(f"/v1/user/token/{ann}")
    assert response.status_code == 200, response.text

    after = listed(api, ann)
    assert after == [{k: v for k, v in row.items() if k != "who"} for row in before]
    assert statuses(api, ann) == {BRIEF: "yes", OTHER_BRIEF: "yes", LOCKED: "no"}


# -- audit -----------------------------------------------------------------------------------
def test_agreement_calls_are_in_the_persons_audit_trail(
    api: TestClient, anonymous: TestClient
) -> None:
    ann = create(api, ANN)
    assert_ok(accept(api, BRIEF, "token", ann))
    assert_ok(accept(anonymous, OTHER_BRIEF, "email", EMAIL))
    assert_ok(withdraw(api, BRIEF, "email", EMAIL))
    agreement(api, ann)
    assert api.get(f"/v1/agreements/email/{EMAIL}").status_code == 200
    listed(api, ann)

    response = api.get(f"/v1/audit/list/{ann}?limit=100")

    assert response.status_code == 200, response.text
    titles = [(row["title"], row["status"]) for row in response.json()["rows"]]
    for title in (
        f"accept agreement for {BRIEF}",
        f"accept agreement for {OTHER_BRIEF}",
        f"withdraw agreement for {BRIEF}",
        f"get agreements for {BRIEF}",
        "get agreements for email",
        "get agreements for token",
    ):
        assert (title, "ok") in titles, titles
