"""Every attempt on a person's record is in that person's audit trail, failed and denied
ones included, with the identity it named (``who``), as the original Databunker files them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from starlette.testclient import TestClient

from databunker.services.context import Context
from support.vaults import client_for, create_user

PHONE = "+447700900123"


def _trail(api: TestClient, token: str) -> list[dict[str, object]]:
    body = api.get(f"/v1/audit/list/{token}?limit=100").json()
    assert body["status"] == "ok"
    rows: list[dict[str, object]] = body["rows"]
    assert body["total"] == len(rows)
    return rows


def test_failed_changes_are_filed_under_the_person(api: TestClient) -> None:
    ann = create_user(api, {"login": "ann", "phone": PHONE})
    empty = api.put(f"/v1/user/phone/{PHONE}", content=b"")
    assert (empty.status_code, empty.json()["message"]) == (400, "empty request body")
    form = api.put(f"/v1/user/phone/{PHONE}", content=b"a=b")
    assert (form.status_code, form.json()["message"]) == (400, "empty request body")
    broken = api.put(
        f"/v1/user/phone/{PHONE}", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert (broken.status_code, broken.json()["status"]) == (400, "error")

    rows = _trail(api, ann)
    assert [(row["title"], row["status"]) for row in reversed(rows)] == [
        ("create user record", "ok"),
        *[("change user record by phone", "error")] * 3,
    ]
    assert {row["who"] for row in rows[:3]} == {PHONE}
    assert {row["mode"] for row in rows[:3]} == {"phone"}


@pytest.mark.parametrize(
    "credential", [None, "not-a-token", "00000000-0000-4000-8000-000000000000"]
)
def test_a_denied_request_naming_the_person_is_filed_under_them(
    api: TestClient, vault: Context, credential: str | None
) -> None:
    ann = create_user(api, {"login": "ann"})
    with client_for(vault, credential) as stranger:
        denied = stranger.get(f"/v1/user/token/{ann}")
        missing = stranger.get("/v1/user/token/6b9c3a57-2d1e-4f80-9a6b-0c1d2e3f4a5b")
    # The caller learns nothing: the same answer for a person and for nobody.
    assert denied.status_code == missing.status_code == 403
    assert denied.json() == missing.json() == {"status": "error", "message": "access denied"}

    [row] = [r for r in _trail(api, ann) if r["title"] == "get user record by token"]
    assert (row["status"], row["who"], row["mode"]) == ("error", ann, "token")
    assert "identity" not in row or row["identity"] != "root"


def test_another_persons_token_is_filed_under_the_person_named(
    api: TestClient, user_client: Callable[[str], TestClient]
) -> None:
    ann = create_user(api, {"login": "ann"})
    bob = create_user(api, {"login": "bob"})
    as_bob = user_client(bob)
    assert as_bob.get(f"/v1/user/token/{ann}").status_code == 403
    assert as_bob.get(f"/v1/userapp/token/{ann}/shop").status_code == 403
    titles = [(r["title"], r["status"], r.get("who")) for r in _trail(api, ann)]
    assert ("get user record by token", "error", ann) in titles
    assert ("get user app record by token", "error", ann) in titles
    assert [r["title"] for r in _trail(api, bob)] == ["create user record"]


def test_token_mode_events_and_agreements_carry_who(api: TestClient) -> None:
    basis = {"module": "signup-page", "basistype": "consent", "usercontrol": True}
    assert api.post("/v1/lbasis/send-email-mailing-list", json=basis).status_code == 200
    ann = create_user(api, {"login": "ann", "email": "ann@example.com"})
    assert api.get(f"/v1/user/token/{ann}").status_code == 200
    accepted = api.post(f"/v1/agreement/send-email-mailing-list/token/{ann}", json={})
    assert accepted.status_code == 200, accepted.text
    rows = _trail(api, ann)
    by_title = {row["title"]: row for row in rows}
    assert by_title["get user record by token"]["who"] == ann
    assert by_title["accept agreement for send-email-mailing-list"]["who"] == ann

    [agreement] = api.get(f"/v1/agreements/token/{ann}").json()["rows"]
    assert (agreement["who"], agreement["mode"]) == (ann, "token")
    # A later change by email keeps the identity of that change.
    api.delete("/v1/agreement/send-email-mailing-list/email/ann@example.com")
    [agreement] = api.get(f"/v1/agreements/token/{ann}").json()["rows"]
    assert (agreement["who"], agreement["mode"], agreement["status"]) == (
        "ann@example.com",
        "email",
        "no",
    )


def test_an_erased_persons_failed_attempts_keep_no_identity(api: TestClient) -> None:
    ann = create_user(api, {"login": "ann"})
    assert api.delete(f"/v1/user/token/{ann}").status_code == 200
    assert api.put(f"/v1/user/token/{ann}", content=b"").status_code in (400, 404)
    rows = [r for r in _trail(api, ann) if r["title"] == "change user record by token"]
    assert [row["status"] for row in rows] == ["error"]
    assert rows[0].get("who") in (None, "")
