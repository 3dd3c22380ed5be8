"""The privacy portal's pages through the ASGI app: sign-in, session cookie, CSRF, escaping."""

from __future__ import annotations

import html
import json
import re
import uuid
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from databunker.services import captcha, login
from databunker.services.audit import save_event
from databunker.services.context import ANONYMOUS, AuditEvent, Context, Work
from databunker.storage.outbox import open_payload
from databunker.storage.tables import outbox
from databunker.web.portal_base import when
from support.vaults import ROOT_TOKEN, Clock, FixedDigits, client_for, create_user, issue_user_token

CODE = "123456"
XSS = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
ANN = {"email": "ann@example.com", "name": "Ann", "note": XSS}
BOB = {"email": "bob@example.com", "name": "Bob"}


@pytest.fixture
def portal_vault(make_vault) -> Context:  # type: ignore[no-untyped-def]
    # Login codes are always CODE here; captcha answers too.
    return make_vault(
        random=FixedDigits(CODE),
        generic={"login_captcha": False},
        selfservice={"user_record_change": True},
    )


@pytest.fixture
def ann(portal_vault: Context) -> str:
    with client_for(portal_vault) as root:
        response = root.post("/v1/user", json=ANN)
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


@pytest.fixture
def browser(portal_vault: Context) -> Iterator[TestClient]:
    with client_for(portal_vault, None) as client:
        client.follow_redirects = False
        yield client


@pytest.fixture
def signed_in(portal_vault: Context, ann: str, browser: TestClient) -> TestClient:
    browser.cookies.set("databunker_session", issue_user_token(portal_vault, ann))
    return browser


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, page
    return found.group(1)


def test_pages_carry_a_csp_without_unsafe_inline(browser: TestClient) -> None:
    response = browser.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert "unsafe-inline" not in csp
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "form-action 'self'" in csp
    assert response.headers["cache-control"] == "no-store"
    assert browser.get("/static/portal.css").headers["content-type"].startswith("text/css")


def test_sign_in_with_a_code_sets_a_strict_httponly_cookie(
    browser: TestClient, ann: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = browser.get("/")
    assert 'name="identity"' in start.text
    assert "/v1/captcha/" not in start.text  # the captcha is switched off here
    form = {"csrf": csrf_of(start.text), "mode": "email", "identity": ANN["email"]}
    code_page = browser.post("/signin", data=form)
    assert code_page.status_code == 200
    assert "Enter your code" in code_page.text

    wrong = browser.post("/code", data={**form, "code": "000000"})
    assert wrong.status_code == 400
    assert "This code is not valid." in wrong.text
    assert "databunker_session" not in wrong.headers.get("set-cookie", "")

    browser.post("/signin", data=form)
    signed = browser.post("/code", data={**form, "code": CODE})
    assert signed.status_code == 303
    assert signed.headers["location"] == "/profile"
    cookie = next(
        c for c in signed.headers.get_list("set-cookie") if c.startswith("databunker_session=")
    )
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Max-Age=1800" in cookie
    assert "Secure" not in cookie  # plain http here; https adds it
    xtoken = cookie.split(";")[0].split("=", 1)[1]
    assert xtoken not in signed.headers["location"]

    profile = browser.get("/profile")
    assert profile.status_code == 200
    assert 'value="Ann"' in profile.text
    assert xtoken not in profile.text


def test_wrong_codes_entered_on_the_page_use_up_the_code(
    browser: TestClient, ann: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = browser.get("/")
    form = {"csrf": csrf_of(start.text), "mode": "email", "identity": ANN["email"]}
    browser.post("/signin", data=form)
    for _ in range(login.MAX_WRONG_ATTEMPTS):
        wrong = browser.post("/code", data={**form, "code": "000000"})
        assert wrong.status_code == 400
    # Each wrong try was counted, although the page answered with a refusal: the code is void.
    late = browser.post("/code", data={**form, "code": CODE})
    assert late.status_code == 400
    assert "This code is not valid." in late.text
    assert "databunker_session" not in late.headers.get("set-cookie", "")


def test_the_code_page_does_not_say_whether_anyone_has_the_identity(
    browser: TestClient, ann: str
) -> None:
    start = browser.get("/")
    form = {"csrf": csrf_of(start.text), "mode": "email"}
    known = browser.post("/signin", data={**form, "identity": ANN["email"]})
    unknown = browser.post("/signin", data={**form, "identity": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 200
    assert known.text.replace(ANN["email"], "X") == unknown.text.replace("nobody@example.com", "X")


def test_pages_need_a_session(browser: TestClient) -> None:
    pages = ("/profile", "/apps", "/sessions", "/consents", "/requests", "/audit", "/forget")
    for path in (*pages, f"/requests/{uuid.uuid4()}", "/audit?offset=50"):
        response = browser.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/"


def test_a_stale_session_signs_out(browser: TestClient) -> None:
    browser.cookies.set("databunker_session", "00000000-0000-4000-8000-000000000000")
    response = browser.get("/profile")
    assert response.status_code == 303
    assert 'databunker_session=""' in response.headers["set-cookie"]


def test_a_root_token_is_no_portal_session(browser: TestClient) -> None:
    browser.cookies.set("databunker_session", ROOT_TOKEN)
    assert browser.get("/profile").status_code == 303


def test_forms_without_the_right_csrf_token_are_refused(
    signed_in: TestClient, portal_vault: Context, ann: str
) -> None:
    for data in ({"field:name": "Mallory"}, {"field:name": "Mallory", "csrf": "forged"}):
        response = signed_in.post("/profile/save", data=data)
        assert response.status_code == 403
        assert "access denied" in response.text
    with client_for(portal_vault) as root:
        assert root.get(f"/v1/user/token/{ann}").json()["data"]["name"] == "Ann"


def test_a_pre_session_form_needs_its_cookie(browser: TestClient) -> None:
    token = csrf_of(browser.get("/").text)
    browser.cookies.clear()
    response = browser.post("/signin", data={"csrf": token, "mode": "email", "identity": "a@b.c"})
    assert response.status_code == 403


def test_stored_markup_renders_as_text(signed_in: TestClient) -> None:
    page = signed_in.get("/profile").text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_profile_edit_and_pending_change(make_vault, ann: str, portal_vault: Context) -> None:  # type: ignore[no-untyped-def]
    strict = make_vault(generic={"login_captcha": False})  # changes wait for approval
    with client_for(strict, None) as client:
        client.follow_redirects = False
        client.cookies.set("databunker_session", issue_user_token(strict, ann))
        csrf = csrf_of(client.get("/profile").text)
        saved = client.post("/profile/save", data={"csrf": csrf, "field:name": "Annie"})
        assert saved.headers["location"] == "/profile?done=pending"
        page = client.get("/profile?done=pending").text
        assert "waits for approval" in page
        assert 'value="Ann"' in page
        assert "Waiting for approval: Annie" in page
        assert page.count('class="pending"') == 1  # one sign, next to the field it changes
        assert page.count('class="notice"') == 1  # and one banner


def test_profile_edit_applies_at_once_with_self_service(signed_in: TestClient) -> None:
    csrf = csrf_of(signed_in.get("/profile").text)
    saved = signed_in.post("/profile/save", data={"csrf": csrf, "field:name": "Annie"})
    assert saved.headers["location"] == "/profile?done=saved"
    page = signed_in.get(saved.headers["location"]).text
    assert 'value="Annie"' in page
    assert "Your profile was saved." in page


def test_consents_give_and_withdraw(signed_in: TestClient, portal_vault: Context, ann: str) -> None:
    with client_for(portal_vault) as root:
        root.post(
            "/v1/lbasis/newsletter",
            json={
                "shortdesc": "Newsletter",
                "fulldesc": "<b>Monthly</b> news",
                "usercontrol": True,
            },
        )
    page = signed_in.get("/consents").text
    assert "&lt;b&gt;Monthly&lt;/b&gt; news" in page
    csrf = csrf_of(page)
    given = signed_in.post(
        "/consents/change", data={"csrf": csrf, "brief": "newsletter", "action": "give"}
    )
    assert given.headers["location"] == "/consents?done=given"
    with client_for(portal_vault) as root:
        assert root.get(f"/v1/agreement/newsletter/token/{ann}").json()["data"]["status"] == "yes"
    signed_in.post(
        "/consents/change", data={"csrf": csrf, "brief": "newsletter", "action": "withdraw"}
    )
    with client_for(portal_vault) as root:
        assert root.get(f"/v1/agreement/newsletter/token/{ann}").json()["data"]["status"] == "no"


def test_export_is_an_attachment(signed_in: TestClient, ann: str) -> None:
    csrf = csrf_of(signed_in.get("/profile").text)
    response = signed_in.post("/export", data={"csrf": csrf})
    assert response.status_code == 200
    assert response.headers["content-disposition"] == 'attachment; filename="my-data.json"'
    document = response.json()
    assert document["token"] == ann
    assert document["profile"]["note"] == ANN["note"]


def test_requests_list_and_cancel(signed_in: TestClient) -> None:
    csrf = csrf_of(signed_in.get("/forget").text)
    asked = signed_in.post("/forget/confirm", data={"csrf": csrf, "confirm": "yes"})
    assert asked.headers["location"] == "/profile?done=forget-pending"
    page = signed_in.get("/requests").text
    assert "Erase all my data" in page
    assert "forget-me" not in page
    rtoken = re.search(r'name="rtoken" value="([^"]+)"', page)
    assert rtoken is not None
    signed_in.post("/requests/cancel", data={"csrf": csrf, "rtoken": rtoken.group(1)})
    page = signed_in.get("/requests").text
    assert "Rejected or cancelled" in as_text(page)
    assert "Reason: user operation" in as_text(page)


def test_forget_me_needs_confirmation_then_erases(make_vault, ann: str) -> None:  # type: ignore[no-untyped-def]
    vault = make_vault(generic={"login_captcha": False}, selfservice={"forget_me": True})
    with client_for(vault, None) as client:
        client.follow_redirects = False
        client.cookies.set("databunker_session", issue_user_token(vault, ann))
        csrf = csrf_of(client.get("/forget").text)
        unconfirmed = client.post("/forget/confirm", data={"csrf": csrf})
        assert unconfirmed.status_code == 400
        assert "Tick the box" in unconfirmed.text
        done = client.post("/forget/confirm", data={"csrf": csrf, "confirm": "yes"})
        assert done.status_code == 200
        assert "Your data is gone" in done.text
    with client_for(vault) as root:
        assert root.get(f"/v1/user/token/{ann}").json()["data"] == {}


def test_sign_out_revokes_the_token(portal_vault: Context, ann: str, browser: TestClient) -> None:
    xtoken = issue_user_token(portal_vault, ann)
    browser.cookies.set("databunker_session", xtoken)
    csrf = csrf_of(browser.get("/profile").text)
    out = browser.post("/signout", data={"csrf": csrf})
    assert out.status_code == 303
    assert out.headers["location"] == "/"
    with client_for(portal_vault, xtoken) as client:
        assert client.get(f"/v1/user/token/{ann}").status_code == 403


def test_audit_page_shows_own_events(signed_in: TestClient) -> None:
    signed_in.get("/profile")
    page = signed_in.get("/audit").text
    shown = as_text(page)
    assert "You viewed your profile." in shown
    assert "Our service created your profile." in shown
    assert "get user record by token" not in page


def test_branding_comes_from_ui_settings(make_vault) -> None:  # type: ignore[no-untyped-def]
    vault = make_vault(
        ui={
            "company_title": "Acme <Ltd>",
            "custom_css_link": "/static/x.css",
            "privacy_policy_link": "https://acme.example/privacy",
        }
    )
    with client_for(vault, None) as client:
        page = client.get("/").text
    assert "Acme &lt;Ltd&gt;" in page
    assert 'href="/static/x.css"' in page
    assert 'href="https://acme.example/privacy"' in page
    assert "/v1/captcha/" in page  # the captcha is on by default


# --- helpers for the pages below -----------------------------------------------------------


def as_text(fragment: str) -> str:
    """What a reader sees of an HTML fragment: tags dropped, entities decoded, spaces joined."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def preformatted(page: str) -> list[Any]:
    """The JSON shown in the page's <pre> blocks."""
    return [
        json.loads(html.unescape(block)) for block in re.findall(r"<pre>(.*?)</pre>", page, re.S)
    ]


def diff_rows(page: str) -> list[tuple[str, str, str]]:
    rows = re.findall(
        r'<tr>\s*<th scope="row">(.*?)</th>\s*<td>(.*?)</td>\s*<td>(.*?)</td>', page, re.S
    )
    return [(as_text(a), as_text(b), as_text(c)) for a, b, c in rows]


def as_root(vault: Context, method: str, path: str, body: Any = None) -> Any:
    with client_for(vault) as root:
        response = root.request(method, path, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def as_user(vault: Context, user_token: str, method: str, path: str, body: Any = None) -> Any:
    with client_for(vault, issue_user_token(vault, user_token)) as client:
        response = client.request(method, path, json=body)
    assert response.status_code == 200, response.text
    return response.json()


class FormControls(HTMLParser):
    """Collects a page's visible form controls and the ids its labels name."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, str | None]] = []
        self.label_targets: set[str] = set()
        self._open_labels = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "label":
            self._open_labels += 1
            if found.get("for"):
                self.label_targets.add(str(found["for"]))
        elif tag in ("input", "select", "textarea") and found.get("type") != "hidden":
            self.controls.append({**found, "wrapped": "yes" if self._open_labels else None})

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._open_labels -= 1

    def unlabelled(self) -> list[dict[str, str | None]]:
        return [
            c
            for c in self.controls
            if not c["wrapped"]
            and not c.get("aria-label")
            and c.get("id") not in self.label_targets
        ]


# --- navigation and labels -----------------------------------------------------------------


def test_the_navigation_reaches_every_page(signed_in: TestClient) -> None:
    page = signed_in.get("/apps").text
    nav = re.search(r'<nav aria-label="Main">(.*?)</nav>', page, re.S)
    assert nav is not None
    links = re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', nav.group(1))
    assert links == [
        ("/profile", "Profile"),
        ("/apps", "Apps"),
        ("/sessions", "Sessions"),
        ("/consents", "Consents"),
        ("/requests", "Requests"),
        ("/audit", "History"),
        ("/forget", "Erase my data"),
    ]
    assert '<a href="/apps" aria-current="page">' in nav.group(1)
    assert "Sign out</button>" in nav.group(1)


def test_every_form_control_is_labelled(
    signed_in: TestClient, portal_vault: Context, ann: str
) -> None:
    asked = as_user(portal_vault, ann, "DELETE", f"/v1/user/token/{ann}")
    as_root(portal_vault, "POST", f"/v1/userapp/token/{ann}/shop", {"plan": "gold"})
    paths = ["/profile", "/apps", "/sessions", "/consents", "/requests", "/audit", "/forget"]
    for path in [*paths, f"/requests/{asked['rtoken']}"]:
        response = signed_in.get(path)
        assert response.status_code == 200, path
        parser = FormControls()
        parser.feed(response.text)
        assert parser.unlabelled() == [], path
    signed_in.cookies.clear()
    parser = FormControls()
    parser.feed(signed_in.get("/").text)
    assert len(parser.controls) >= 3
    assert parser.unlabelled() == []


# --- application records -------------------------------------------------------------------


def test_apps_page_shows_each_record(
    signed_in: TestClient, portal_vault: Context, ann: str
) -> None:
    assert "No application keeps a record about you." in signed_in.get("/apps").text
    shop = {
        "plan": "gold",
        "address": {"city": "Oslo", "lines": ["1 Main St", XSS]},
        "password": "hunter2",
        "note": XSS,
    }
    as_root(portal_vault, "POST", f"/v1/userapp/token/{ann}/shop", shop)
    as_root(portal_vault, "POST", f"/v1/userapp/token/{ann}/forum", {"nick": "annie", "posts": 3})
    bob = create_user_in(portal_vault, BOB)
    as_root(portal_vault, "POST", f"/v1/userapp/token/{bob}/bank", {"iban": "NO9386011117947"})

    response = signed_in.get("/apps")
    assert response.status_code == 200
    page = response.text
    headings = re.findall(r'<h2 id="app-\d+">([^<]+)</h2>', page)
    assert headings == ["forum", "shop"]
    shown = as_text(page)
    assert "Nick annie Posts 3" in shown
    assert "Plan gold" in shown
    assert "Address \u203a City Oslo" in shown  # nested values as fields, not JSON
    assert "Address \u203a Lines 1 Main St, " + XSS in shown
    assert preformatted(page) == []
    assert "hunter2" not in page  # shown masked, as on the profile page
    assert "bank" not in page
    assert "NO9386011117947" not in page
    assert XSS not in page
    assert page.count(ESCAPED) == 2  # the note, and inside the nested address
    assert "You viewed the data applications keep about you." in signed_in.get("/audit").text


def create_user_in(vault: Context, profile: dict[str, Any]) -> str:
    with client_for(vault) as root:
        return create_user(root, profile)


# --- sessions ------------------------------------------------------------------------------


def test_sessions_page_shows_sessions(
    signed_in: TestClient, portal_vault: Context, ann: str, clock: Clock
) -> None:
    assert "You have no open sessions." in signed_in.get("/sessions").text
    session = str(uuid.uuid4())
    started = clock.now
    data = {"token": ann, "cart": ["book"], "theme": XSS, "expiration": "900s"}
    as_root(portal_vault, "POST", f"/v1/session/{session}", data)
    clock.advance(120)
    as_root(portal_vault, "POST", f"/v1/session/{session}", {**data, "cart": ["book", "pen"]})
    bob = create_user_in(portal_vault, BOB)
    other = str(uuid.uuid4())
    as_root(portal_vault, "POST", f"/v1/session/{other}", {"token": bob, "theme": "bobs"})

    response = signed_in.get("/sessions")
    assert response.status_code == 200
    page = response.text
    shown = as_text(page)
    assert f"Session started {when(started)}" in shown
    assert f"Last used {when(clock.now)} · ends {when(clock.now + 900)}" in shown
    assert "Expiration 900s" in shown
    assert "Cart book, pen" in shown
    assert preformatted(page) == []  # no raw JSON
    assert ann not in page  # nor the record's token
    assert ESCAPED in page
    assert XSS not in page
    assert session not in page  # the session id is the application's cookie: not shown
    assert "bobs" not in page
    assert other not in page
    clock.advance(900)
    signed_in.cookies.set("databunker_session", issue_user_token(portal_vault, ann))
    assert "You have no open sessions." in signed_in.get("/sessions").text


# --- requests ------------------------------------------------------------------------------


@pytest.fixture
def strict_vault(make_vault, portal_vault: Context) -> Context:  # type: ignore[no-untyped-def]
    """The same database with self-service off: a person's changes wait for approval."""
    return make_vault(generic={"login_captcha": False})  # type: ignore[no-any-return]


def test_request_detail_shows_the_change_field_by_field(
    signed_in: TestClient, strict_vault: Context, portal_vault: Context, ann: str
) -> None:
    change = {"name": "Annie", "city": "Oslo", "note": None, "password": "s3cret"}
    asked = as_user(strict_vault, ann, "PUT", f"/v1/user/token/{ann}", change)
    assert asked["result"] == "request-created"
    rtoken = asked["rtoken"]

    listing = signed_in.get("/requests").text
    assert f'<a href="/requests/{rtoken}">Change to your profile</a>' in listing
    response = signed_in.get(f"/requests/{rtoken}")
    assert response.status_code == 200
    page = response.text
    shown = as_text(page)
    assert "Change to your profile" in shown
    assert "Status Waiting for approval" in shown
    assert "Reason none given" in shown
    assert diff_rows(page) == [
        ("City", "not set", "Oslo"),
        ("Name", "Ann", "Annie"),
        ("Note", XSS, "removed"),
        ("Password", "•••••• hidden", "•••••• changed"),
    ]
    assert "s3cret" not in page
    assert XSS not in page
    assert ESCAPED in page
    assert 'name="rtoken" value="' + rtoken + '"' in page  # it can be cancelled from here

    as_root(portal_vault, "DELETE", f"/v1/request/{rtoken}", {"reason": XSS})
    page = signed_in.get(f"/requests/{rtoken}").text
    assert "Status Rejected or cancelled" in as_text(page)
    assert f"Reason {XSS}" in as_text(page)
    assert XSS not in page
    assert 'name="rtoken"' not in page
    listing = signed_in.get("/requests").text
    assert XSS not in listing
    assert ESCAPED in listing


def test_request_detail_of_an_app_change_and_of_a_forget_me(
    signed_in: TestClient, strict_vault: Context, portal_vault: Context, ann: str
) -> None:
    as_root(portal_vault, "POST", f"/v1/userapp/token/{ann}/shop", {"plan": "gold", "n": 1})
    patch = [{"op": "replace", "path": "/plan", "value": {"tier": "platinum"}}]
    asked = as_user(strict_vault, ann, "PUT", f"/v1/userapp/token/{ann}/shop", patch)
    page = signed_in.get(f"/requests/{asked['rtoken']}").text
    assert "Change to data an application keeps" in page
    assert diff_rows(page) == [("Plan", "gold", '{ "tier": "platinum" }')]
    assert preformatted(page) == [{"tier": "platinum"}]

    # The record moved on and the patch no longer applies: the change is shown as asked.
    as_root(
        portal_vault, "PUT", f"/v1/userapp/token/{ann}/shop", [{"op": "remove", "path": "/plan"}]
    )
    page = signed_in.get(f"/requests/{asked['rtoken']}").text
    assert "It no longer applies" in page
    assert preformatted(page) == [patch]

    forget = as_user(strict_vault, ann, "DELETE", f"/v1/user/token/{ann}")
    page = signed_in.get(f"/requests/{forget['rtoken']}").text
    assert "<h1>Erase all my data</h1>" in page
    assert "The proposed change" not in page


def test_another_persons_request_looks_like_a_missing_one(
    signed_in: TestClient, portal_vault: Context
) -> None:
    bob = create_user_in(portal_vault, BOB)
    bobs = as_user(portal_vault, bob, "DELETE", f"/v1/user/token/{bob}")["rtoken"]
    theirs = signed_in.get(f"/requests/{bobs}")
    missing = signed_in.get(f"/requests/{uuid.uuid4()}")
    assert theirs.status_code == missing.status_code == 403
    assert theirs.text == missing.text
    assert "forget-me" not in theirs.text
    assert signed_in.get("/requests/not-a-request").status_code == 400

    csrf = csrf_of(signed_in.get("/requests").text)
    refused = signed_in.post("/requests/cancel", data={"csrf": csrf, "rtoken": bobs})
    assert refused.status_code == 403
    assert "access denied" in refused.text
    assert signed_in.get("/profile").status_code == 200  # refused, yet still signed in
    rows = as_root(portal_vault, "GET", f"/v1/requests/token/{bob}")["rows"]
    assert [(r["rtoken"], r["status"]) for r in rows] == [(bobs, "open")]


# --- history -------------------------------------------------------------------------------


def add_events(vault: Context, clock: Clock, user_token: str, count: int) -> None:
    """``count`` events titled ``event 00``... one second apart; ``event 05`` carries markup."""
    for number in range(count):
        clock.advance(1)
        event = AuditEvent(
            title=f"event {number:02d}",
            mode="token",
            user_token=user_token,
            accessor="root",
            msg=XSS if number == 5 else None,
        )
        with vault.database.transaction() as conn:
            save_event(conn, event, clock.now)


def history_lines(page: str) -> list[str]:
    return [
        as_text(line) for line in re.findall(r"<li><span class=\"meta\">(.*?)</li>", page, re.S)
    ]


def test_history_pages_by_fifty(
    signed_in: TestClient, portal_vault: Context, ann: str, clock: Clock
) -> None:
    add_events(portal_vault, clock, ann, 60)  # with "create user record": 61 events

    first = signed_in.get("/audit")
    assert first.status_code == 200
    assert "Newest first. Entries 1 to 50 of 61." in first.text
    lines = history_lines(first.text)
    assert len(lines) == 50  # another service's events are not folded together
    assert all(line.endswith("Our service used your data.") for line in lines)
    assert re.findall(r'<a href="([^"]+)" rel="(prev|next)">(\w+)</a>', first.text) == [
        ("/audit?offset=50", "next", "Older")
    ]

    # Reading the first page was itself an event: 62 now.
    second = signed_in.get("/audit?offset=50")
    assert "Newest first. Entries 51 to 62 of 62." in second.text
    lines = history_lines(second.text)
    assert len(lines) == 12
    assert lines[-1].endswith("Our service created your profile.")
    assert re.findall(r'<a href="([^"]+)" rel="(prev|next)">(\w+)</a>', second.text) == [
        ("/audit", "prev", "Newer")
    ]
    assert XSS not in second.text
    assert ESCAPED not in second.text  # messages are the service's, not shown to people

    beyond = signed_in.get("/audit?offset=100")
    assert "No events on this page." in beyond.text
    assert '<a href="/audit?offset=50" rel="prev">Newer</a>' in beyond.text

    for bad in ("-1", "abc", "1.5", "+5", "\u0663", "\u00b2", "1e3", "9999999999", "0x10"):
        response = signed_in.get("/audit", params={"offset": bad})
        assert response.status_code == 400, bad
        assert "bad offset" in response.text
    assert signed_in.get("/profile").status_code == 200


def test_history_pages_count_the_lines_a_person_reads(
    signed_in: TestClient, portal_vault: Context, ann: str, clock: Clock
) -> None:
    add_events(portal_vault, clock, ann, 55)
    for number in range(20):  # 20 events, one line: "You viewed these pages: ..."
        clock.advance(1)
        assert signed_in.get("/profile" if number % 2 else "/consents").status_code == 200
    # 76 events, 57 lines: the 20 page reads, 55 of another service's, the profile created.

    first = signed_in.get("/audit")
    assert "Newest first. Entries 1 to 50 of 57." in first.text
    lines = history_lines(first.text)
    assert len(lines) == 50
    assert lines[0].endswith("You viewed these pages: Profile, Consents.")
    assert re.findall(r'<a href="([^"]+)" rel="(prev|next)">(\w+)</a>', first.text) == [
        ("/audit?offset=50", "next", "Older")
    ]

    # Reading the history joins the line of page reads: still 57 lines.
    second = signed_in.get("/audit?offset=50")
    assert "Newest first. Entries 51 to 57 of 57." in second.text
    lines = history_lines(second.text)
    assert len(lines) == 7
    assert lines[-1].endswith("Our service created your profile.")
    assert re.findall(r'<a href="([^"]+)" rel="(prev|next)">(\w+)</a>', second.text) == [
        ("/audit", "prev", "Newer")
    ]
    again = history_lines(signed_in.get("/audit").text)
    assert again[0].endswith("You viewed these pages: History, Profile, Consents.")
    assert again[1:] == history_lines(first.text)[1:]


def test_history_tells_events_as_sentences_and_folds_page_reads(
    signed_in: TestClient, portal_vault: Context, ann: str
) -> None:
    for path in ("/profile", "/consents", "/profile", "/audit"):
        assert signed_in.get(path).status_code == 200
    as_root(portal_vault, "PUT", f"/v1/user/token/{ann}", {"name": "Annie"})
    page = signed_in.get("/audit").text
    lines = history_lines(page)
    assert lines[0].endswith("Our service changed your profile.")
    assert lines[1].endswith("You viewed these pages: History, Profile, Consents.")
    assert lines[2].endswith("Our service created your profile.")
    assert len(lines) == 3
    assert re.search(r"<h2>\w+day, \w+ \d+, \d{4}</h2>", page)  # grouped by day
    assert ann not in page
    assert "token" not in as_text(page).lower()


def test_history_escapes_titles_and_messages(
    signed_in: TestClient, portal_vault: Context, ann: str, clock: Clock
) -> None:
    event = AuditEvent(title=XSS, mode="token", user_token=ann, msg=XSS)
    with portal_vault.database.transaction() as conn:
        save_event(conn, event, clock.now)
    page = signed_in.get("/audit").text
    assert XSS not in page
    assert "You used your data." in page


# --- sign-in with the captcha --------------------------------------------------------------


def captcha_of(page: str) -> str:
    found = re.search(r'name="captcha" value="([^"]+)"', page)
    assert found is not None, page
    assert f'<img class="captcha" src="/v1/captcha/{found.group(1)}"' in page
    return found.group(1)


def answer_of(vault: Context, captcha_id: str) -> str:
    """The digits the captcha's picture shows (read as the server reads them)."""
    with vault.database.transaction() as conn:
        answer = captcha.live_answer(Work(vault, conn, ANONYMOUS, vault.clock()), captcha_id)
    assert answer is not None
    return answer


def emails(vault: Context) -> list[dict[str, Any]]:
    key = vault.keyring.service_key("outbox")
    with vault.database.transaction() as conn:
        rows = conn.execute(sa.select(outbox).order_by(outbox.c.id)).all()
    return [open_payload(key, row.id, row.payload) for row in rows if row.kind == "email"]


def test_sign_in_with_the_captcha_on(make_vault) -> None:  # type: ignore[no-untyped-def]
    vault = make_vault(smtp={"server": "127.0.0.1"})  # the captcha is on by default
    create_user_in(vault, ANN)
    with client_for(vault, None) as browser:
        browser.follow_redirects = False
        start = browser.get("/")
        assert "img-src 'self' data:" in start.headers["content-security-policy"]
        first = captcha_of(start.text)
        picture = browser.get(f"/v1/captcha/{first}")
        assert picture.status_code == 200
        assert picture.headers["content-type"] == "image/png"
        assert picture.content.startswith(b"\x89PNG")

        answer = answer_of(vault, first)
        wrong = f"{(int(answer) + 1) % 1_000_000:06d}"
        form = {"csrf": csrf_of(start.text), "mode": "email", "identity": ANN["email"]}
        refused = browser.post("/signin", data={**form, "captcha": first, "answer": wrong})
        assert "The digits did not match. Try the new picture." in refused.text
        assert "Sign in to see your data" in refused.text
        assert (
            f'name="identity" type="text" autocomplete="email" value="{ANN["email"]}"'
            in refused.text
        )
        second = captcha_of(refused.text)
        assert second != first
        assert browser.get(f"/v1/captcha/{first}").status_code == 404  # spent
        assert browser.get(f"/v1/captcha/{second}").status_code == 200
        assert emails(vault) == []

        right = {**form, "captcha": second, "answer": answer_of(vault, second)}
        sent = browser.post("/signin", data=right)
        assert sent.status_code == 200
        assert "Enter your code" in sent.text
        [message] = emails(vault)
        assert message["to"] == ANN["email"]
        code = re.search(r"\b(\d{6})\b", message["text"])
        assert code is not None
        signed = browser.post("/code", data={**form, "code": code.group(1)})
        assert signed.status_code == 303
        assert signed.headers["location"] == "/profile"
        assert browser.get("/profile").status_code == 200

        # A captcha counts once, even with the right answer.
        again = browser.post(
            "/signin", data={**right, "csrf": csrf_of(browser.get("/profile").text)}
        )
        assert "The digits did not match." in again.text
