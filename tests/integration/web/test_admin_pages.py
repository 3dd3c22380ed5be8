"""The admin portal's pages through the ASGI app: its session, CSRF, and what each page does.

Effects are checked through the API, as an integrator would see them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from databunker.app import build_app
from databunker.jobs import run_jobs
from databunker.services.audit import save_event
from databunker.services.context import AuditEvent, Context
from databunker.web import admin
from support.vaults import ROOT_TOKEN, Clock, client_for, create_user, issue_user_token

XSS = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
ANN = {"email": "ann@example.com", "phone": "+4915112345678", "name": "Ann"}
SESSION_SECONDS = 30 * 60


@pytest.fixture
def admin_vault(make_vault) -> Context:  # type: ignore[no-untyped-def]
    return make_vault(generic={"login_captcha": False})


@pytest.fixture
def api(admin_vault: Context) -> Iterator[TestClient]:
    with client_for(admin_vault) as client:
        yield client


@pytest.fixture
def ann(api: TestClient) -> str:
    return create_user(api, ANN)


@pytest.fixture
def browser(admin_vault: Context) -> Iterator[TestClient]:
    with client_for(admin_vault, None) as client:
        client.follow_redirects = False
        yield client


@pytest.fixture
def dpo(browser: TestClient) -> TestClient:
    """A browser signed in to the admin portal."""
    signed = sign_in(browser)
    assert signed.status_code == 303, signed.text
    return browser


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, page
    return found.group(1)


def sign_in(browser: TestClient, token: str = ROOT_TOKEN):  # type: ignore[no-untyped-def]
    start = browser.get("/admin")
    assert start.status_code == 200
    return browser.post("/admin/signin", data={"csrf": csrf_of(start.text), "token": token})


def admin_cookie(response) -> str:  # type: ignore[no-untyped-def]
    return next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("databunker_admin=")
    )


def post_form(dpo: TestClient, page: str, action: str, data: dict[str, str]):  # type: ignore[no-untyped-def]
    csrf = csrf_of(dpo.get(page).text)
    return dpo.post(action, data={"csrf": csrf, **data})


def audit_rows(api: TestClient) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = api.get("/v1/audit/admin?limit=100").json()["rows"]
    return rows


def open_request(api: TestClient, admin_vault: Context, person: str, change: object = None) -> str:
    """A person's request awaiting approval: a profile change, or erasure if ``change`` is None."""
    with client_for(admin_vault, issue_user_token(admin_vault, person)) as own:
        if change is None:
            answer = own.delete(f"/v1/user/token/{person}")
        else:
            answer = own.put(f"/v1/user/token/{person}", json=change)
    assert answer.json()["result"] == "request-created", answer.text
    return str(answer.json()["rtoken"])


def request_row(api: TestClient, rtoken: str, status: str) -> dict[str, str]:
    rows = api.get(f"/v1/requests?status={status}&limit=100").json()["rows"]
    return next(r for r in rows if r["rtoken"] == rtoken)


# --- signing in ----------------------------------------------------------------------------


def test_sign_in_with_the_root_token_gives_a_strict_session_cookie(
    browser: TestClient, api: TestClient
) -> None:
    signed = sign_in(browser)
    assert signed.status_code == 303
    assert signed.headers["location"] == "/admin"
    cookie = admin_cookie(signed)
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert f"Max-Age={SESSION_SECONDS}" in cookie
    assert "Path=/admin" in cookie
    assert "Secure" not in cookie  # plain http here
    session = cookie.split(";")[0].split("=", 1)[1]
    assert session
    assert ROOT_TOKEN not in cookie
    dashboard = browser.get("/admin")
    assert dashboard.status_code == 200
    assert "<h1>Dashboard</h1>" in dashboard.text
    assert session not in dashboard.text
    assert ROOT_TOKEN not in dashboard.text
    event = next(r for r in audit_rows(api) if r["title"] == "admin sign in")
    assert event["status"] == "ok"
    assert event["identity"] == "root"


def test_the_session_cookie_is_secure_over_https(admin_vault: Context) -> None:
    with TestClient(build_app(admin_vault), base_url="https://testserver") as client:
        client.follow_redirects = False
        cookie = admin_cookie(sign_in(client))
    assert "Secure" in cookie


def test_a_wrong_token_signs_nobody_in(
    browser: TestClient, api: TestClient, admin_vault: Context, ann: str
) -> None:
    wrong = [str(uuid.uuid4()), "not a token", "", issue_user_token(admin_vault, ann)]
    pages = []
    for token in wrong:
        refused = sign_in(browser, token)
        assert refused.status_code == 403, token
        assert "This token is not valid." in refused.text
        assert "databunker_admin" not in refused.headers.get("set-cookie", "")
        pages.append(refused.text.replace(csrf_of(refused.text), "CSRF"))
    assert len(set(pages)) == 1  # the same answer whatever was wrong
    failures = [r for r in audit_rows(api) if r["title"] == "admin sign in"]
    assert len(failures) == len(wrong)
    assert {r["status"] for r in failures} == {"error"}
    assert browser.get("/admin/requests").status_code == 303


def test_failed_sign_ins_are_rate_limited_per_address(browser: TestClient, clock: Clock) -> None:
    for _ in range(10):
        assert sign_in(browser, str(uuid.uuid4())).status_code == 403
    limited = sign_in(browser, str(uuid.uuid4()))
    assert limited.status_code == 429
    assert "Too many sign-in attempts" in limited.text
    # the right token does not get through the limit either
    assert sign_in(browser).status_code == 429
    clock.advance(15 * 60 + 1)
    assert sign_in(browser).status_code == 303


def test_an_admin_session_is_no_api_token(dpo: TestClient, admin_vault: Context, ann: str) -> None:
    session = dpo.cookies["databunker_admin"]
    with client_for(admin_vault, session) as client:
        assert client.get("/v1/requests").status_code == 403
        assert client.get(f"/v1/user/token/{ann}").status_code == 403
        assert client.get("/v1/audit/admin").status_code == 403
    with client_for(admin_vault) as root:
        assert root.get("/v1/requests").status_code == 200


def test_api_tokens_are_no_admin_session(
    browser: TestClient, admin_vault: Context, ann: str
) -> None:
    for token in (ROOT_TOKEN, issue_user_token(admin_vault, ann)):
        browser.cookies.set("databunker_admin", token, path="/admin")
        response = browser.get("/admin/requests")
        assert response.status_code == 303
        assert response.headers["location"] == "/admin"
        assert 'databunker_admin=""' in response.headers["set-cookie"]
        browser.cookies.clear()


def test_a_person_session_gives_no_admin_access(
    browser: TestClient, admin_vault: Context, ann: str
) -> None:
    browser.cookies.set("databunker_session", issue_user_token(admin_vault, ann))
    for path in ("/admin/requests", "/admin/audit", f"/admin/user/{ann}"):
        response = browser.get(path)
        assert response.status_code == 303
        assert response.headers["location"] == "/admin"
    assert "Admin sign in" in browser.get("/admin").text


def _sample_path(route: Route) -> str:
    values = {
        "rtoken": str(uuid.uuid4()),
        "atoken": str(uuid.uuid4()),
        "token": str(uuid.uuid4()),
        "brief": "core-send-email-on-login",
        "activity": "some-activity",
        "name": "admin.css",
    }
    return route.path.format(**{name: values[name] for name in route.param_convertors})


def _admin_routes(method: str) -> list[Route]:
    return [r for r in admin.routes if method in (r.methods or set())]


def test_every_admin_page_needs_a_session(browser: TestClient) -> None:
    pages = [r for r in _admin_routes("GET") if r.path not in ("/admin", "/admin/static/{name}")]
    assert len(pages) >= 10
    for route in pages:
        response = browser.get(_sample_path(route))
        assert response.status_code == 303, route.path
        assert response.headers["location"] == "/admin"
    start = browser.get("/admin")
    assert "Admin sign in" in start.text
    assert start.headers["cache-control"] == "no-store"


def test_every_admin_form_needs_the_csrf_token(
    dpo: TestClient, browser: TestClient, api: TestClient
) -> None:
    forms = _admin_routes("POST")
    assert len(forms) >= 9
    form = {"brief": "forged", "shortdesc": "Forged", "activity": "forged", "token": ROOT_TOKEN}
    for route in forms:
        for data in (form, {**form, "csrf": "forged"}):
            response = dpo.post(_sample_path(route), data=data)
            assert response.status_code == 403, route.path
            assert "access denied" in response.text
    assert "forged" not in {b["brief"] for b in api.get("/v1/lbasis").json()["rows"]}
    assert dpo.get("/admin/requests").status_code == 200  # still signed in
    dpo.cookies.clear()
    for route in forms:  # and without any session: refused too
        assert dpo.post(_sample_path(route), data=form).status_code == 403, route.path


def test_admin_pages_carry_the_page_csp(dpo: TestClient, ann: str) -> None:
    for path in ("/admin", "/admin/requests", "/admin/audit", "/admin/legal", f"/admin/user/{ann}"):
        response = dpo.get(path)
        assert response.status_code == 200, path
        csp = response.headers["content-security-policy"]
        assert "unsafe-inline" not in csp
        assert "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert response.headers["cache-control"] == "no-store"
        assert '<meta name="viewport"' in response.text
    assert dpo.get("/admin/static/admin.css").headers["content-type"].startswith("text/css")
    assert dpo.get("/admin/static/other.css").status_code == 404


def test_an_expired_admin_session_signs_out(dpo: TestClient, clock: Clock) -> None:
    assert dpo.get("/admin/requests").status_code == 200
    clock.advance(SESSION_SECONDS + 1)
    expired = dpo.get("/admin/requests")
    assert expired.status_code == 303
    assert expired.headers["location"] == "/admin"
    assert 'databunker_admin=""' in expired.headers["set-cookie"]
    assert "Admin sign in" in dpo.get("/admin").text


def test_expired_admin_sessions_are_purged(
    dpo: TestClient, admin_vault: Context, clock: Clock
) -> None:
    assert run_jobs(admin_vault)["purge expired admin sessions"] == 0
    clock.advance(SESSION_SECONDS)
    assert run_jobs(admin_vault)["purge expired admin sessions"] == 1


def test_sign_out_revokes_the_session(dpo: TestClient, api: TestClient) -> None:
    session = dpo.cookies["databunker_admin"]
    out = post_form(dpo, "/admin", "/admin/signout", {})
    assert out.status_code == 303
    assert out.headers["location"] == "/admin?done=signed-out"
    assert 'databunker_admin=""' in out.headers["set-cookie"]
    assert "You are signed out." in dpo.get(out.headers["location"]).text
    dpo.cookies.set("databunker_admin", session, path="/admin")
    assert dpo.get("/admin/requests").status_code == 303  # revoked on the server, not just here
    assert any(r["title"] == "admin sign out" for r in audit_rows(api))


def test_a_new_sign_in_revokes_the_previous_session(browser: TestClient) -> None:
    first = admin_cookie(sign_in(browser)).split(";")[0].split("=", 1)[1]
    second = admin_cookie(sign_in(browser)).split(";")[0].split("=", 1)[1]
    assert first != second
    browser.cookies.clear()
    browser.cookies.set("databunker_admin", first, path="/admin")
    assert browser.get("/admin/requests").status_code == 303


# --- requests ------------------------------------------------------------------------------


def test_approve_a_profile_change_shown_as_a_diff(
    dpo: TestClient, api: TestClient, admin_vault: Context, ann: str
) -> None:
    rtoken = open_request(api, admin_vault, ann, {"name": "Annie", "city": "Berlin"})
    dashboard = dpo.get("/admin").text
    assert '<strong id="open-requests">1</strong>' in dashboard
    listing = dpo.get("/admin/requests").text
    assert f'href="/admin/requests/{rtoken}"' in listing
    assert "Profile change" in listing
    assert "change-profile" not in listing
    assert "ann@example.com" in listing  # the person by their email, beside the token
    detail = dpo.get(f"/admin/requests/{rtoken}").text
    assert (
        '<tr class="changed"><th scope="row">name</th><td data-label="Now" class="old">Ann</td>'
        '<td data-label="After approval" class="new">Annie</td>'
    ) in detail
    added = '<tr class="added"><th scope="row">city</th><td data-label="Now" class="old"></td>'
    assert added in detail
    assert "email" not in re.sub(r"<summary>.*", "", detail.split("What approving does")[1])

    approved = post_form(
        dpo, f"/admin/requests/{rtoken}", f"/admin/requests/{rtoken}/approve", {"reason": "ok"}
    )
    assert approved.status_code == 303
    assert approved.headers["location"] == f"/admin/requests/{rtoken}?done=approved"
    page = dpo.get(approved.headers["location"]).text
    assert '<dd id="request-status">Approved</dd>' in page
    assert "The change that was proposed:" in page
    assert "&#34;Annie&#34;" in page
    assert "The request was approved and carried out." in page
    assert api.get(f"/v1/user/token/{ann}").json()["data"]["name"] == "Annie"
    assert request_row(api, rtoken, "approved")["reason"] == "ok"
    assert any(r["title"] == "approve user request" for r in audit_rows(api))
    # a decided request cannot be decided again
    again = dpo.post(
        f"/admin/requests/{rtoken}/approve", data={"csrf": csrf_of(page), "reason": ""}
    )
    assert again.status_code == 409
    assert "wrong status: approved" in again.text


def test_approving_forget_me_erases_the_person(
    dpo: TestClient, api: TestClient, admin_vault: Context, ann: str
) -> None:
    rtoken = open_request(api, admin_vault, ann)
    detail = dpo.get(f"/admin/requests/{rtoken}").text
    assert "Erases the person" in detail
    post_form(dpo, f"/admin/requests/{rtoken}", f"/admin/requests/{rtoken}/approve", {})
    assert api.get(f"/v1/user/token/{ann}").json()["data"] == {}
    assert api.get(f"/v1/user/email/{ANN['email']}").status_code == 404
    assert "reason" not in request_row(api, rtoken, "approved")
    assert "This person was erased" in dpo.get(f"/admin/user/{ann}").text


def test_cancel_a_request_with_a_reason(
    dpo: TestClient, api: TestClient, admin_vault: Context, ann: str
) -> None:
    rtoken = open_request(api, admin_vault, ann)
    page = f"/admin/requests/{rtoken}"
    unexplained = post_form(dpo, page, f"{page}/cancel", {"reason": " "})
    assert unexplained.status_code == 400
    assert request_row(api, rtoken, "open")
    canceled = post_form(dpo, page, f"{page}/cancel", {"reason": "duplicate"})
    assert canceled.headers["location"] == f"{page}?done=canceled"
    assert request_row(api, rtoken, "canceled")["reason"] == "duplicate"
    assert api.get(f"/v1/user/token/{ann}").json()["data"]["name"] == "Ann"
    listing = dpo.get("/admin/requests?status=canceled").text
    assert "duplicate" in listing
    assert f'href="/admin/requests/{rtoken}"' not in dpo.get("/admin/requests").text
    assert dpo.get("/admin/requests?status=bogus").status_code == 400


# --- catalogue -----------------------------------------------------------------------------


def test_legal_basis_create_edit_delete(dpo: TestClient, api: TestClient) -> None:
    created = post_form(
        dpo,
        "/admin/legal/basis",
        "/admin/legal/save-basis",
        {
            "original": "",
            "brief": "newsletter",
            "shortdesc": "Newsletter",
            "fulldesc": "Monthly news",
            "basistype": "consent",
            "module": "signup-page",
            "status": "active",
            "usercontrol": "true",
            "requiredflag": "true",
            "requiredmsg": "Needed",
        },
    )
    assert created.headers["location"] == "/admin/legal?done=basis-saved"
    assert 'href="/admin/legal/basis/newsletter"' in dpo.get("/admin/legal").text

    def basis(brief: str) -> dict[str, object] | None:
        rows = api.get("/v1/lbasis").json()["rows"]
        return next((r for r in rows if r["brief"] == brief), None)

    assert basis("newsletter") == {
        **(basis("newsletter") or {}),
        "shortdesc": "Newsletter",
        "fulldesc": "Monthly news",
        "module": "signup-page",
        "usercontrol": True,
        "requiredflag": True,
        "requiredmsg": "Needed",
    }
    again = {"original": "", "brief": "newsletter"}
    duplicate = post_form(dpo, "/admin/legal/basis", "/admin/legal/save-basis", again)
    assert duplicate.status_code == 409
    assert (basis("newsletter") or {})["shortdesc"] == "Newsletter"

    edit_page = dpo.get("/admin/legal/basis/newsletter").text
    assert 'value="Newsletter"' in edit_page
    edited = dpo.post(
        "/admin/legal/save-basis",
        data={
            "csrf": csrf_of(edit_page),
            "original": "newsletter",
            "brief": "news",
            "shortdesc": "News",
            "fulldesc": "Weekly news",
            "basistype": "legitimate-interest",
            "module": "other",
            "status": "disabled",
            "requiredmsg": "Needed",
        },
    )
    assert edited.status_code == 303
    assert basis("newsletter") is None
    news = basis("news") or {}
    assert news["shortdesc"] == "News"
    assert news["basistype"] == "legitimate-interest"
    assert news["status"] == "disabled"
    assert news["usercontrol"] is False  # the unticked boxes
    assert news["requiredflag"] is False
    assert news["requiredmsg"] == ""

    deleted = post_form(
        dpo, "/admin/legal/basis/news", "/admin/legal/delete-basis", {"brief": "news"}
    )
    assert deleted.headers["location"] == "/admin/legal?done=basis-deleted"
    assert basis("news") is None
    assert dpo.get("/admin/legal/basis/news").status_code == 404


def test_activity_create_link_delete(dpo: TestClient, api: TestClient) -> None:
    for brief in ("analytics", "ads"):
        api.post(f"/v1/lbasis/{brief}", json={"shortdesc": brief.title(), "module": "cookie-popup"})

    def activity(name: str) -> dict[str, str] | None:
        rows = api.get("/v1/pactivity").json()["rows"]
        return next((r for r in rows if r["activity"] == name), None)

    new_page = dpo.get("/admin/legal/activity").text
    assert 'name="legalbasis" value="analytics"' in new_page
    created = dpo.post(
        "/admin/legal/save-activity",
        data={
            "csrf": csrf_of(new_page),
            "original": "",
            "activity": "tracking",
            "title": "Tracking",
            "script": "console.log('hi')",
            "fulldesc": "Counts visits",
            "applicableto": "web",
            "legalbasis": ["analytics", "ads"],
        },
    )
    assert created.headers["location"] == "/admin/legal?done=activity-saved"
    found = activity("tracking") or {}
    assert found["title"] == "Tracking"
    assert found["script"] == "console.log('hi')"
    assert sorted(found["legalbasis"].split(",")) == ["ads", "analytics"]

    edit_page = dpo.get("/admin/legal/activity/tracking").text
    assert "console.log(&#39;hi&#39;)" in edit_page
    assert 'value="ads" checked' in edit_page
    dpo.post(
        "/admin/legal/save-activity",
        data={
            "csrf": csrf_of(edit_page),
            "original": "tracking",
            "activity": "tracking",
            "title": "Tracking",
            "legalbasis": "analytics",
        },
    )
    assert (activity("tracking") or {})["legalbasis"] == "analytics"
    duplicate = dpo.post(
        "/admin/legal/save-activity",
        data={"csrf": csrf_of(edit_page), "original": "", "activity": "tracking"},
    )
    assert duplicate.status_code == 409

    deleted = dpo.post(
        "/admin/legal/delete-activity", data={"csrf": csrf_of(edit_page), "activity": "tracking"}
    )
    assert deleted.headers["location"] == "/admin/legal?done=activity-deleted"
    assert activity("tracking") is None


# --- people --------------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "value"), [("email", "ANN@example.com"), ("phone", ANN["phone"])])
def test_look_up_a_person(
    dpo: TestClient, api: TestClient, ann: str, admin_vault: Context, mode: str, value: str
) -> None:
    api.post("/v1/lbasis/newsletter", json={"shortdesc": "Newsletter"})
    api.post(f"/v1/agreement/newsletter/token/{ann}")
    api.post(f"/v1/userapp/token/{ann}/shop", json={"cart": 2})
    api.post(f"/v1/session/{uuid.uuid4()}", json={"token": ann, "ip": "10.0.0.1"})
    rtoken = open_request(api, admin_vault, ann)

    found = post_form(dpo, "/admin/users", "/admin/users/lookup", {"mode": mode, "value": value})
    assert found.status_code == 303
    assert found.headers["location"] == f"/admin/user/{ann}"
    page = dpo.get(found.headers["location"]).text
    assert "<dt>name</dt><dd>Ann</dd>" in page
    assert '"Legal basis">newsletter</td><td data-label="Status">yes</td>' in page
    assert "<h3>shop</h3>" in page
    assert "<dt>cart</dt><dd>2</dd>" in page  # the app record itself, not only its name
    assert "1 live session." in page
    assert "<dt>ip</dt><dd>10.0.0.1</dd>" in page  # and the session's data
    assert "<h1>ann@example.com</h1>" in page
    assert f'href="/admin/requests/{rtoken}"' in page
    assert '<td data-label="What">Profile read</td>' in page  # the trail in words
    assert "get user record by token" not in page
    trail = api.get(f"/v1/audit/list/{ann}?limit=100").json()["rows"]
    assert any(r["title"] == f"get user record by {mode}" for r in trail)

    unknown = post_form(
        dpo, "/admin/users", "/admin/users/lookup", {"mode": "email", "value": "no@example.com"}
    )
    assert unknown.status_code == 404
    assert "No person was found." in unknown.text
    assert "no@example.com" not in unknown.headers.get("location", "")


def test_audit_paging_and_filter(dpo: TestClient, api: TestClient, ann: str) -> None:
    bob = create_user(api, {"email": "bob@example.com"})
    for _ in range(55):
        api.get(f"/v1/user/token/{ann}")
    first = dpo.get("/admin/audit").text
    assert first.count("UTC</td>") == 50
    assert 'href="?page=2" rel="next"' in first
    assert 'rel="prev"' not in first
    second = dpo.get("/admin/audit?page=2").text
    total = len(audit_rows(api))  # the API's first page of 100 holds them all
    assert second.count("UTC</td>") == total - 50
    assert 'href="?page=1" rel="prev"' in second
    assert 'rel="next"' not in second
    only_bob = dpo.get(f"/admin/audit?token={bob}").text
    assert only_bob.count("UTC</td>") == 1
    assert "Profile created" in only_bob
    assert dpo.get("/admin/audit?token=nonsense").status_code == 400


def test_an_audit_event_shows_its_values(dpo: TestClient, api: TestClient, ann: str) -> None:
    api.put(f"/v1/user/token/{ann}", json={"name": "Annie"})
    trail = api.get(f"/v1/audit/list/{ann}").json()["rows"]
    event = next(r for r in trail if r["title"].startswith("change"))
    assert f'href="/admin/audit/{event["atoken"]}"' in dpo.get("/admin/audit").text
    page = dpo.get(f"/admin/audit/{event['atoken']}").text
    assert (
        '<th scope="row">name</th><td data-label="Before" class="old">Ann</td>'
        '<td data-label="After" class="new">Annie</td>'
    ) in page
    assert dpo.get(f"/admin/audit/{uuid.uuid4()}").status_code == 404


def test_stored_markup_renders_as_text(
    dpo: TestClient, api: TestClient, admin_vault: Context
) -> None:
    person = create_user(api, {"email": "eve@example.com", "nickname": XSS})
    changed = open_request(api, admin_vault, person, {"nickname": XSS + "!"})
    erasure = open_request(api, admin_vault, person)
    api.request("DELETE", f"/v1/request/{erasure}", json={"reason": XSS})
    with admin_vault.database.transaction() as conn:
        save_event(conn, AuditEvent(title="view audit events", msg=XSS), admin_vault.clock())
    for path in (
        f"/admin/user/{person}",
        f"/admin/requests/{changed}",
        f"/admin/requests/{erasure}",
        "/admin/requests?status=canceled",
        "/admin/audit",
    ):
        page = dpo.get(path).text
        assert XSS not in page, path
        assert ESCAPED in page, path
