"""v2 tenants: their operations, and the isolation of one tenant's people from another's,
on every database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from httpx2 import Response
from starlette.testclient import TestClient

from databunker.api.v2 import OPERATIONS
from databunker.jobs import run_jobs
from databunker.services.context import Context
from databunker.services.identity import lookup_index
from databunker.storage import audit_chain
from databunker.storage.tables import access_tokens, audit, users
from support.v2 import ANN, BOB, assert_error, call, create, ok
from support.vaults import Clock, VaultFactory, client_for, issue_user_token

NOT_FOUND = "The user record was not found"


@pytest.fixture
def root(vault: Context) -> Iterator[TestClient]:
    with client_for(vault) as client:
        yield client


def _in(
    client: TestClient, tenant: str, operation: str, body: Any = None, **headers: str
) -> Response:
    return call(client, operation, body, **{"X-Bunker-Tenant": tenant, **headers})


def _ok_in(client: TestClient, tenant: str, operation: str, body: Any = None) -> dict[str, Any]:
    answer = _in(client, tenant, operation, body)
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    assert document["status"] == "ok"
    return document


def _tenant(root: TestClient, name: str, org: str = "Acme Ltd") -> tuple[int, str]:
    answer = ok(root, "TenantCreate", {"tenantname": name, "tenantorg": org, "email": None})
    assert isinstance(answer["tenantid"], int)
    assert answer["tenantid"] > 1
    assert isinstance(answer["xtoken"], str)
    return answer["tenantid"], answer["xtoken"]


def _as(vault: Context, token: str) -> TestClient:
    return client_for(vault, token)


def test_a_tenant_is_created_read_listed_and_renamed(root: TestClient, vault: Context) -> None:
    answer = ok(
        root,
        "TenantCreate",
        {"tenantname": "acme", "tenantorg": "Acme Ltd", "email": "DPO@Acme.example"},
    )
    tenantid, xtoken = answer["tenantid"], answer["xtoken"]
    assert ok(root, "TenantGet", {"tenantid": str(tenantid)}) == {
        "status": "ok",
        "tenantid": tenantid,
        "tenantname": "acme",
        "tenantorg": "Acme Ltd",
        "email": "dpo@acme.example",
    }
    listed = ok(root, "TenantListTenants", {"offset": 0, "limit": 10})
    assert listed["total"] == 2
    assert listed["rows"] == [
        {"tenantid": 1, "tenantname": "default", "tenantorg": ""},
        {"tenantid": tenantid, "tenantname": "acme", "tenantorg": "Acme Ltd"},
    ]
    with _as(vault, xtoken) as admin:
        # a tenant's root changes its own tenant (by default the one it acts in)
        _ok_in(admin, "acme", "TenantUpdate", {"tenantname": "acmecorp", "tenantorg": "Acme"})
        # the new name reaches it with the same token; the old name is no tenant
        assert _ok_in(admin, "acmecorp", "TenantGet", {"tenantid": tenantid})["tenantorg"] == "Acme"
        assert_error(_in(admin, "acme", "TenantGet", {"tenantid": tenantid}), 403, "Access denied")
    # the email is stored encrypted
    with vault.database.transaction() as conn:
        stored = conn.execute(sa.text("SELECT email FROM tenants WHERE id = :id"), {"id": tenantid})
        assert b"acme.example" not in bytes(stored.scalar_one())


def test_what_only_the_main_tenant_may_do(root: TestClient, vault: Context) -> None:
    acme, acme_token = _tenant(root, "acme")
    other, _ = _tenant(root, "globex")
    with _as(vault, acme_token) as admin:
        for operation, body, message in (
            ("TenantCreate", {"tenantname": "x", "tenantorg": "X"}, "create tenants"),
            ("TenantListTenants", {}, "list tenants"),
            ("TenantDelete", {"tenantid": other}, "delete tenants"),
            ("TenantGet", {"tenantid": other}, "read another tenant"),
            ("TenantUpdate", {"tenantid": other, "tenantorg": "mine"}, "change another tenant"),
        ):
            assert_error(
                _in(admin, "acme", operation, body),
                403,
                f"Only the main tenant admin can {message}",
            )
        assert _ok_in(admin, "acme", "TenantGet", {"tenantid": acme})["tenantname"] == "acme"
    assert ok(root, "TenantGet", {"tenantid": other})["tenantorg"] == "Acme Ltd"


def test_tenant_errors(root: TestClient) -> None:
    _tenant(root, "acme")
    assert_error(
        call(root, "TenantCreate", {"tenantname": "acme", "tenantorg": "Again"}),
        409,
        "Duplicate tenant name",
    )
    for name in ("Acme", "ac-me", "", "default", "a" * 65):
        assert_error(
            call(root, "TenantCreate", {"tenantname": name, "tenantorg": "X"}),
            400,
            "The tenantname parameter has an incorrect format",
        )
    assert_error(
        call(root, "TenantCreate", {"tenantorg": "X"}),
        400,
        "Missing API request parameters: tenantname",
    )
    assert_error(
        call(root, "TenantCreate", {"tenantname": "bad", "tenantorg": "X", "email": "no"}),
        400,
        "The email parameter has an incorrect format",
    )
    for tenantid in (0, -1, 2**40, "x7"):
        assert_error(
            call(root, "TenantGet", {"tenantid": tenantid}),
            400,
            "The tenantid parameter has an incorrect format",
        )
    assert_error(
        call(root, "TenantGet", {"tenantid": 9999}), 404, "The tenant record was not found"
    )
    assert_error(
        call(root, "TenantDelete", {"tenantid": 9999}), 404, "The tenant record was not found"
    )
    assert_error(
        call(root, "TenantDelete", {"tenantid": 1}), 403, "The default tenant cannot be deleted"
    )
    assert_error(
        call(root, "TenantUpdate", {"tenantid": 1, "tenantname": "main"}),
        400,
        "The default tenant keeps its name",
    )
    other, _ = _tenant(root, "globex")
    assert_error(
        call(root, "TenantUpdate", {"tenantid": other, "tenantname": "acme"}),
        409,
        "Duplicate tenant name",
    )


def test_the_same_person_in_two_tenants_is_two_people(root: TestClient, vault: Context) -> None:
    _, acme_token = _tenant(root, "acme")
    _, globex_token = _tenant(root, "globex")
    with _as(vault, acme_token) as acme, _as(vault, globex_token) as globex:
        in_acme = _ok_in(acme, "acme", "UserCreate", {"profile": ANN})["token"]
        in_globex = _ok_in(globex, "globex", "UserCreate", {"profile": {**ANN, "name": "G"}})[
            "token"
        ]
        in_default = create(root, ANN)
        assert len({in_acme, in_globex, in_default}) == 3
        by_email = {"mode": "email", "identity": ANN["email"]}
        assert _ok_in(acme, "acme", "UserGet", by_email)["token"] == in_acme
        assert _ok_in(globex, "globex", "UserGet", by_email)["profile"]["name"] == "G"
        assert ok(root, "UserGet", by_email)["token"] == in_default
        # a tenant's token acts in its tenant only: elsewhere it is no credential
        by_token = {"mode": "token", "identity": in_acme}
        assert_error(_in(acme, "globex", "UserGet", by_token), 403, "Access denied")
        assert_error(call(acme, "UserGet", by_token), 403, "Access denied")
        assert acme.get(f"/v1/user/token/{in_acme}").status_code == 403
        # another tenant's person is not found, even by the main tenant's root
        assert_error(_in(globex, "globex", "UserGet", by_token), 404, NOT_FOUND)
        assert_error(call(root, "UserGet", by_token), 404, NOT_FOUND)
        assert root.get(f"/v1/user/token/{in_acme}").status_code == 404
        # the main tenant's root acts in every tenant
        assert _ok_in(root, "acme", "UserGet", by_token)["profile"] == ANN
        # each tenant's audit trail is its own
        events = _ok_in(acme, "acme", "AuditListUserEvents", by_token)
        assert events["total"] >= 1
        assert_error(call(root, "AuditListUserEvents", by_token), 404, NOT_FOUND)


def test_every_area_keeps_to_its_tenant(root: TestClient, vault: Context) -> None:
    _, acme_token = _tenant(root, "acme")
    with _as(vault, acme_token) as acme:
        token = _ok_in(acme, "acme", "UserCreate", {"profile": BOB})["token"]
        person = {"mode": "token", "identity": token}
        _ok_in(acme, "acme", "AppdataCreate", {**person, "appname": "shop", "appdata": {"a": 1}})
        _ok_in(acme, "acme", "LegalBasisCreate", {"brief": "newsletter", "basistype": "consent"})
        _ok_in(acme, "acme", "AgreementAccept", {**person, "brief": "newsletter"})
        session = "6f1c1ad2-4b1d-4f8e-9d3e-2b8f5f0e9a10"
        _ok_in(acme, "acme", "SessionUpsert", {"sessionuuid": session, "sessiondata": {"x": 1}})
        assert _ok_in(acme, "acme", "AppdataListAppNames", {})["apps"] == ["shop"]
    assert ok(root, "AppdataListAppNames", {})["apps"] == []
    briefs = [row["brief"] for row in ok(root, "LegalBasisListAgreements", {})["rows"]]
    assert "newsletter" not in briefs
    assert_error(
        call(root, "SessionGet", {"sessionuuid": session}), 404, "The session record was not found"
    )
    assert _ok_in(root, "acme", "SessionGet", {"sessionuuid": session})["sessiondata"] == {"x": 1}
    # the same session id in the default tenant is another session
    ok(root, "SessionUpsert", {"sessionuuid": session, "sessiondata": {"y": 2}})
    assert _ok_in(root, "acme", "SessionGet", {"sessionuuid": session})["sessiondata"] == {"x": 1}


def test_an_unlock_id_opens_its_own_tenant_only(root: TestClient) -> None:
    _tenant(root, "acme")
    unlockuuid = ok(root, "BulkListUnlock")["unlockuuid"]
    assert_error(
        _in(root, "acme", "BulkListAllUserRequests", {"unlockuuid": unlockuuid}),
        403,
        "The unlockuuid value was not found or is not valid",
    )
    ok(root, "BulkListAllUserRequests", {"unlockuuid": unlockuuid})


def test_statistics_count_the_tenant_or_the_deployment(root: TestClient, vault: Context) -> None:
    _, acme_token = _tenant(root, "acme")
    create(root, ANN)
    with _as(vault, acme_token) as acme:
        for profile in (ANN, BOB):
            _ok_in(acme, "acme", "UserCreate", {"profile": profile})
        mine = _ok_in(acme, "acme", "SystemGetSystemStats")["stats"]
    assert (mine["numusers"], mine["numtenants"]) == (2, 1)
    everything = ok(root, "SystemGetSystemStats")["stats"]
    assert (everything["numusers"], everything["numtenants"]) == (3, 2)
    # the main root acting in a tenant sees that tenant's
    assert _ok_in(root, "acme", "SystemGetSystemStats")["stats"]["numusers"] == 2


def test_deleting_a_tenant_shreds_its_people_and_revokes_its_tokens(
    root: TestClient, vault: Context
) -> None:
    acme, acme_token = _tenant(root, "acme")
    with _as(vault, acme_token) as admin:
        token = _ok_in(admin, "acme", "UserCreate", {"profile": ANN})["token"]
        _ok_in(
            admin,
            "acme",
            "AppdataCreate",
            {"mode": "token", "identity": token, "appname": "notes", "appdata": {"k": 1}},
        )
    kept = create(root, BOB)
    ok(root, "TenantDelete", {"tenantid": str(acme)})
    with _as(vault, acme_token) as admin:
        assert_error(
            _in(admin, "acme", "UserGet", {"mode": "token", "identity": token}),
            403,
            "Access denied",
        )
    assert_error(
        call(root, "TenantGet", {"tenantid": acme}), 404, "The tenant record was not found"
    )
    with vault.database.transaction() as conn:
        row = conn.execute(
            sa.select(users.c.data_key, users.c.profile, users.c.email_idx, users.c.erased).where(
                users.c.token == token
            )
        ).one()
        assert (row.data_key, row.profile, row.email_idx) == (None, None, None)
        assert row.erased is not None
        tokens_left = conn.execute(
            sa.select(sa.func.count())
            .select_from(access_tokens)
            .where(access_tokens.c.tenant_id == acme)
        ).scalar_one()
        assert tokens_left == 0
        trail = conn.execute(
            sa.select(audit.c.before, audit.c.after, audit.c.who).where(audit.c.tenant_id == acme)
        ).all()
        assert trail
        assert all(values == (None, None, None) for values in trail)
    checked = audit_chain.verify(vault.database, vault.keyring.audit_chain_key())
    assert checked.reason is None
    assert checked.events > 0
    # the default tenant is untouched, and the name may be given again, to a new id
    assert ok(root, "UserGet", {"mode": "token", "identity": kept})["profile"] == BOB
    again, _ = _tenant(root, "acme")
    assert again != acme
    assert_error(_in(root, "acme", "UserGet", {"mode": "token", "identity": token}), 404, NOT_FOUND)


def test_a_sub_domain_names_its_tenant(root: TestClient, vault: Context) -> None:
    _, acme_token = _tenant(root, "acme")
    with _as(vault, acme_token) as admin:
        token = _ok_in(admin, "acme", "UserCreate", {"profile": ANN})["token"]
        body = {"mode": "token", "identity": token}
        found = call(admin, "UserGet", body, host="acme.vault.example.com")
        assert found.status_code == 200, found.text
        # the header wins over the host; a host label that is no tenant leaves the default
        assert (
            _in(admin, "default", "UserGet", body, host="acme.vault.example.com").status_code == 403
        )
    for host in (
        "vault.example.com:8443",
        "db.vault.example.com",
        "127.0.0.1",
        "localhost",
        "[::1]:3000",
    ):
        answer = call(root, "UserGet", body, host=host)
        assert_error(answer, 404, NOT_FOUND)


# The authorisation matrix of the tenant operations: the body (given the two tenants' ids)
# and what the other tenant's root gets in its own tenant (None: 200).
TENANT_CASES: dict[str, tuple[Any, str | None]] = {
    "TenantCreate": (lambda own, other: {"tenantname": "new", "tenantorg": "N"}, "create tenants"),
    "TenantGet": (lambda own, other: {"tenantid": own}, None),
    "TenantUpdate": (lambda own, other: {"tenantid": own, "tenantorg": "Changed"}, None),
    "TenantDelete": (lambda own, other: {"tenantid": other}, "delete tenants"),
    "TenantListTenants": (lambda own, other: {}, "list tenants"),
}


def test_the_tenant_matrix_covers_every_tenant_operation() -> None:
    assert {name for name in OPERATIONS if name.startswith("Tenant")} == set(TENANT_CASES)


@pytest.mark.parametrize("operation", sorted(TENANT_CASES))
def test_who_may_call_each_tenant_operation(
    root: TestClient, vault: Context, operation: str
) -> None:
    body_of, refusal = TENANT_CASES[operation]
    own, own_token = _tenant(root, "acme")
    other, _ = _tenant(root, "globex")
    body = body_of(own, other)
    ann = create(root, ANN)
    bob = create(root, BOB)
    for token in (
        None,
        "garbage",
        "DEMO",
        issue_user_token(vault, ann),
        issue_user_token(vault, bob),
        own_token,
    ):
        with client_for(vault, token) as stranger:
            assert_error(call(stranger, operation, body), 403, "Access denied")
    with _as(vault, own_token) as admin:
        answer = _in(admin, "acme", operation, body)
    if refusal is None:
        assert answer.status_code == 200, answer.text
    else:
        assert_error(answer, 403, f"Only the main tenant admin can {refusal}")
    # a tenant's root never reaches another tenant, with whatever name it gives
    with _as(vault, own_token) as admin:
        assert_error(_in(admin, "globex", operation, body), 403, "Access denied")
    answer = call(root, operation, body)
    assert answer.status_code == 200, answer.text
    assert _in(root, "acme", "TenantListTenants").status_code == 200


def test_a_refused_attempt_is_filed_under_the_tenants_person(
    root: TestClient, vault: Context
) -> None:
    _, acme_token = _tenant(root, "acme")
    with _as(vault, acme_token) as admin:
        token = _ok_in(admin, "acme", "UserCreate", {"profile": ANN})["token"]
    create(root, {**ANN, "name": "Ann of the default tenant"})
    named = {"mode": "email", "identity": ANN["email"]}
    with _as(vault, "garbage") as stranger:
        assert_error(_in(stranger, "acme", "UserGet", named), 403, "Access denied")
    with _as(vault, acme_token) as admin:
        rows = _ok_in(admin, "acme", "AuditListUserEvents", {"mode": "token", "identity": token})
    assert [row["status"] for row in rows["rows"]][:1] == ["error"]
    # and not under the person with that email in the default tenant
    default_rows = ok(root, "AuditListUserEvents", named)["rows"]
    assert all(row["status"] == "ok" for row in default_rows)


def test_the_expiry_job_erases_a_tenants_person_as_its_tenant_would(
    make_vault: VaultFactory, clock: Clock
) -> None:
    schema = {"type": "object", "properties": {"login": {"type": "string", "preserve": True}}}
    vault = make_vault(schema=schema)
    with client_for(vault) as root:
        acme, acme_token = _tenant(root, "acme")
    with _as(vault, acme_token) as admin:
        made = _in(admin, "acme", "UserCreate", {"profile": ANN, "finaltime": "1h"}).json()
    clock.advance(7200)
    assert run_jobs(vault)["expire users"] == 1
    # The preserved login keeps the lookup index of the person's tenant, not another's.
    with vault.database.transaction() as conn:
        row = conn.execute(
            sa.select(users.c.login_idx, users.c.email_idx, users.c.erased).where(
                users.c.token == made["token"]
            )
        ).one()
    country = vault.settings.sms.default_country
    assert row.erased is not None
    assert row.email_idx is None
    assert row.login_idx == lookup_index("login", "ann", vault.keyring.for_tenant(acme), country)
