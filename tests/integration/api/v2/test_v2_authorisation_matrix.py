"""Who may call each v2 operation: root, the person's own login token, another person's
token, no token, a garbage token, the root token of another tenant (acting in the person's
tenant, and in its own). A = root only; U = root or the person it concerns;
S = root, or the person for an application ``selfservice.app_record_change`` opens (as in
v1)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from databunker.api.v2 import OPERATIONS
from databunker.services.context import Context
from support.v2 import ANN, BOB, call, create, ok, other_tenant_root
from support.vaults import ROOT_TOKEN, VaultFactory, client_for, issue_user_token

State = dict[str, str]
Body = Callable[[State], dict[str, Any]]


def _mi(state: State) -> dict[str, Any]:
    return {"mode": "token", "identity": state["ann"]}


def _app(state: State, **fields: Any) -> dict[str, Any]:
    return {**_mi(state), "appname": "shop", **fields}


CASES: dict[str, tuple[str, Body]] = {
    "UserCreate": ("A", lambda s: {"profile": {"login": "carol"}}),
    "UserGet": ("U", _mi),
    "UserUpdate": ("A", lambda s: {**_mi(s), "profile": {"name": "x"}}),
    "UserPatch": ("A", lambda s: {**_mi(s), "patch": [{"op": "add", "path": "/x", "value": 1}]}),
    "UserDelete": ("A", _mi),
    "UserCreateBulk": ("A", lambda s: {"records": [{"profile": {"login": "dave"}}]}),
    "UserDeleteBulk": ("A", lambda s: {"users": [_mi(s)]}),
    "UserUpdateRequest": ("U", lambda s: {**_mi(s), "profile": {"name": "y"}}),
    "UserPatchRequest": (
        "U",
        lambda s: {**_mi(s), "patch": [{"op": "add", "path": "/y", "value": 2}]},
    ),
    "UserDeleteRequest": ("U", _mi),
    "UserRequestGet": ("U", lambda s: {"requestuuid": s["request"]}),
    "UserRequestListUserRequests": ("U", _mi),
    "UserRequestApprove": ("A", lambda s: {"requestuuid": s["request"]}),
    "UserRequestCancel": ("U", lambda s: {"requestuuid": s["request"]}),
    "AppdataCreate": ("U", lambda s: _app(s, appdata={"z": 1})),
    "AppdataGet": ("U", _app),
    "AppdataUpdate": ("A", lambda s: _app(s, appdata={"z": 2})),
    "AppdataUpdateRequest": ("U", lambda s: _app(s, appdata={"z": 3})),
    "AppdataDelete": ("S", _app),
    "AppdataListUserAppNames": ("U", _mi),
    "AppdataListAppNames": ("A", lambda s: {}),
}


# What another tenant's root gets in its own tenant where it is not 404 (the person, the
# request and the record named are of another tenant): what does not name them.
OWN_TENANT = {
    "UserCreate": 200,
    "UserCreateBulk": 200,
    "UserDeleteBulk": 200,  # nobody of that token in its tenant: nobody erased
    "AppdataListAppNames": 200,
}


def test_the_matrix_covers_every_operation_of_these_areas() -> None:
    assert set(CASES) <= set(OPERATIONS)
    login = {"UserPrelogin", "UserLogin"}  # public: in test_v2_more_authorisation_matrix.py
    ours = {name for name in OPERATIONS if name.startswith(("User", "Appdata"))} - login
    assert ours == set(CASES)


@pytest.mark.parametrize("operation", sorted(CASES))
def test_access(vault: Context, operation: str) -> None:
    level, body_of = CASES[operation]
    with client_for(vault, ROOT_TOKEN) as root:
        ann = create(root, ANN)
        bob = create(root, BOB)
        ok(
            root,
            "AppdataCreate",
            {"mode": "token", "identity": ann, "appname": "shop", "appdata": {}},
        )
        request = ok(
            root, "UserUpdateRequest", {"mode": "token", "identity": ann, "profile": {"a": 1}}
        )
        state = {"ann": ann, "request": request["requestuuid"]}
        body = body_of(state)
        tenant_root = other_tenant_root(root)
        for token in (None, "garbage", "DEMO", issue_user_token(vault, bob), tenant_root):
            with client_for(vault, token) as stranger:
                response = call(stranger, operation, body)
                assert response.status_code == 403, (token, response.text)
                assert response.json() == {"status": "error", "message": "Access denied"}
        # In its own tenant, another tenant's root reaches nothing of this one.
        with client_for(vault, tenant_root) as elsewhere:
            response = call(elsewhere, operation, body, **{"X-Bunker-Tenant": "acme"})
        assert response.status_code == OWN_TENANT.get(operation, 404), response.text
        assert ann not in response.text
        assert ok(root, "UserGet", {"mode": "token", "identity": ann})["profile"] == ANN
        kept = ok(root, "AppdataGet", {"mode": "token", "identity": ann, "appname": "shop"})
        assert kept["appdata"] == {}
        pending = ok(root, "UserRequestGet", {"requestuuid": state["request"]})["request"]
        assert pending["status"] == "open"
        with client_for(vault, issue_user_token(vault, ann)) as own:
            response = call(own, operation, body)
        if level == "A":
            assert response.status_code == 403, response.text
            assert response.json() == {"status": "error", "message": "Access denied"}
        elif level == "S":
            assert response.status_code == 403, response.text
            assert response.json()["message"] == (
                "This app record can be deleted only by an administrator"
            )
        else:
            assert response.status_code == 200, response.text
        response = call(root, operation, body)
        assert response.status_code != 403, response.text
        assert response.status_code < 500, response.text


def test_a_person_deletes_a_self_service_apps_record(make_vault: VaultFactory) -> None:
    vault = make_vault(selfservice={"app_record_change": ["shop"]})
    with client_for(vault, ROOT_TOKEN) as root:
        ann = create(root, ANN)
        body = {"mode": "token", "identity": ann, "appname": "shop"}
        ok(root, "AppdataCreate", {**body, "appdata": {"a": 1}})
    with client_for(vault, issue_user_token(vault, ann)) as own:
        assert ok(own, "AppdataDelete", body) == {"status": "ok"}
        assert call(own, "AppdataGet", body).status_code == 404
