"""The privacy portal's pages through the ASGI app: sign-in, session cookie, CSRF, escaping."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from databunker.services import login
from databunker.services.context import Vault
from support.vaults import ROOT_TOKEN, client_for, issue_user_token

CODE = "123456"
ANN = {"email": "ann@example.com", "name": "Ann", "note": "<script>alert(1)</script>"}


@pytest.fixture
def portal_vault(make_vault) -> Vault:  # type: ignore[no-untyped-def]
    return make_vault(generic={"login_captcha": False}, selfservice={"user_record_change": True})


@pytest.fixture
def ann(portal_vault: Vault) -> str:
    with client_for(portal_vault) as root:
        response = root.post("/v1/user", json=ANN)
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


@pytest.fixture
def browser(portal_vault: Vault) -> Iterator[TestClient]:
    with client_for(portal_vault, None) as client:
        client.follow_redirects = False
        yield client


@pytest.fixture
def signed_in(portal_vault: Vault, ann: str, browser: TestClient) -> TestClient:
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
    monkeypatch.setattr(login, "new_code", lambda: CODE)
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
    for path in ("/profile", "/consents", "/requests", "/audit", "/forget"):
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
    signed_in: TestClient, portal_vault: Vault, ann: str
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


def test_profile_edit_and_pending_change(make_vault, ann: str, portal_vault: Vault) -> None:  # type: ignore[no-untyped-def]
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
        assert "A change to your profile" in page


def test_profile_edit_applies_at_once_with_self_service(signed_in: TestClient) -> None:
    csrf = csrf_of(signed_in.get("/profile").text)
    saved = signed_in.post("/profile/save", data={"csrf": csrf, "field:name": "Annie"})
    assert saved.headers["location"] == "/profile?done=saved"
    page = signed_in.get(saved.headers["location"]).text
    assert 'value="Annie"' in page
    assert "Your profile was saved." in page


def test_consents_give_and_withdraw(signed_in: TestClient, portal_vault: Vault, ann: str) -> None:
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
    assert "forget-me" in page
    rtoken = re.search(r'name="rtoken" value="([^"]+)"', page)
    assert rtoken is not None
    signed_in.post("/requests/cancel", data={"csrf": csrf, "rtoken": rtoken.group(1)})
    page = signed_in.get("/requests").text
    assert "canceled" in page
    assert "user operation" in page


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


def test_sign_out_revokes_the_token(portal_vault: Vault, ann: str, browser: TestClient) -> None:
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
    assert "get user record by token" in page
    assert "create user record" in page


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
