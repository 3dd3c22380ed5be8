"""Who may call the consent, session, shared-record, audit, login, bulk and system
operations: root, the person's own login token, another person's token, no token, a garbage
token, the root token of another tenant (acting in the person's tenant, and in its own).
A = root only; U = root or the person it concerns; P = public (every caller gets the same
answer)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from databunker.api.v2 import OPERATIONS, audit, bulk, consent, login, sessions, sharing, system
from databunker.services.context import Context
from support.v2 import ANN, BOB, call, create, ok, other_tenant_root
from support.vaults import ROOT_TOKEN, VaultFactory, client_for, issue_user_token

State = dict[str, str]
Body = Callable[[State], dict[str, Any]]
SESSION = "5b7f3a1e-0000-4000-8000-0000000000a1"


def _mi(state: State, **fields: Any) -> dict[str, Any]:
    return {"mode": "token", "identity": state["ann"], **fields}


def _unlocked(state: State, **fields: Any) -> dict[str, Any]:
    return {"unlockuuid": state["unlock"], **fields}


CASES: dict[str, tuple[str, Body]] = {
    "LegalBasisCreate": ("A", lambda s: {"brief": "other"}),
    "LegalBasisUpdate": ("A", lambda s: {"brief": "news", "shortdesc": "x"}),
    "LegalBasisDelete": ("A", lambda s: {"brief": "news"}),
    "LegalBasisListAgreements": ("A", lambda s: {}),
    "AgreementAccept": ("U", lambda s: _mi(s, brief="news")),
    "AgreementGet": ("U", lambda s: _mi(s, brief="news")),
    "AgreementListUserAgreements": ("U", _mi),
    "AgreementCancel": ("A", lambda s: _mi(s, brief="news")),
    "AgreementCancelRequest": ("U", lambda s: _mi(s, brief="news")),
    "AgreementRevokeAll": ("A", lambda s: {"brief": "news"}),
    "ProcessingActivityCreate": ("A", lambda s: {"activity": "other"}),
    "ProcessingActivityUpdate": ("A", lambda s: {"activity": "mailing", "title": "x"}),
    "ProcessingActivityDelete": ("A", lambda s: {"activity": "mailing"}),
    "ProcessingActivityLinkLegalBasis": ("A", lambda s: {"activity": "mailing", "brief": "news"}),
    "ProcessingActivityUnlinkLegalBasis": (
        "A",
        lambda s: {"activity": "mailing", "brief": "news"},
    ),
    "ProcessingActivityListActivities": ("A", lambda s: {}),
    "SessionUpsert": ("A", lambda s: {"sessionuuid": SESSION, "sessiondata": {"token": s["ann"]}}),
    "SessionGet": ("U", lambda s: {"sessionuuid": SESSION}),
    "SessionDelete": ("A", lambda s: {"sessionuuid": SESSION}),
    "SessionListUserSessions": ("U", _mi),
    "SharedRecordCreate": ("U", lambda s: _mi(s, fields="name")),
    "SharedRecordGet": ("P", lambda s: {"recorduuid": s["record"]}),
    "AuditListUserEvents": ("U", _mi),
    "AuditGetEvent": ("U", lambda s: {"auditeventuuid": s["event"]}),
    "CaptchaCreate": ("P", lambda s: {}),
    "UserPrelogin": (
        "P",
        lambda s: {"mode": "email", "identity": ANN["email"], "code": "1", "captchacode": "x"},
    ),
    "UserLogin": ("P", lambda s: {"mode": "email", "identity": ANN["email"], "smscode": "1"}),
    "XTokenCreateForUser": ("A", _mi),
    "BulkListUnlock": ("A", lambda s: {}),
    "BulkListUsers": ("A", lambda s: _unlocked(s, users=[{"mode": "login", "identity": "ann"}])),
    "BulkListAllUsers": ("A", _unlocked),
    "BulkListAllUserRequests": ("A", _unlocked),
    "BulkListAllAuditEvents": ("A", _unlocked),
    "SystemGetSystemStats": ("A", lambda s: {}),
    "SystemGetUserReport": ("U", _mi),
    "SystemGetUserHTMLReport": ("U", _mi),
}


def test_the_matrix_covers_every_operation_of_these_areas() -> None:
    ours = {
        operation.name
        for area in (consent, sessions, sharing, audit, login, bulk, system)
        for operation in area.OPERATIONS
    }
    assert ours == set(CASES)
    assert ours <= set(OPERATIONS)


def _state(root: TestClient) -> State:
    ann = create(root, ANN)
    create(root, BOB)
    ok(root, "LegalBasisCreate", {"brief": "news"})
    ok(root, "ProcessingActivityCreate", {"activity": "mailing"})
    ok(root, "AgreementAccept", {"mode": "token", "identity": ann, "brief": "news"})
    ok(root, "SessionUpsert", {"sessionuuid": SESSION, "sessiondata": {"token": ann}})
    record = ok(root, "SharedRecordCreate", {"mode": "token", "identity": ann})["recorduuid"]
    event = ok(root, "AuditListUserEvents", {"mode": "token", "identity": ann})["rows"][0]
    return {
        "ann": ann,
        "record": record,
        "event": event["auditeventuuid"],
        "unlock": ok(root, "BulkListUnlock")["unlockuuid"],
    }


# What another tenant's root gets in its own tenant where it is not 404 (the person, basis,
# activity, session, record or event named are of another tenant).
OWN_TENANT = {
    "LegalBasisCreate": 200,
    "LegalBasisListAgreements": 200,
    "ProcessingActivityCreate": 200,
    "ProcessingActivityListActivities": 200,
    "BulkListUnlock": 200,
    "SystemGetSystemStats": 200,
    # its own session, under the same id; the token inside links it to nobody there
    "SessionUpsert": 200,
    # the unlock id is of another tenant
    "BulkListUsers": 403,
    "BulkListAllUsers": 403,
    "BulkListAllUserRequests": 403,
    "BulkListAllAuditEvents": 403,
}


def _unchanged(root: TestClient, state: State) -> None:
    person = {"mode": "token", "identity": state["ann"]}
    assert ok(root, "UserGet", person)["profile"] == ANN
    assert ok(root, "AgreementGet", {**person, "brief": "news"})["status"] == "ok"
    assert ok(root, "SessionGet", {"sessionuuid": SESSION})["sessiondata"] == {
        "token": state["ann"]
    }
    assert ok(root, "SessionListUserSessions", person)["total"] == 1
    activities = ok(root, "ProcessingActivityListActivities", {})["rows"]
    assert [row["activity"] for row in activities] == ["mailing"]


@pytest.mark.parametrize("operation", sorted(CASES))
def test_access(make_vault: VaultFactory, operation: str) -> None:
    vault: Context = make_vault(generic={"list_users": True})
    level, body_of = CASES[operation]
    with client_for(vault, ROOT_TOKEN) as root:
        state = _state(root)
        body = body_of(state)
        bob = ok(root, "UserGet", {"mode": "login", "identity": "bob"})["token"]
        tenant_root = other_tenant_root(root)
        strangers = (None, "garbage", "DEMO", issue_user_token(vault, bob), tenant_root)
        if level == "P":
            answers = set()
            for token in (*strangers, issue_user_token(vault, state["ann"]), ROOT_TOKEN):
                with client_for(vault, token) as caller:
                    response = call(caller, operation, body)
                assert response.status_code < 500, response.text
                answers.add(response.status_code)
            assert len(answers) == 1, answers
            return
        for token in strangers:
            with client_for(vault, token) as stranger:
                response = call(stranger, operation, body)
                assert response.status_code == 403, (token, response.text)
                assert response.json() == {"status": "error", "message": "Access denied"}
        # In its own tenant, another tenant's root reaches nothing of this one.
        with client_for(vault, tenant_root) as elsewhere:
            response = call(elsewhere, operation, body, **{"X-Bunker-Tenant": "acme"})
        assert response.status_code == OWN_TENANT.get(operation, 404), response.text
        assert state["ann"] not in response.text
        _unchanged(root, state)
        with client_for(vault, issue_user_token(vault, state["ann"])) as own:
            response = call(own, operation, body)
        if level == "A":
            assert response.status_code == 403, response.text
            assert response.json() == {"status": "error", "message": "Access denied"}
        else:
            assert response.status_code == 200, response.text
        response = call(root, operation, body)
        assert response.status_code == 200, response.text
