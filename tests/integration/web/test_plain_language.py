"""Both portals read as a person reads them: labels, nested fields, pending changes, consent
grounds, the erasure page, request wording, the admin's names, plurals, filters and icon."""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from databunker.services.context import Context
from support.vaults import ROOT_TOKEN, FixedDigits, client_for, create_user, issue_user_token

CODE = "123456"
SCHEMA = {
    "type": "object",
    "properties": {
        "email": {"type": "string", "title": "Your e-mail"},
        "address": {
            "type": "object",
            "title": "Home address",
            "properties": {"city": {"type": "string", "title": "Town"}},
        },
    },
}
ANN = {
    "email": "ann@example.com",
    "name": "Ann",
    "favourite_colour": "blue",
    "address": {"city": "Oslo", "zip": "0150"},
}


def as_text(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, page
    return found.group(1)


def labels(page: str) -> dict[str, str]:
    """Each labelled input's label text, by the input's name."""
    found = {}
    for for_id, label in re.findall(r'<label for="([^"]+)">([^<]+)</label>', page):
        control = re.search(rf'<input id="{for_id}" name="([^"]+)"', page)
        if control is not None:
            found[html.unescape(control.group(1))] = html.unescape(label)
    return found


def vault_with(make_vault, **sections: Any) -> Context:  # type: ignore[no-untyped-def]
    return make_vault(  # type: ignore[no-any-return]
        schema=SCHEMA, random=FixedDigits(CODE), generic={"login_captcha": False}, **sections
    )


@pytest.fixture
def vault(make_vault) -> Context:  # type: ignore[no-untyped-def]
    return vault_with(make_vault, selfservice={"user_record_change": True})


@pytest.fixture
def ann(vault: Context) -> str:
    with client_for(vault) as root:
        return create_user(root, ANN)


def person(vault: Context, token: str) -> Iterator[TestClient]:
    with client_for(vault, None) as client:
        client.follow_redirects = False
        client.cookies.set("databunker_session", issue_user_token(vault, token))
        yield client


@pytest.fixture
def signed_in(vault: Context, ann: str) -> Iterator[TestClient]:
    yield from person(vault, ann)


# --- profile -------------------------------------------------------------------------------


def test_profile_labels_come_from_the_schema_or_the_key(signed_in: TestClient) -> None:
    page = signed_in.get("/profile").text
    shown = labels(page)
    assert shown['field:["email"]'] == "Your e-mail"  # the schema's title
    assert shown['field:["name"]'] == "Name"  # a common field, named for people
    assert shown['field:["address","city"]'] == "Home address \u203a Town"
    assert shown['field:["address","zip"]'] == "Home address \u203a Postcode"
    assert shown['field:["favourite_colour"]'] == "Favourite colour"  # humanised key
    assert "{" not in as_text(page)  # no JSON


def test_a_nested_value_is_edited_as_a_field(
    signed_in: TestClient, vault: Context, ann: str
) -> None:
    csrf = csrf_of(signed_in.get("/profile").text)
    saved = signed_in.post(
        "/profile/save", data={"csrf": csrf, 'field:["address","city"]': "Bergen"}
    )
    assert saved.headers["location"] == "/profile?done=saved"
    with client_for(vault) as root:
        profile = root.get(f"/v1/user/token/{ann}").json()["data"]
    assert profile["address"] == {"city": "Bergen", "zip": "0150"}  # the rest is kept
    assert 'value="Bergen"' in signed_in.get("/profile").text


def test_a_pending_change_shows_once_beside_its_field(make_vault, ann: str) -> None:  # type: ignore[no-untyped-def]
    strict = vault_with(make_vault)  # a person's changes wait for approval
    client = next(person(strict, ann))
    csrf = csrf_of(client.get("/profile").text)
    saved = client.post("/profile/save", data={"csrf": csrf, 'field:["address","city"]': "Rome"})
    assert saved.headers["location"] == "/profile?done=pending"
    page = client.get(saved.headers["location"]).text
    assert page.count('role="status"') == 1  # one banner, not two
    field = re.search(r'name="field:\[&#34;address&#34;,&#34;city&#34;\]".*?</dd>', page, re.S)
    assert field is not None, page
    assert 'value="Oslo"' in field.group(0)  # the value in force
    assert "Waiting for approval: Rome" in as_text(field.group(0))  # what waits, beside it


# --- consents ------------------------------------------------------------------------------


def consent(page: str, brief: str) -> str:
    found = re.search(rf'<li class="row" id="consent-{brief}">.*?</li>', page, re.S)
    assert found is not None, page
    return as_text(found.group(0))


def test_consents_name_their_ground_and_only_consents_can_be_withdrawn(
    signed_in: TestClient, vault: Context
) -> None:
    with client_for(vault) as root:
        root.post(
            "/v1/lbasis/delivery",
            json={"shortdesc": "Delivering your order", "basistype": "contract"},
        )
        root.post("/v1/lbasis/news", json={"shortdesc": "Newsletter", "usercontrol": True})
    page = signed_in.get("/consents").text
    delivery = consent(page, "delivery")
    assert "Legal basis: Needed for our contract with you" in delivery
    assert "Status: Applies while you use our service" in delivery
    assert "Withdraw" not in delivery
    assert "Give consent" not in delivery
    news = consent(page, "news")
    assert "Legal basis: Your consent" in news
    assert "Status: Not given" in news
    assert "Give consent" in news
    login = consent(page, "core-send-email-on-login")
    assert "Status: Given when you signed in with a one-time code" in login
    assert "not asked" not in page


# --- erasure, requests ---------------------------------------------------------------------


def test_the_forget_page_says_whether_erasure_is_immediate(make_vault, ann: str) -> None:  # type: ignore[no-untyped-def]
    asked = as_text(next(person(vault_with(make_vault), ann)).get("/forget").text)
    assert "Your request goes to our data protection officer" in asked
    assert "Ask to erase my data" in asked
    assert "at once" not in asked
    now = vault_with(make_vault, selfservice={"forget_me": True})
    immediate = as_text(next(person(now, ann)).get("/forget").text)
    assert "This happens at once and cannot be undone." in immediate
    assert "Erase my data now" in immediate


def test_requests_are_named_for_people(make_vault, ann: str) -> None:  # type: ignore[no-untyped-def]
    strict = vault_with(make_vault)
    client = next(person(strict, ann))
    csrf = csrf_of(client.get("/forget").text)
    client.post("/forget/confirm", data={"csrf": csrf, "confirm": "yes"})
    shown = as_text(client.get("/requests").text)
    assert "Erase all my data" in shown
    assert "Status: Waiting for approval" in shown
    assert "forget-me" not in shown
    assert " open " not in shown


# --- favicon -------------------------------------------------------------------------------


def test_there_is_a_favicon(signed_in: TestClient) -> None:
    for path in ("/favicon.ico", "/static/favicon.svg", "/admin/static/favicon.svg"):
        response = signed_in.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("image/svg+xml")
    assert '<link rel="icon" href="/static/favicon.svg"' in signed_in.get("/profile").text


# --- admin ---------------------------------------------------------------------------------


@pytest.fixture
def dpo(vault: Context) -> Iterator[TestClient]:
    with client_for(vault, None) as client:
        client.follow_redirects = False
        start = client.get("/admin")
        signed = client.post(
            "/admin/signin", data={"csrf": csrf_of(start.text), "token": ROOT_TOKEN}
        )
        assert signed.status_code == 303
        yield client


def test_admin_names_people_and_speaks_of_rejecting(
    make_vault,
    dpo: TestClient,
    ann: str,  # type: ignore[no-untyped-def]
) -> None:
    strict = vault_with(make_vault)
    with client_for(strict, issue_user_token(strict, ann)) as own:
        rtoken = own.put(f"/v1/user/token/{ann}", json={"name": "Annie"}).json()["rtoken"]
    listing = as_text(dpo.get("/admin/requests").text)
    assert "Profile change" in listing
    assert f"ann@example.com {ann[:8]}\u2026" in listing
    page = dpo.get(f"/admin/requests/{rtoken}").text
    shown = as_text(page)
    assert "Approve" in shown
    assert "Reject" in shown
    assert "Cancel request" not in shown
    csrf = csrf_of(page)
    rejected = dpo.post(f"/admin/requests/{rtoken}/cancel", data={"csrf": csrf, "reason": "no"})
    assert "The request was rejected." in dpo.get(rejected.headers["location"]).text


def test_admin_dashboard_counts_with_correct_plurals(dpo: TestClient, vault: Context) -> None:
    with client_for(vault) as root:
        root.post("/v1/pactivity/analytics", json={"title": "Analytics"})
    shown = as_text(dpo.get("/admin").text)
    assert "1 processing activity" in shown
    assert "1 processing activities" not in shown
    assert "0 open requests" in shown
    assert "2 legal bases" in shown


def test_admin_audit_is_compact_and_filters_by_person_action_and_day(
    dpo: TestClient, vault: Context, ann: str
) -> None:
    with client_for(vault) as root:
        bob = create_user(root, {"email": "bob@example.com"})
        root.get(f"/v1/user/token/{ann}")
    page = dpo.get("/admin/audit").text
    assert re.search(r"[0-9a-f]{32}", as_text(page)) is None  # no hashes
    assert "root" in as_text(page)
    by_email = as_text(dpo.get("/admin/audit", params={"person": "bob@example.com"}).text)
    assert "1 event, newest first." in by_email
    assert "Profile created" in by_email
    by_action = as_text(dpo.get("/admin/audit", params={"action": "get user record"}).text)
    assert "Profile read" in by_action  # the filter matches titles as recorded
    assert "Profile created" not in by_action
    today = as_text(dpo.get("/admin/audit", params={"day": "2027-01-15"}).text)
    other_day = as_text(dpo.get("/admin/audit", params={"day": "2001-01-01"}).text)
    assert "0 events, newest first." in other_day
    assert "0 events" not in today
    assert dpo.get("/admin/audit", params={"day": "15.01.2027"}).status_code == 400
    assert bob not in by_action


def test_admin_event_page_has_title_time_actor_and_one_diff(
    dpo: TestClient, vault: Context, ann: str
) -> None:
    with client_for(vault) as root:
        root.put(f"/v1/user/token/{ann}", json={"name": "Annie"})
    listing = dpo.get("/admin/audit", params={"action": "change user record"}).text
    atoken = re.search(r'href="/admin/audit/([0-9a-f-]{36})"', listing)
    assert atoken is not None
    page = dpo.get(f"/admin/audit/{atoken.group(1)}").text
    shown = as_text(page)
    assert "<h1>Profile changed or change asked for</h1>" in page
    assert "Recorded as change user record by token" in shown
    assert "When Jan 15, 2027" in shown
    assert "By root" in shown
    assert "Person ann@example.com" in shown
    assert shown.count("Annie") == 1  # one diff, not the values twice
    assert "<pre>" not in page


def test_the_demo_pages_give_the_demo_code(make_vault) -> None:  # type: ignore[no-untyped-def]
    demo = dataclasses.replace(vault_with(make_vault), demo=True)
    with client_for(demo, None) as client:
        start = client.get("/")
        assert "the code is always 4444" in as_text(start.text)
        sent = client.post(
            "/signin",
            data={"csrf": csrf_of(start.text), "mode": "email", "identity": "a@example.com"},
        )
        assert "the code is always 4444" in as_text(sent.text)
    with client_for(vault_with(make_vault), None) as client:
        assert "4444" not in client.get("/").text
