"""Data portability over HTTP: ``GET /v1/export/{mode}/{identity}`` returns everything stored
about one person, decrypted, to root or to the person's own token."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from databunker.services.context import Context
from support.vaults import client_for, issue_user_token
from support.vaults import create_user as create

ANN = {"login": "ann", "email": "ann@example.com", "name": "Ann"}
BOB = {"login": "bob", "email": "bob@example.com", "name": "Bob"}
ACCESS_DENIED = {"status": "error", "message": "access denied"}
SESSION = "5b0c7e52-1d3a-4c8e-9f6b-2a7d4e8c0b13"
BRIEF = "core-send-email-on-login"


@pytest.fixture
def people(api: TestClient) -> tuple[str, str]:
    return create(api, ANN), create(api, BOB)


@pytest.fixture
def as_ann(vault: Context, people: tuple[str, str]) -> Iterator[TestClient]:
    with client_for(vault, issue_user_token(vault, people[0])) as client:
        yield client


def test_the_export_holds_everything_about_the_person(
    api: TestClient, as_ann: TestClient, people: tuple[str, str]
) -> None:
    ann, bob = people
    assert api.post(f"/v1/userapp/token/{ann}/shop", json={"cart": ["A-1"]}).status_code == 200
    assert api.post(f"/v1/userapp/token/{bob}/shop", json={"cart": ["B-9"]}).status_code == 200
    assert api.post(f"/v1/session/{SESSION}", json={"login": "ann", "page": 3}).status_code == 200
    assert api.post(f"/v1/agreement/{BRIEF}/token/{ann}").status_code == 200
    request = as_ann.put(f"/v1/user/token/{ann}", json={"name": "Annie"}).json()

    response = as_ann.get(f"/v1/export/email/{ANN['email']}")

    assert response.status_code == 200, response.text
    export = response.json()
    assert export["status"] == "ok"
    assert export["token"] == ann
    assert export["profile"] == ANN
    assert export["apps"] == {"shop": {"cart": ["A-1"]}}
    assert [(a["brief"], a["status"]) for a in export["agreements"]] == [(BRIEF, "yes")]
    assert [(s["session"], s["data"]) for s in export["sessions"]] == [
        (SESSION, {"login": "ann", "page": 3})
    ]
    [queued] = export["requests"]
    assert (queued["rtoken"], queued["action"], queued["status"]) == (
        request["rtoken"],
        "change-profile",
        "open",
    )
    assert queued["change"] == {"name": "Annie"}
    audit = api.get(f"/v1/audit/list/{ann}?limit=100").json()["rows"]
    # The trail as /v1/audit/list gives it, up to (not including) the export itself.
    assert export["audit"] == audit[1:]
    assert audit[0]["title"] == "export user data by email"
    assert "B-9" not in response.text
    assert "bob" not in response.text


def test_root_exports_anyone_and_an_empty_person_has_empty_lists(
    api: TestClient, people: tuple[str, str]
) -> None:
    _ann, bob = people

    export = api.get(f"/v1/export/login/{BOB['login']}").json()

    assert export["token"] == bob
    assert export["profile"] == BOB
    assert (export["apps"], export["agreements"], export["sessions"], export["requests"]) == (
        {},
        [],
        [],
        [],
    )
    assert [row["title"] for row in export["audit"]] == ["create user record"]


def test_an_erased_person_exports_nothing_personal(
    api: TestClient, people: tuple[str, str]
) -> None:
    ann, _bob = people
    assert api.post(f"/v1/userapp/token/{ann}/shop", json={"cart": ["A-1"]}).status_code == 200
    assert api.delete(f"/v1/user/token/{ann}").status_code == 200

    export = api.get(f"/v1/export/token/{ann}").json()

    assert (export["profile"], export["apps"], export["sessions"]) == ({}, {}, [])
    assert "ann@example.com" not in str(export)


def test_only_root_and_the_person_may_export(
    vault: Context, anonymous: TestClient, api: TestClient, people: tuple[str, str]
) -> None:
    ann, bob = people
    with client_for(vault, issue_user_token(vault, bob)) as as_bob:
        for client, path in (
            (as_bob, f"/v1/export/token/{ann}"),
            (as_bob, "/v1/export/email/nobody@example.com"),
            (anonymous, f"/v1/export/token/{ann}"),
        ):
            response = client.get(path)
            assert (response.status_code, response.json()) == (403, ACCESS_DENIED)
    missing = api.get("/v1/export/email/nobody@example.com")
    assert (missing.status_code, missing.json()) == (
        404,
        {"status": "error", "message": "not found"},
    )
