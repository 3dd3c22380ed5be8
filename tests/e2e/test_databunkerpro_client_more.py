"""The published DatabunkerPro Python client (``databunkerpro`` on PyPI) against a started
``databunker serve``, on SQLite and PostgreSQL: consent, sessions, shared records, audit,
admin-minted access tokens, bulk listings and the system operations, checked by the values
the client gets back."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from databunkerpro import DatabunkerproAPI

from support.server import ServerProcess, run_cli

pytestmark = pytest.mark.e2e

ANN: dict[str, Any] = {"email": "ann.more@example.com", "login": "annmore", "name": "Ann"}
BOB: dict[str, Any] = {"email": "bob.more@example.com", "login": "bobmore"}
SESSION = "5b7f3a1e-0000-4000-8000-0000000000e1"
METADATA = {"purpose": "e2e", "ticket_id": "T-43"}


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[tuple[ServerProcess, str]]:
    workdir = tmp_path / "work"
    workdir.mkdir()
    result = run_cli(["init", "--db", database_url], cwd=workdir)
    assert result.returncode == 0, result.stderr
    values = dict(
        line.split("=", 1) for line in result.stdout.splitlines() if line.startswith("DATABUNKER_")
    )
    env = {
        "DATABUNKER_MASTERKEY": values["DATABUNKER_MASTERKEY"].strip(),
        "GENERIC_LIST_USERS": "true",
    }
    with ServerProcess(["serve", "--db", database_url], env, cwd=workdir) as server:
        yield server, values["DATABUNKER_ROOTTOKEN"].strip()


def test_consent_through_the_published_client(served: tuple[ServerProcess, str]) -> None:
    server, root_token = served
    api = DatabunkerproAPI(server.url, root_token)
    token = api.create_user(ANN)["token"]

    created = api.create_legal_basis(
        {"brief": "newsletter", "status": "active", "shortdesc": "News", "basistype": "consent"}
    )
    assert created == {"status": "ok"}
    assert api.update_legal_basis("newsletter", {"fulldesc": "Weekly"}) == {"status": "ok"}
    bases = {row["brief"]: row for row in api.list_agreements()["rows"]}
    assert (bases["newsletter"]["shortdesc"], bases["newsletter"]["fulldesc"]) == ("News", "Weekly")

    accepted = api.accept_agreement(
        "email",
        ANN["email"],
        "newsletter",
        {"agreementmethod": "checkbox", "referencecode": "r-1"},
        request_metadata=METADATA,
    )
    assert accepted == {"status": "ok"}, accepted
    agreement = api.get_user_agreement("token", token, "newsletter")["agreement"]
    assert (agreement["status"], agreement["agreementmethod"], agreement["referencecode"]) == (
        "active",
        "checkbox",
        "r-1",
    )
    listed = api.list_user_agreements("login", "annmore")
    assert (listed["total"], listed["rows"][0]["brief"]) == (1, "newsletter")
    opened = api.request_agreement_cancellation("token", token, "newsletter")
    assert api.get_user_request(opened["requestuuid"])["request"]["requesttype"] == (
        "agreement-withdraw"
    )
    assert api.cancel_agreement("token", token, "newsletter") == {"status": "ok"}
    assert api.get_user_agreement("token", token, "newsletter")["agreement"]["status"] == (
        "canceled"
    )
    api.accept_agreement("token", token, "newsletter", {})
    assert api.revoke_all_agreements("newsletter") == {"status": "ok"}
    assert api.get_user_agreement("token", token, "newsletter")["agreement"]["status"] == (
        "canceled"
    )
    missing = api.accept_agreement("token", token, "nothing", {})
    assert missing == {"status": "error", "message": "The legal basis record was not found"}

    assert api.create_processing_activity({"activity": "mailing", "title": "Mailing"}) == {
        "status": "ok"
    }
    linked = api.link_processing_activity_to_legal_basis("mailing", "newsletter")
    assert linked == {"status": "ok"}
    activities = api.list_processing_activities()
    assert [(r["activity"], r["title"], r["briefs"]) for r in activities["rows"]] == [
        ("mailing", "Mailing", ["newsletter"])
    ]
    assert api.unlink_processing_activity_from_legal_basis("mailing", "newsletter") == {
        "status": "ok"
    }
    assert api.update_processing_activity("mailing", {"title": "Post"}) == {"status": "ok"}
    assert api.list_processing_activities()["rows"][0]["title"] == "Post"
    assert api.delete_processing_activity("mailing") == {"status": "ok"}
    assert api.delete_legal_basis("newsletter") == {"status": "ok"}


def test_sessions_sharing_audit_and_tokens_through_the_published_client(
    served: tuple[ServerProcess, str],
) -> None:
    server, root_token = served
    api = DatabunkerproAPI(server.url, root_token)
    token = api.create_user(ANN, request_metadata=METADATA)["token"]

    data = {"token": token, "cart": [1, 2]}
    assert api.upsert_session(SESSION, data, {"finaltime": "1h"}) == {"status": "ok"}
    assert api.get_session(SESSION) == {"status": "ok", "sessionuuid": SESSION, "sessiondata": data}
    sessions = api.list_user_sessions("token", token)
    assert (sessions["total"], sessions["rows"][0]["sessiondata"]) == (1, data)
    assert api.delete_session(SESSION) == {"status": "ok"}
    assert api.get_session(SESSION)["message"] == "The session record was not found"

    shared = api.create_shared_record("token", token, {"fields": "name", "partner": "courier"})
    anonymous = DatabunkerproAPI(server.url, "")
    assert anonymous.get_shared_record(shared["recorduuid"]) == {
        "status": "ok",
        "data": {"name": "Ann"},
    }

    events = api.list_user_audit_events("token", token, 0, 100)
    titles = [row["eventtype"] for row in events["rows"]]
    assert titles[-1] == "create user record"
    assert all(
        re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["timestamp"]) for r in events["rows"]
    )
    creation = events["rows"][-1]["auditeventuuid"]
    event = api.get_audit_event(creation)
    assert event["eventtype"] == "create user record"
    assert event["details"]["request_metadata"] == METADATA
    assert event["details"]["after"] == ANN

    minted = api.create_user_x_token("login", "annmore", {"finaltime": "10m"})
    assert minted["token"] == token
    own = DatabunkerproAPI(server.url, minted["xtoken"])
    assert own.get_user("token", token)["profile"] == ANN
    assert own.get_system_stats() == {"status": "error", "message": "Access denied"}
    report = own.get_user_report("token", token)["report"]
    assert (report["token"], report["profile"]) == (token, ANN)


def test_bulk_and_system_through_the_published_client(
    served: tuple[ServerProcess, str],
) -> None:
    server, root_token = served
    api = DatabunkerproAPI(server.url, root_token)
    ann = api.create_user(ANN)["token"]
    bob = api.create_user(BOB)["token"]
    api.request_user_deletion("token", bob)

    refused = api.bulk_list_all_users("5b7f3a1e-0000-4000-8000-0000000000ff")
    assert refused == {
        "status": "error",
        "message": "The unlockuuid value was not found or is not valid",
    }
    unlock = api.bulk_list_unlock()["unlockuuid"]
    everyone = api.bulk_list_all_users(unlock, 0, 10)
    assert everyone["total"] == 2
    assert {row["token"]: row["profile"] for row in everyone["rows"]} == {ann: ANN, bob: BOB}
    found = api.bulk_list_users(unlock, [{"mode": "login", "identity": "bobmore"}])
    assert [row["token"] for row in found["rows"]] == [bob]
    requests = api.bulk_list_all_user_requests(unlock, 0, 10)
    assert [(r["token"], r["requesttype"]) for r in requests["rows"]] == [(bob, "forget-me")]
    trail = api.bulk_list_all_audit_events(unlock, 0, 5)
    assert trail["total"] >= 5
    assert len(trail["rows"]) == 5

    stats = api.get_system_stats()["stats"]
    assert (stats["numusers"], stats["numtenants"], stats["numsessions"]) == (2, 1, 0)
    report = api.get_user_report("email", ANN["email"])["report"]
    assert (report["token"], report["profile"]) == (ann, ANN)
    html = api.get_user_html_report("token", ann)["html"]
    assert html.startswith("<!DOCTYPE html>")
    assert ann in html


def test_tenants_through_the_published_client(served: tuple[ServerProcess, str]) -> None:
    server, root_token = served
    main = DatabunkerproAPI(server.url, root_token)
    created = main.create_tenant(
        {"tenantname": "acme", "tenantorg": "Acme Ltd", "email": "dpo@acme.example"},
        request_metadata=METADATA,
    )
    assert created["status"] == "ok", created
    tenantid, xtoken = created["tenantid"], created["xtoken"]
    assert main.create_tenant({"tenantname": "acme", "tenantorg": "Again"}) == {
        "status": "error",
        "message": "Duplicate tenant name",
    }
    assert main.get_tenant(str(tenantid)) == {
        "status": "ok",
        "tenantid": tenantid,
        "tenantname": "acme",
        "tenantorg": "Acme Ltd",
        "email": "dpo@acme.example",
    }
    listed = main.list_tenants(0, 10)
    assert listed["total"] == 2
    assert [row["tenantname"] for row in listed["rows"]] == ["default", "acme"]

    # The tenant's own root token, in its tenant: the same email is another person there.
    acme = DatabunkerproAPI(server.url, xtoken, "acme")
    in_acme = acme.create_user(ANN)["token"]
    in_default = main.create_user(ANN)["token"]
    assert in_acme != in_default
    assert acme.get_user("email", ANN["email"])["token"] == in_acme
    assert main.get_user("email", ANN["email"])["token"] == in_default
    assert acme.get_system_stats()["stats"]["numusers"] == 1
    assert main.get_system_stats()["stats"]["numtenants"] == 2
    # It reaches nothing of the default tenant, and may not manage other tenants.
    assert DatabunkerproAPI(server.url, xtoken).get_user("token", in_default) == {
        "status": "error",
        "message": "Access denied",
    }
    assert acme.list_tenants()["message"] == "Only the main tenant admin can list tenants"
    assert acme.update_tenant(tenantid, {"tenantorg": "Acme Group"}) == {"status": "ok"}
    assert main.get_tenant(tenantid)["tenantorg"] == "Acme Group"
    # The main tenant's root acts in the tenant too.
    assert (
        DatabunkerproAPI(server.url, root_token, "acme").get_user("token", in_acme)["profile"]
        == ANN
    )

    assert main.delete_tenant(str(tenantid)) == {"status": "ok"}
    assert acme.get_user("token", in_acme) == {"status": "error", "message": "Access denied"}
    assert main.get_tenant(tenantid) == {
        "status": "error",
        "message": "The tenant record was not found",
    }
    assert main.get_user("token", in_default)["profile"] == ANN
