"""The consent catalogue over HTTP: ``/v1/lbasis``, ``/v1/pactivity`` and the cookie banner's
``/v1/sys/cookiesettings``.

Every assertion is about what an API client observes: status, body and follow-up reads.
"""

from __future__ import annotations

from typing import Any

import pytest
from httpx2 import Response
from starlette.testclient import TestClient

from conftest import VaultFactory
from support.vaults import Clock, client_for, create_user

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
SEEDED = [
    {
        "brief": "core-send-email-on-login",
        "status": "active",
        "module": "login",
        "shortdesc": "Send email on login",
        "fulldesc": "Confirm to allow sending access code using 3rd party email gateway",
        "basistype": "consent",
        "requiredmsg": "This consent is required to give you our service.",
        "usercontrol": True,
        "requiredflag": True,
    },
    {
        "brief": "core-send-sms-on-login",
        "status": "active",
        "module": "login",
        "shortdesc": "Send SMS on login",
        "fulldesc": "Confirm to allow sending access code using 3rd party SMS gateway",
        "basistype": "consent",
        "requiredmsg": "This consent is required to give you our service.",
        "usercontrol": True,
        "requiredflag": True,
    },
]
NEWSLETTER = {
    "module": "signup-page",
    "shortdesc": "Newsletter",
    "fulldesc": "Send me the monthly newsletter",
    "basistype": "consent",
    "requiredmsg": "Needed to send the newsletter",
    "usercontrol": True,
    "requiredflag": True,
}
UI_KEYS = {
    "LogoLink",
    "CompanyTitle",
    "CompanyVAT",
    "CompanyCity",
    "CompanyLink",
    "CompanyCountry",
    "CompanyAddress",
    "TermOfServiceTitle",
    "TermOfServiceLink",
    "PrivacyPolicyTitle",
    "PrivacyPolicyLink",
    "CustomCSSLink",
    "MagicLookup",
}


# -- helpers ---------------------------------------------------------------------------------
def assert_ok(response: Response) -> None:
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok"}


def assert_error(response: Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"status": "error", "message": message}


def save_basis(api: TestClient, brief: str, body: Any = None) -> None:
    assert_ok(api.post(f"/v1/lbasis/{brief}", json=body))


def list_bases(api: TestClient) -> list[dict[str, Any]]:
    response = api.get("/v1/lbasis")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"status", "total", "rows"}
    assert body["status"] == "ok"
    assert body["total"] == len(body["rows"])
    rows: list[dict[str, Any]] = body["rows"]
    return rows


def basis(api: TestClient, brief: str) -> dict[str, Any] | None:
    found = [row for row in list_bases(api) if row["brief"] == brief]
    assert len(found) <= 1
    return found[0] if found else None


def without_time(row: dict[str, Any] | None) -> dict[str, Any]:
    assert row is not None
    return {k: v for k, v in row.items() if k != "creationtime"}


def list_activities(api: TestClient) -> dict[str, dict[str, Any]]:
    response = api.get("/v1/pactivity")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"status", "total", "rows"}
    assert body["status"] == "ok"
    assert body["total"] == len(body["rows"])
    return {row["activity"]: row for row in body["rows"]}


def save_activity(api: TestClient, activity: str, body: Any = None) -> None:
    assert_ok(api.post(f"/v1/pactivity/{activity}", json=body))


def link(api: TestClient, activity: str, brief: str) -> None:
    assert_ok(api.post(f"/v1/pactivity/{activity}/{brief}"))


def accept(api: TestClient, brief: str, email: str, body: Any = None) -> None:
    assert_ok(api.post(f"/v1/agreement/{brief}/email/{email}", json=body))


def agreements_of(api: TestClient, token: str) -> dict[str, dict[str, Any]]:
    response = api.get(f"/v1/agreements/token/{token}")
    assert response.status_code == 200, response.text
    return {row["brief"]: row for row in response.json()["rows"]}


# -- legal bases: the seeded catalogue -------------------------------------------------------
def test_init_seeds_the_login_consents(api: TestClient, clock: Clock) -> None:
    response = api.get("/v1/lbasis")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "total": 2,
        "rows": [{**row, "creationtime": clock.now} for row in SEEDED],
    }


def test_flags_are_json_booleans(api: TestClient) -> None:
    save_basis(api, "plain", {"usercontrol": False, "requiredflag": False})
    row = basis(api, "plain")
    assert row is not None
    assert row["usercontrol"] is False
    assert row["requiredflag"] is False
    for seeded in list_bases(api)[:2]:
        assert seeded["usercontrol"] is True
        assert seeded["requiredflag"] is True


# -- legal bases: create and change ----------------------------------------------------------
def test_create_stores_every_field(api: TestClient, clock: Clock) -> None:
    clock.advance(50)
    save_basis(api, "newsletter", NEWSLETTER)
    assert basis(api, "newsletter") == {
        "brief": "newsletter",
        "status": "active",
        **NEWSLETTER,
        "creationtime": clock.now,
    }
    assert len(list_bases(api)) == 3


def test_create_without_body_gives_an_empty_active_basis(api: TestClient) -> None:
    save_basis(api, "bare")
    assert without_time(basis(api, "bare")) == {
        "brief": "bare",
        "status": "active",
        "module": "",
        "shortdesc": "",
        "fulldesc": "",
        "basistype": "",
        "requiredmsg": "",
        "usercontrol": False,
        "requiredflag": False,
    }


def test_brief_is_lower_cased(api: TestClient) -> None:
    save_basis(api, "Bad", {"shortdesc": "x"})
    assert without_time(basis(api, "bad"))["shortdesc"] == "x"
    assert basis(api, "Bad") is None
    # the same basis, whichever spelling addresses it
    save_basis(api, "BAD", {"shortdesc": "y"})
    assert [row["brief"] for row in list_bases(api)].count("bad") == 1
    assert without_time(basis(api, "bad"))["shortdesc"] == "y"


@pytest.mark.parametrize("brief", ["1x", "a", "a" * 66, "-ab", "a_b", "ab.c"])
def test_bad_brief_is_refused(api: TestClient, brief: str) -> None:
    assert_error(api.post(f"/v1/lbasis/{brief}", json=NEWSLETTER), 400, "bad brief format")
    assert_error(api.delete(f"/v1/lbasis/{brief}"), 400, "bad brief format")
    assert len(list_bases(api)) == 2


@pytest.mark.parametrize("brief", ["ab", "a" + "b" * 64, "x-1-y"])
def test_brief_edges_are_accepted(api: TestClient, brief: str) -> None:
    save_basis(api, brief)
    assert basis(api, brief) is not None


@pytest.mark.parametrize(
    ("given", "stored"),
    [("disabled", "disabled"), ("active", "active"), ("deleted", "active"), ("x", "active")],
)
def test_status_is_disabled_or_active(api: TestClient, given: str, stored: str) -> None:
    save_basis(api, "newsletter", {**NEWSLETTER, "status": given})
    assert without_time(basis(api, "newsletter"))["status"] == stored


def test_required_message_is_kept_only_when_the_basis_is_required(api: TestClient) -> None:
    save_basis(api, "optional", {"requiredmsg": "needed", "requiredflag": False})
    save_basis(api, "required", {"requiredmsg": "needed", "requiredflag": True})
    assert without_time(basis(api, "optional"))["requiredmsg"] == ""
    assert without_time(basis(api, "required"))["requiredmsg"] == "needed"
    # turning the flag off drops the message
    save_basis(api, "required", {"requiredflag": False})
    assert without_time(basis(api, "required"))["requiredmsg"] == ""


def test_update_keeps_absent_fields_and_creation_time(api: TestClient, clock: Clock) -> None:
    save_basis(api, "newsletter", NEWSLETTER)
    created = basis(api, "newsletter")
    assert created is not None
    clock.advance(1000)

    save_basis(api, "newsletter", {"shortdesc": "Weekly news", "usercontrol": False})

    assert basis(api, "newsletter") == {
        **created,
        "shortdesc": "Weekly news",
        "usercontrol": False,
    }
    assert len(list_bases(api)) == 3


@pytest.mark.parametrize("name", ["usercontrol", "requiredflag"])
def test_flags_accept_true_and_false_text(api: TestClient, name: str) -> None:
    assert_ok(api.post("/v1/lbasis/texty", content=f"{name}=true", headers=FORM))
    assert without_time(basis(api, "texty"))[name] is True
    assert_ok(api.post("/v1/lbasis/texty", json={name: "false"}))
    assert without_time(basis(api, "texty"))[name] is False
    assert_ok(api.post("/v1/lbasis/texty", json={name: "true"}))
    assert without_time(basis(api, "texty"))[name] is True


@pytest.mark.parametrize("name", ["usercontrol", "requiredflag"])
@pytest.mark.parametrize("value", ["maybe", 1, 0, [], {}, "yes", ""])
def test_flags_refuse_anything_else(api: TestClient, name: str, value: Any) -> None:
    save_basis(api, "flagged", {"usercontrol": True, "requiredflag": True, "shortdesc": "a"})
    before = basis(api, "flagged")

    response = api.post("/v1/lbasis/flagged", json={name: value, "shortdesc": "b"})

    assert response.status_code == 400, response.text
    assert response.json()["status"] == "error"
    assert basis(api, "flagged") == before
    # and nothing is created when the basis is new
    assert api.post("/v1/lbasis/fresh", json={name: value}).status_code == 400
    assert basis(api, "fresh") is None


def test_form_body_creates_a_basis(api: TestClient) -> None:
    form = (
        "module=cookie-popup&shortdesc=Analytics&fulldesc=Count+visits&basistype=consent"
        "&requiredmsg=no&usercontrol=true&requiredflag=false&status=disabled"
    )
    assert_ok(api.post("/v1/lbasis/analytics", content=form, headers=FORM))
    assert without_time(basis(api, "analytics")) == {
        "brief": "analytics",
        "status": "disabled",
        "module": "cookie-popup",
        "shortdesc": "Analytics",
        "fulldesc": "Count visits",
        "basistype": "consent",
        "requiredmsg": "",
        "usercontrol": True,
        "requiredflag": False,
    }


def test_json_body_that_is_not_an_object_is_refused(api: TestClient) -> None:
    response = api.post("/v1/lbasis/newsletter", json=["shortdesc"])
    assert response.status_code == 400, response.text
    assert basis(api, "newsletter") is None


# -- legal bases: rename ---------------------------------------------------------------------
def test_rename_moves_the_basis_its_agreements_and_its_activity_links(
    api: TestClient, clock: Clock
) -> None:
    save_basis(api, "newsletter", NEWSLETTER)
    created = basis(api, "newsletter")
    assert created is not None
    save_activity(api, "mailing")
    link(api, "mailing", "newsletter")
    token = create_user(api, {"email": "ann@example.com"})
    accept(api, "newsletter", "ann@example.com")
    clock.advance(10)

    save_basis(api, "newsletter", {"brief": "News-Letter", "shortdesc": "News"})

    assert basis(api, "newsletter") is None
    assert basis(api, "news-letter") == {**created, "brief": "news-letter", "shortdesc": "News"}
    activity = list_activities(api)["mailing"]
    assert activity["legalbasis"] == "news-letter"
    assert [row["brief"] for row in activity["briefs"]] == ["news-letter"]
    assert set(agreements_of(api, token)) == {"news-letter"}
    assert agreements_of(api, token)["news-letter"]["status"] == "yes"
    got = api.get(f"/v1/agreement/news-letter/token/{token}")
    assert got.status_code == 200, got.text
    assert got.json()["data"]["brief"] == "news-letter"
    # the old name is free again
    assert_error(api.post("/v1/agreement/newsletter/token/" + token), 404, "not found")


def test_rename_onto_an_existing_brief_conflicts(api: TestClient) -> None:
    save_basis(api, "newsletter", NEWSLETTER)
    before = list_bases(api)

    response = api.post("/v1/lbasis/newsletter", json={"brief": "core-send-sms-on-login"})

    assert response.status_code == 409, response.text
    assert response.json()["status"] == "error"
    assert list_bases(api) == before


def test_rename_to_a_bad_brief_is_refused(api: TestClient) -> None:
    save_basis(api, "newsletter", NEWSLETTER)
    before = list_bases(api)
    assert_error(
        api.post("/v1/lbasis/newsletter", json={"brief": "9lives"}), 400, "bad brief format"
    )
    assert list_bases(api) == before


def test_renaming_by_form_body(api: TestClient) -> None:
    save_basis(api, "newsletter", NEWSLETTER)
    assert_ok(api.post("/v1/lbasis/newsletter", content="brief=digest", headers=FORM))
    assert basis(api, "newsletter") is None
    assert without_time(basis(api, "digest"))["shortdesc"] == "Newsletter"


# -- legal bases: delete ---------------------------------------------------------------------
def test_delete_unknown_brief_is_not_found(api: TestClient) -> None:
    assert_error(api.delete("/v1/lbasis/never-defined"), 404, "not found")
    assert len(list_bases(api)) == 2


def test_delete_unused_brief_removes_it_and_its_links(api: TestClient) -> None:
    save_basis(api, "newsletter", NEWSLETTER)
    save_activity(api, "mailing")
    link(api, "mailing", "newsletter")
    link(api, "mailing", "core-send-email-on-login")

    assert_ok(api.delete("/v1/lbasis/newsletter"))

    assert basis(api, "newsletter") is None
    assert [row["brief"] for row in list_bases(api)] == [row["brief"] for row in SEEDED]
    activity = list_activities(api)["mailing"]
    assert activity["legalbasis"] == "core-send-email-on-login"
    assert [row["brief"] for row in activity["briefs"]] == ["core-send-email-on-login"]
    # it can be defined afresh
    save_basis(api, "newsletter")
    assert without_time(basis(api, "newsletter"))["shortdesc"] == ""


def test_delete_brief_in_use_revokes_its_agreements_and_keeps_it_as_deleted(
    api: TestClient, clock: Clock
) -> None:
    save_basis(api, "newsletter", NEWSLETTER)
    save_activity(api, "mailing")
    link(api, "mailing", "newsletter")
    ann = create_user(api, {"email": "ann@example.com"})
    bob = create_user(api, {"email": "bob@example.com"})
    accept(api, "newsletter", "ann@example.com")
    accept(api, "newsletter", "bob@example.com", {"status": "no"})
    accept(api, "core-send-email-on-login", "ann@example.com")
    clock.advance(30)

    assert_ok(api.delete("/v1/lbasis/newsletter"))

    assert without_time(basis(api, "newsletter")) == {
        "brief": "newsletter",
        "status": "deleted",
        **NEWSLETTER,
    }
    assert list_activities(api)["mailing"]["legalbasis"] == ""
    assert list_activities(api)["mailing"]["briefs"] == []
    ann_rows = agreements_of(api, ann)
    assert ann_rows["newsletter"]["status"] == "revoked"
    assert ann_rows["newsletter"]["when"] == clock.now
    assert ann_rows["core-send-email-on-login"]["status"] == "yes"
    assert agreements_of(api, bob)["newsletter"]["status"] == "no"
    # a deleted basis takes no new agreements
    assert_error(api.post(f"/v1/agreement/newsletter/token/{ann}"), 404, "not found")
    assert_error(api.post("/v1/agreement/newsletter/email/carol@example.com"), 404, "not found")
    assert agreements_of(api, ann)["newsletter"]["status"] == "revoked"


def test_agreements_of_a_deleted_basis_stay_readable_as_evidence(api: TestClient) -> None:
    save_basis(api, "newsletter", NEWSLETTER)
    ann = create_user(api, {"email": "ann@example.com"})
    accept(api, "newsletter", "ann@example.com", {"referencecode": "ref-1"})
    assert_ok(api.delete("/v1/lbasis/newsletter"))

    response = api.get(f"/v1/agreement/newsletter/token/{ann}")

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert (data["brief"], data["status"], data["referencecode"]) == (
        "newsletter",
        "revoked",
        "ref-1",
    )


# -- processing activities -------------------------------------------------------------------
def test_activities_list_is_empty_at_first(api: TestClient) -> None:
    response = api.get("/v1/pactivity")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "total": 0, "rows": []}


def test_activity_create_and_list(api: TestClient, clock: Clock) -> None:
    clock.advance(7)
    save_activity(
        api,
        "Analytics",
        {
            "title": "Site analytics",
            "script": "<script>count()</script>",
            "fulldesc": "Counting visits",
            "applicableto": "visitors",
        },
    )
    response = api.get("/v1/pactivity")
    assert response.json() == {
        "status": "ok",
        "total": 1,
        "rows": [
            {
                "activity": "analytics",
                "title": "Site analytics",
                "script": "<script>count()</script>",
                "fulldesc": "Counting visits",
                "legalbasis": "",
                "applicableto": "visitors",
                "creationtime": clock.now,
                "briefs": [],
            }
        ],
    }


def test_activity_title_defaults_to_its_name(api: TestClient) -> None:
    save_activity(api, "tracking")
    row = list_activities(api)["tracking"]
    assert row["title"] == "tracking"
    assert (row["script"], row["fulldesc"], row["applicableto"]) == ("", "", "")
    assert row["briefs"] == []


def test_activity_update_keeps_absent_fields(api: TestClient, clock: Clock) -> None:
    save_activity(api, "tracking", {"title": "T", "script": "s()", "fulldesc": "F"})
    before = list_activities(api)["tracking"]
    clock.advance(100)

    save_activity(api, "tracking", {"fulldesc": "G"})

    assert list_activities(api)["tracking"] == {**before, "fulldesc": "G"}


def test_activity_form_body(api: TestClient) -> None:
    form = "title=Ads&script=ads()&applicableto=everyone"
    assert_ok(api.post("/v1/pactivity/ads", content=form, headers=FORM))
    row = list_activities(api)["ads"]
    assert (row["title"], row["script"], row["applicableto"]) == ("Ads", "ads()", "everyone")


@pytest.mark.parametrize("activity", ["1x", "a", "a" * 66, "a_b"])
def test_bad_activity_name_is_refused(api: TestClient, activity: str) -> None:
    assert_error(api.post(f"/v1/pactivity/{activity}"), 400, "bad activity format")
    assert_error(api.delete(f"/v1/pactivity/{activity}"), 400, "bad activity format")
    assert_error(
        api.post(f"/v1/pactivity/{activity}/core-send-email-on-login"), 400, "bad activity format"
    )
    assert list_activities(api) == {}


def test_activity_rename_keeps_its_links(api: TestClient) -> None:
    save_activity(api, "tracking", {"title": "T"})
    link(api, "tracking", "core-send-sms-on-login")

    assert_ok(api.post("/v1/pactivity/tracking", json={"activity": "Measuring"}))

    rows = list_activities(api)
    assert set(rows) == {"measuring"}
    assert rows["measuring"]["title"] == "T"
    assert rows["measuring"]["legalbasis"] == "core-send-sms-on-login"


@pytest.mark.parametrize("new_name", ["9lives", "x", "a b", "a" * 66, 'a"b'])
def test_activity_rename_to_a_bad_name_is_refused(api: TestClient, new_name: str) -> None:
    save_activity(api, "tracking")
    before = list_activities(api)
    response = api.post("/v1/pactivity/tracking", json={"activity": new_name})
    assert_error(response, 400, "bad activity format")
    assert list_activities(api) == before


def test_activity_rename_onto_an_existing_one_conflicts(api: TestClient) -> None:
    save_activity(api, "tracking")
    save_activity(api, "ads")
    before = list_activities(api)
    response = api.post("/v1/pactivity/tracking", json={"activity": "ads"})
    assert response.status_code == 409, response.text
    assert list_activities(api) == before


def test_activity_delete(api: TestClient) -> None:
    save_activity(api, "tracking")
    save_activity(api, "ads")
    link(api, "tracking", "core-send-sms-on-login")

    assert_ok(api.delete("/v1/pactivity/tracking"))

    assert set(list_activities(api)) == {"ads"}
    # a new activity of the same name starts without the old links
    save_activity(api, "tracking")
    assert list_activities(api)["tracking"]["legalbasis"] == ""
    assert_error(api.delete("/v1/pactivity/never-there"), 404, "not found")


def test_link_keeps_order_without_duplicates(api: TestClient) -> None:
    save_basis(api, "newsletter", NEWSLETTER)
    save_activity(api, "mailing")
    link(api, "mailing", "core-send-sms-on-login")
    link(api, "mailing", "newsletter")
    link(api, "mailing", "core-send-email-on-login")
    link(api, "mailing", "newsletter")
    link(api, "mailing", "CORE-SEND-SMS-ON-LOGIN")

    row = list_activities(api)["mailing"]
    order = ["core-send-sms-on-login", "newsletter", "core-send-email-on-login"]
    assert row["legalbasis"] == ",".join(order)
    by_brief = {b["brief"]: b for b in list_bases(api)}
    assert row["briefs"] == [by_brief[b] for b in order]


def test_link_to_unknown_brief_or_activity_is_not_found(api: TestClient) -> None:
    save_activity(api, "mailing")
    assert_error(api.post("/v1/pactivity/mailing/never-defined"), 404, "not found")
    assert_error(api.post("/v1/pactivity/nothing/core-send-sms-on-login"), 404, "not found")
    assert_error(api.delete("/v1/pactivity/nothing/core-send-sms-on-login"), 404, "not found")
    assert_error(api.post("/v1/pactivity/mailing/1bad"), 400, "bad brief format")
    assert list_activities(api)["mailing"]["legalbasis"] == ""
    assert set(list_activities(api)) == {"mailing"}


def test_unlink(api: TestClient) -> None:
    save_activity(api, "mailing")
    link(api, "mailing", "core-send-sms-on-login")
    link(api, "mailing", "core-send-email-on-login")

    assert_ok(api.delete("/v1/pactivity/mailing/core-send-sms-on-login"))
    assert list_activities(api)["mailing"]["legalbasis"] == "core-send-email-on-login"
    # unlinking what is not linked changes nothing
    assert_ok(api.delete("/v1/pactivity/mailing/core-send-sms-on-login"))
    assert_ok(api.delete("/v1/pactivity/mailing/core-send-email-on-login"))
    row = list_activities(api)["mailing"]
    assert (row["legalbasis"], row["briefs"]) == ("", [])


# -- cookie settings -------------------------------------------------------------------------
def test_cookie_settings_without_cookie_bases(api: TestClient, anonymous: TestClient) -> None:
    save_activity(api, "tracking", {"script": "track()"})
    link(api, "tracking", "core-send-email-on-login")

    response = anonymous.get("/v1/sys/cookiesettings")

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"status", "ui", "rows", "scripts"}
    assert body["status"] == "ok"
    assert set(body["ui"]) == UI_KEYS
    assert body["ui"] == anonymous.get("/v1/sys/uiconfiguration").json()["ui"]
    assert body["rows"] == []
    assert body["scripts"] == []


def test_cookie_settings_reflect_configured_ui(make_vault: VaultFactory) -> None:
    vault = make_vault(ui={"company_title": "Acme Ltd"})
    with client_for(vault, None) as client:
        ui = client.get("/v1/sys/cookiesettings").json()["ui"]
    assert set(ui) == UI_KEYS
    assert ui["CompanyTitle"] == "Acme Ltd"


def test_cookie_settings_list_active_cookie_bases_and_their_scripts(
    api: TestClient, anonymous: TestClient
) -> None:
    cookie = {"module": "cookie-popup", "basistype": "consent", "shortdesc": "c"}
    save_basis(api, "analytics", {**cookie, "requiredflag": False})
    save_basis(api, "essential", {**cookie, "requiredflag": True, "requiredmsg": "needed"})
    save_basis(api, "marketing", {**cookie, "requiredflag": False})
    save_basis(api, "old-cookies", {**cookie, "status": "disabled"})
    save_basis(api, "newsletter", NEWSLETTER)
    save_activity(api, "counting", {"script": "count()"})
    link(api, "counting", "newsletter")
    link(api, "counting", "marketing")
    link(api, "counting", "analytics")
    link(api, "counting", "old-cookies")
    save_activity(api, "ads", {"script": "ads()"})
    link(api, "ads", "marketing")
    save_activity(api, "no-script")
    link(api, "no-script", "analytics")
    save_activity(api, "mail-only", {"script": "mail()"})
    link(api, "mail-only", "newsletter")
    save_activity(api, "unlinked", {"script": "nothing()"})

    response = anonymous.get("/v1/sys/cookiesettings")

    assert response.status_code == 200, response.text
    body = response.json()
    by_brief = {row["brief"]: row for row in list_bases(api)}
    rows = body["rows"]
    assert {row["brief"] for row in rows} == {"analytics", "essential", "marketing"}
    assert rows[0] == by_brief["essential"]  # required first
    assert sorted(rows[1:], key=lambda r: r["brief"]) == [
        by_brief["analytics"],
        by_brief["marketing"],
    ]
    scripts = sorted(body["scripts"], key=lambda s: s["script"])
    assert scripts == [
        {"script": "ads()", "briefs": ["marketing"]},
        {"script": "count()", "briefs": ["marketing", "analytics"]},
    ]


def test_cookie_settings_drop_a_deleted_cookie_basis(
    api: TestClient, anonymous: TestClient
) -> None:
    save_basis(api, "analytics", {"module": "cookie-popup"})
    save_activity(api, "counting", {"script": "count()"})
    link(api, "counting", "analytics")
    assert [row["brief"] for row in anonymous.get("/v1/sys/cookiesettings").json()["rows"]] == [
        "analytics"
    ]

    assert_ok(api.delete("/v1/lbasis/analytics"))

    body = anonymous.get("/v1/sys/cookiesettings").json()
    assert (body["rows"], body["scripts"]) == ([], [])
