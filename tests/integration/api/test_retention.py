"""Data retention over HTTP: ``/v1/exp/start|status|cancel/{mode}/{identity}``, the anonymous
``/v1/exp/retain/{exptoken}`` and ``/v1/exp/delete/{exptoken}`` links, and the expiry job.

Every assertion is about what a client observes: status, body, follow-up reads, the audit
trail, queued notifications and what the database holds.
"""

from __future__ import annotations

import re
import threading
import uuid
from contextlib import closing
from typing import Any

import pytest
import sqlalchemy as sa
from httpx2 import Response
from starlette.testclient import TestClient

from databunker.jobs import registered_jobs, run_jobs
from databunker.services.context import Context
from databunker.storage.outbox import open_payload
from support.vaults import Clock, client_for, create_user, issue_user_token

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ACCESS_DENIED = {"status": "error", "message": "access denied"}
NOT_FOUND = {"status": "error", "message": "not found"}
DONE = {"status": "ok", "result": "done"}
EXPIRE = "expire users"
MONTH = 31 * 86400
ANN: dict[str, Any] = {"email": "ann@example.com", "name": "Ann"}
BOB: dict[str, Any] = {"email": "bob@example.com", "name": "Bob"}
ROOT_STARTED = "a retention started by an administrator can only be cancelled by an administrator"


# -- helpers ---------------------------------------------------------------------------------


def start(client: TestClient, token: str, body: dict[str, Any] | None = None) -> Response:
    return client.post(f"/v1/exp/start/token/{token}", json=body)


def start_ok(client: TestClient, token: str, body: dict[str, Any] | None = None) -> str:
    response = start(client, token, body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer == {"status": "ok", "exptoken": answer["exptoken"]}
    assert UUID.match(answer["exptoken"])
    return str(answer["exptoken"])


def status_of(client: TestClient, token: str) -> dict[str, Any]:
    response = client.get(f"/v1/exp/status/token/{token}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def expire_users(vault: Context) -> int:
    """One round of the server's registered expiry job (and of no other job)."""
    [job] = [job for job in registered_jobs() if job.name == EXPIRE]
    return run_jobs(vault, [job])[EXPIRE]


def assert_error(response: Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"status": "error", "message": message}


def assert_erased(api: TestClient, token: str, email: str) -> None:
    assert api.get(f"/v1/user/token/{token}").json() == {"status": "ok", "token": token, "data": {}}
    assert_error(api.get(f"/v1/user/email/{email}"), 404, "not found")


def assert_intact(api: TestClient, token: str, profile: dict[str, Any]) -> None:
    assert api.get(f"/v1/user/email/{profile['email']}").json() == {
        "status": "ok",
        "token": token,
        "data": profile,
    }


def forgotten(vault: Context) -> list[str]:
    """The people named by queued ``forgetme`` webhooks."""
    key = vault.keyring.service_key("outbox")
    with vault.database.transaction() as conn:
        rows = conn.execute(sa.text("SELECT id, payload FROM outbox ORDER BY id")).all()
    payloads = [open_payload(key, row.id, bytes(row.payload)) for row in rows]
    return [p["identity"] for p in payloads if p.get("action") == "forgetme"]


# Webhooks configured, so erasures queue ``forgetme`` notifications. Vaults with them are
# driven by clients that do not start the server's lifespan: no dispatcher runs, and every
# queued notification stays in the outbox to be inspected.
WEBHOOKS = {"notification": {"notification_url": "http://127.0.0.1:9/hook"}}


def without_lifespan(vault: Context) -> closing[TestClient]:
    return closing(client_for(vault))


# -- start and status ------------------------------------------------------------------------
def test_root_starts_a_retention_and_the_status_shows_it_without_the_token(
    api: TestClient, clock: Clock, vault: Context
) -> None:
    token = create_user(api, ANN)
    assert status_of(api, token) == {"status": "ok", "exptime": 0, "expstatus": ""}

    exptoken = start_ok(api, token, {"expiration": "10d"})

    expected = {"status": "ok", "exptime": clock.now + 10 * 86400, "expstatus": "wait"}
    assert status_of(api, token) == expected
    with client_for(vault, issue_user_token(vault, token)) as own:
        assert status_of(own, token) == expected
    assert exptoken not in api.get(f"/v1/exp/status/email/{ANN['email']}").text


def test_the_expiration_is_capped_by_the_policy_and_defaults_to_it(
    make_vault: Any, clock: Clock
) -> None:
    vault = make_vault(policy={"max_user_retention_period": "2d"})
    with client_for(vault) as api:
        first = create_user(api, ANN)
        second = create_user(api, BOB)
        start_ok(api, first, {"expiration": "1m"})
        start_ok(api, second)

        assert status_of(api, first)["exptime"] == clock.now + 2 * 86400
        assert status_of(api, second)["exptime"] == clock.now + 2 * 86400


def test_the_default_maximum_is_one_month_of_31_days(api: TestClient, clock: Clock) -> None:
    token = create_user(api, ANN)
    start_ok(api, token, {"expiration": "12m"})
    assert status_of(api, token)["exptime"] == clock.now + MONTH


def test_a_custom_status_is_stored_and_a_form_body_accepted(api: TestClient) -> None:
    token = create_user(api, ANN)
    response = api.post(
        f"/v1/exp/start/email/{ANN['email']}",
        content="status=Notify&expiration=1h",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200, response.text
    assert status_of(api, token)["expstatus"] == "notify"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"status": 1}, "bad status"),
        ({"status": "wait and see"}, "bad status"),
        ({"status": "x" * 17}, "bad status"),
        ({"expiration": "later"}, "bad expiration"),
    ],
)
def test_bad_values_are_rejected(api: TestClient, body: dict[str, Any], message: str) -> None:
    token = create_user(api, ANN)
    assert_error(start(api, token, body), 400, message)
    assert status_of(api, token) == {"status": "ok", "exptime": 0, "expstatus": ""}


def test_a_user_token_cannot_start_a_retention(api: TestClient, vault: Context) -> None:
    token = create_user(api, ANN)
    with client_for(vault, issue_user_token(vault, token)) as own:
        response = start(own, token, {"expiration": "1h"})
    assert (response.status_code, response.json()) == (403, ACCESS_DENIED)
    assert status_of(api, token)["expstatus"] == ""


def test_missing_people_and_bad_addresses(api: TestClient) -> None:
    missing = str(uuid.uuid4())
    assert_error(start(api, missing), 404, "not found")
    assert_error(api.get(f"/v1/exp/status/token/{missing}"), 404, "not found")
    assert_error(api.delete("/v1/exp/cancel/email/nobody@example.com"), 404, "not found")
    assert_error(api.get("/v1/exp/status/token/not-a-uuid"), 400, "bad uuid")
    assert_error(api.post("/v1/exp/start/size/7"), 400, "bad mode")


def test_a_retention_cannot_start_for_an_erased_person(api: TestClient) -> None:
    token = create_user(api, ANN)
    assert api.delete(f"/v1/user/token/{token}").status_code == 200
    assert_error(start(api, token), 404, "user record not found")


# -- cancel ----------------------------------------------------------------------------------
def test_root_cancels_a_retention_and_its_links_stop_working(
    api: TestClient, anonymous: TestClient
) -> None:
    token = create_user(api, ANN)
    exptoken = start_ok(api, token)

    response = api.delete(f"/v1/exp/cancel/token/{token}")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    assert status_of(api, token) == {"status": "ok", "exptime": 0, "expstatus": ""}
    assert_error(anonymous.get(f"/v1/exp/delete/{exptoken}"), 404, "not found")
    assert_error(anonymous.get(f"/v1/exp/retain/{exptoken}"), 404, "not found")
    assert_intact(api, token, ANN)


def test_the_person_cannot_cancel_a_retention_root_started(api: TestClient, vault: Context) -> None:
    token = create_user(api, ANN)
    with client_for(vault, issue_user_token(vault, token)) as own:
        nothing_started = own.delete(f"/v1/exp/cancel/token/{token}")
        assert (nothing_started.status_code, nothing_started.json()) == (200, {"status": "ok"})

        start_ok(api, token, {"expiration": "1h"})
        assert_error(own.delete(f"/v1/exp/cancel/token/{token}"), 403, ROOT_STARTED)

    assert status_of(api, token)["expstatus"] == "wait"


def test_a_new_start_replaces_the_previous_token(api: TestClient, anonymous: TestClient) -> None:
    token = create_user(api, ANN)
    first = start_ok(api, token)
    second = start_ok(api, token)

    assert_error(anonymous.get(f"/v1/exp/retain/{first}"), 404, "not found")
    assert anonymous.get(f"/v1/exp/retain/{second}").json() == DONE


# -- the anonymous links ---------------------------------------------------------------------
def test_the_retain_link_keeps_the_data_once(make_vault: Any, clock: Clock) -> None:
    vault = make_vault()
    with client_for(vault) as api, client_for(vault, None) as anonymous:
        token = create_user(api, ANN)
        exptoken = start_ok(api, token, {"expiration": "1h"})

        response = anonymous.get(f"/v1/exp/retain/{exptoken.upper()}")

        assert (response.status_code, response.json()) == (200, DONE)
        assert status_of(api, token) == {"status": "ok", "exptime": 0, "expstatus": "retain"}
        assert_error(anonymous.get(f"/v1/exp/retain/{exptoken}"), 404, "not found")
        assert_error(anonymous.get(f"/v1/exp/delete/{exptoken}"), 404, "not found")
        clock.advance(7200)
        assert expire_users(vault) == 0
        assert_intact(api, token, ANN)


def test_the_delete_link_erases_the_person_at_once_and_only_once(make_vault: Any) -> None:
    vault = make_vault(**WEBHOOKS)
    with without_lifespan(vault) as api, closing(client_for(vault, None)) as anonymous:
        token = create_user(api, ANN)
        bob = create_user(api, BOB)
        assert api.post(f"/v1/userapp/token/{token}/shop", json={"card": "4242"}).status_code == 200
        exptoken = start_ok(api, token, {"expiration": "1h"})
        start_ok(api, bob, {"expiration": "1h"})

        response = anonymous.get(f"/v1/exp/delete/{exptoken}")

        assert (response.status_code, response.json()) == (200, DONE)
        assert_erased(api, token, ANN["email"])
        assert_error(api.get(f"/v1/userapp/token/{token}/shop"), 404, "not found")
        assert status_of(api, token)["expstatus"] == "expired"
        assert forgotten(vault) == [token]
        assert_error(anonymous.get(f"/v1/exp/delete/{exptoken}"), 404, "not found")
        assert_error(anonymous.get(f"/v1/exp/retain/{exptoken}"), 404, "not found")
        assert forgotten(vault) == [token]
        assert_intact(api, bob, BOB)


def test_links_reject_bad_and_unknown_tokens(anonymous: TestClient) -> None:
    for link in ("retain", "delete"):
        assert_error(anonymous.get(f"/v1/exp/{link}/not-a-uuid"), 400, "bad uuid")
        assert_error(anonymous.get(f"/v1/exp/{link}/{uuid.uuid4()}"), 404, "not found")


def test_the_delete_link_of_an_already_erased_person_only_marks_them_expired(
    api: TestClient, anonymous: TestClient
) -> None:
    token = create_user(api, ANN)
    exptoken = start_ok(api, token)
    assert api.delete(f"/v1/user/token/{token}").status_code == 200

    assert anonymous.get(f"/v1/exp/delete/{exptoken}").json() == DONE
    assert status_of(api, token)["expstatus"] == "expired"
    assert_erased(api, token, ANN["email"])


# -- the expiry job --------------------------------------------------------------------------
def test_the_expiry_job_erases_exactly_the_people_who_are_due(
    make_vault: Any, clock: Clock
) -> None:
    vault = make_vault(**WEBHOOKS)
    with without_lifespan(vault) as api:
        soon = create_user(api, {"email": "soon@example.com", "name": "Soon"})
        later = create_user(api, {"email": "later@example.com", "name": "Later"})
        custom = create_user(api, {"email": "custom@example.com", "name": "Custom"})
        kept = create_user(api, {"email": "kept@example.com", "name": "Kept"})
        untouched = create_user(api, {"email": "none@example.com", "name": "None"})
        start_ok(api, soon, {"expiration": "1h"})
        start_ok(api, later, {"expiration": "2h"})
        start_ok(api, custom, {"expiration": "1h", "status": "notify"})
        start_ok(api, kept, {"expiration": "1h"})
        api.delete(f"/v1/exp/cancel/token/{kept}")

        clock.advance(3599)
        assert expire_users(vault) == 0
        clock.advance(1)
        assert expire_users(vault) == 1

        assert_erased(api, soon, "soon@example.com")
        assert status_of(api, soon)["expstatus"] == "expired"
        assert forgotten(vault) == [soon]
        assert_intact(api, later, {"email": "later@example.com", "name": "Later"})
        assert_intact(api, custom, {"email": "custom@example.com", "name": "Custom"})
        assert_intact(api, kept, {"email": "kept@example.com", "name": "Kept"})
        assert_intact(api, untouched, {"email": "none@example.com", "name": "None"})
        assert expire_users(vault) == 0

        clock.advance(3600)
        assert expire_users(vault) == 1
        assert_erased(api, later, "later@example.com")
        assert forgotten(vault) == [soon, later]
        assert status_of(api, custom)["expstatus"] == "notify"


def test_servers_running_the_job_at_once_erase_each_person_once(
    make_vault: Any, clock: Clock
) -> None:
    first, second = make_vault(**WEBHOOKS), make_vault(**WEBHOOKS)
    with without_lifespan(first) as api:
        people = [create_user(api, {"email": f"p{i}@example.com"}) for i in range(12)]
        for token in people:
            start_ok(api, token, {"expiration": "1h"})
    clock.advance(3600)
    barrier = threading.Barrier(2)
    handled: list[int] = []

    def run(vault: Context) -> None:
        barrier.wait()
        handled.append(expire_users(vault))

    threads = [threading.Thread(target=run, args=(v,)) for v in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(handled) == len(people), handled
    assert sorted(forgotten(first)) == sorted(people)
    with without_lifespan(first) as api:
        for token in people:
            assert status_of(api, token)["expstatus"] == "expired"


# -- audit and secrecy -----------------------------------------------------------------------
def test_every_operation_is_audited_under_the_person_without_the_token(
    api: TestClient, anonymous: TestClient
) -> None:
    token = create_user(api, ANN)
    retained = start_ok(api, token, {"expiration": "1h"})
    status_of(api, token)
    assert anonymous.get(f"/v1/exp/retain/{retained}").status_code == 200
    api.delete(f"/v1/exp/cancel/email/{ANN['email']}")
    deleted = start_ok(api, token)
    assert anonymous.get(f"/v1/exp/delete/{deleted}").status_code == 200

    trail = api.get(f"/v1/audit/list/{token}?limit=100")
    titles = [(row["title"], row["status"]) for row in reversed(trail.json()["rows"])]
    assert titles[1:] == [
        ("initiate user record expiration by token", "ok"),
        ("get expiration status by token", "ok"),
        ("retain user data by exptoken", "ok"),
        ("clear user expiration by email", "ok"),
        ("initiate user record expiration by token", "ok"),
        ("delete user data by exptoken", "ok"),
    ]
    admin = api.get("/v1/audit/admin?limit=100").text
    assert retained not in admin
    assert deleted not in admin


def test_the_exptoken_is_stored_only_as_a_keyed_hash(api: TestClient, vault: Context) -> None:
    token = create_user(api, ANN)
    exptoken = start_ok(api, token)

    with vault.database.transaction() as conn:
        row = conn.execute(
            sa.text(
                "SELECT exp_token_hash, exp_status, exp_started_by FROM users WHERE token = :t"
            ),
            {"t": token},
        ).one()
    assert exptoken.encode() not in bytes(row.exp_token_hash)
    assert uuid.UUID(exptoken).bytes not in bytes(row.exp_token_hash)
    assert (row.exp_status, row.exp_started_by) == ("wait", "root")
