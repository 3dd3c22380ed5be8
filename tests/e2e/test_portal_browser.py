"""The privacy and admin portals in a real browser: Debian's Chromium driven by Playwright.

A real ``databunker serve`` process sends login codes through a real SMTP server; the person
signs in with the code from the email, edits the profile, withdraws a consent, downloads the
export and asks to be forgotten, each step checked on the page. Then the DPO, in a browser
context of their own, signs in to ``/admin`` with the root token and approves the erasure,
and the person can no longer sign in. Other tests prove stored markup renders as text on
both portals. Screenshots of the main pages go to ``test-artifacts/``.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from support.mail import MailServer
from support.server import ServerProcess, run_cli

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
EMAIL = "ann.portal@example.com"
XSS = "<script>alert(1)</script>"
CODE = re.compile(r"\b(\d{6})\b")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: scripts/test installs the Debian package")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def mail() -> Iterator[MailServer]:
    with MailServer() as server:
        yield server


@pytest.fixture
def server(
    database_url: str, tmp_path: Path, mail: MailServer
) -> Iterator[tuple[ServerProcess, str]]:
    result = run_cli(["init", "--db", database_url], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    values = dict(
        line.split("=", 1) for line in result.stdout.splitlines() if line.startswith("DATABUNKER_")
    )
    env = {
        "DATABUNKER_MASTERKEY": values["DATABUNKER_MASTERKEY"].strip(),
        "SERVER_JOBS_INTERVAL": "1",
        "GENERIC_LOGIN_CAPTCHA": "false",
        "SELFSERVICE_USER_RECORD_CHANGE": "true",
        "SMTP_SERVER": "127.0.0.1",
        "SMTP_PORT": str(mail.port),
        "SMTP_SECURITY": "none",
        "SMTP_SENDER": "vault@example.org",
        "UI_COMPANY_TITLE": "Acme Privacy",
    }
    with ServerProcess(["serve", "--db", database_url], env, cwd=tmp_path) as process:
        yield process, values["DATABUNKER_ROOTTOKEN"].strip()


@contextmanager
def phone_page(browser: Browser) -> Iterator[Page]:
    """A page in a browser context of its own (its own cookies), phone-sized; it fails the
    test if any script opened a dialog."""
    context = browser.new_context(viewport={"width": 390, "height": 844})
    opened = context.new_page()
    dialogs: list[str] = []
    opened.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    yield opened
    context.close()
    assert dialogs == [], "a script ran from stored data"


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with phone_page(browser) as opened:
        yield opened


def as_root(server: ServerProcess, root: str, method: str, path: str, body: Any = None) -> Any:
    response = httpx.request(
        method, server.url + path, json=body, headers={"X-Bunker-Token": root}, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()


def shot(page: Page, name: str, portal: str = "portal") -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{portal}-{name}.png"), full_page=True)


def sign_in(page: Page, server: ServerProcess, mail: MailServer, *, screenshots: bool) -> None:
    before = len(mail.messages)
    page.goto(server.url + "/")
    expect(page.get_by_role("heading", name="Sign in to see your data")).to_be_visible()
    expect(page.get_by_text("Acme Privacy")).to_be_visible()
    page.get_by_label("Email address or phone number").fill(EMAIL)
    if screenshots:
        shot(page, "sign-in")
    page.get_by_role("button", name="Send me a code").click()
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    message = mail.wait_for(before + 1, timeout=30)[-1]
    assert message.envelope_to == [EMAIL]
    found = CODE.search(message.text)
    assert found is not None
    page.get_by_label("Code").fill(found.group(1))
    if screenshots:
        shot(page, "code")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Your profile")).to_be_visible()
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["databunker_session"]
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Strict"
    assert session["value"] not in page.url
    stored = page.evaluate("() => JSON.stringify(Object.assign({}, localStorage))")
    assert stored == "{}"


def admin_sign_in(dpo: Page, server: ServerProcess, root: str, *, screenshots: bool) -> None:
    dpo.goto(server.url + "/admin")
    expect(dpo.get_by_role("heading", name="Admin sign in")).to_be_visible()
    dpo.get_by_label("Root token").fill(str(uuid.uuid4()))
    dpo.get_by_role("button", name="Sign in").click()
    expect(dpo.get_by_role("alert")).to_have_text("This token is not valid.")
    if screenshots:
        shot(dpo, "sign-in", "admin")
    dpo.get_by_label("Root token").fill(root)
    dpo.get_by_role("button", name="Sign in").click()
    expect(dpo.get_by_role("heading", name="Dashboard")).to_be_visible()
    cookies = {c["name"]: c for c in dpo.context.cookies()}
    session = cookies["databunker_admin"]
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Strict"
    assert session["value"] != root
    assert "databunker_session" not in cookies
    stored = dpo.evaluate("() => JSON.stringify(Object.assign({}, localStorage))")
    assert stored == "{}"
    assert root not in dpo.content()


def test_a_person_uses_the_portal(
    page: Page, browser: Browser, server: tuple[ServerProcess, str], mail: MailServer
) -> None:
    process, root = server
    token = as_root(process, root, "POST", "/v1/user", {"email": EMAIL, "name": "Ann"})["token"]
    as_root(
        process,
        root,
        "POST",
        "/v1/lbasis/newsletter",
        {"shortdesc": "Monthly newsletter", "fulldesc": "News by email", "usercontrol": True},
    )
    as_root(process, root, "POST", f"/v1/agreement/newsletter/token/{token}")

    sign_in(page, process, mail, screenshots=True)

    # the profile: see it, edit it; self-service applies the change at once
    name = page.get_by_label("name", exact=True)
    expect(name).to_have_value("Ann")
    shot(page, "profile")
    name.fill("Annie")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Your profile was saved.")
    expect(page.get_by_label("name", exact=True)).to_have_value("Annie")
    assert as_root(process, root, "GET", f"/v1/user/token/{token}")["data"]["name"] == "Annie"

    # consents: the legal basis texts, then a withdrawal
    page.get_by_role("link", name="Consents").click()
    newsletter = page.locator("#consent-newsletter")
    expect(newsletter).to_contain_text("Monthly newsletter")
    expect(newsletter).to_contain_text("News by email")
    expect(newsletter).to_contain_text("Consent: yes")
    shot(page, "consents")
    page.get_by_role("button", name="Withdraw consent: Monthly newsletter").click()
    expect(page.get_by_role("status")).to_have_text("Your consent was withdrawn.")
    expect(page.locator("#consent-newsletter")).to_contain_text("Consent: no")
    agreement = as_root(process, root, "GET", f"/v1/agreement/newsletter/token/{token}")
    assert agreement["data"]["status"] == "no"

    # the export, as a file download
    page.get_by_role("link", name="Profile").click()
    with page.expect_download() as downloading:
        page.get_by_role("button", name="Download all my data").click()
    download = downloading.value
    assert download.suggested_filename == "my-data.json"
    exported = json.loads(Path(download.path()).read_text())
    assert exported["token"] == token
    assert exported["profile"]["name"] == "Annie"
    assert any(a["brief"] == "newsletter" for a in exported["agreements"])

    # the trail of what happened
    page.get_by_role("link", name="History").click()
    expect(page.get_by_role("cell", name="change user record by token").first).to_be_visible()
    expect(page.get_by_role("cell", name="withdraw agreement for newsletter").first).to_be_visible()
    shot(page, "audit")

    # forget me: a confirmation step, then a request waiting for the DPO
    page.get_by_role("link", name="Forget me").click()
    shot(page, "forget-me")
    button = page.get_by_role("button", name="Forget me")
    button.click()  # the required box is not ticked: nothing is sent
    expect(page.get_by_role("heading", name="Forget me")).to_be_visible()
    page.get_by_label("I understand, forget all my data").check()
    button.click()
    expect(page.get_by_role("status").first).to_have_text(
        "Your request to be forgotten waits for approval."
    )
    expect(
        page.get_by_text("Your request to be forgotten waits for approval (since")
    ).to_be_visible()
    page.get_by_role("link", name="Requests").click()
    expect(page.get_by_role("cell", name="forget-me")).to_be_visible()
    expect(page.get_by_role("cell", name="open", exact=True)).to_be_visible()
    shot(page, "requests")
    open_requests = as_root(process, root, "GET", "/v1/requests")["rows"]
    assert [r["action"] for r in open_requests] == ["forget-me"]

    # signing out ends the session
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to see your data")).to_be_visible()
    page.goto(process.url + "/profile")
    expect(page.get_by_role("heading", name="Sign in to see your data")).to_be_visible()

    # the DPO, in a browser of their own, approves the erasure
    with phone_page(browser) as dpo:
        admin_sign_in(dpo, process, root, screenshots=True)
        expect(dpo.locator("#open-requests")).to_have_text("1")
        shot(dpo, "dashboard", "admin")
        dpo.get_by_role("link", name="Requests", exact=True).click()
        expect(dpo.get_by_role("heading", name="Requests")).to_be_visible()
        shot(dpo, "requests", "admin")
        dpo.get_by_role("link", name="forget-me").click()
        expect(dpo.get_by_role("heading", name="Request: forget-me")).to_be_visible()
        expect(dpo.locator("#request-status")).to_have_text("open")
        expect(dpo.get_by_text("Erases the person")).to_be_visible()
        shot(dpo, "request", "admin")
        dpo.get_by_label("Reason (optional)").fill("Identity checked")
        dpo.get_by_role("button", name="Approve").click()
        expect(dpo.get_by_role("status")).to_have_text("The request was approved and carried out.")
        expect(dpo.locator("#request-status")).to_have_text("approved")
        expect(dpo.locator("#request-reason")).to_have_text("Identity checked")
        assert as_root(process, root, "GET", f"/v1/user/token/{token}")["data"] == {}
        assert as_root(process, root, "GET", "/v1/requests")["rows"] == []

        dpo.get_by_role("link", name="Audit").click()
        expect(dpo.get_by_role("cell", name="approve user request").first).to_be_visible()
        shot(dpo, "audit", "admin")
        dpo.get_by_role("link", name="Legal bases").click()
        expect(dpo.get_by_role("link", name="newsletter")).to_be_visible()
        shot(dpo, "legal", "admin")
        dpo.get_by_role("link", name="People").click()
        dpo.get_by_label("token").check()
        dpo.get_by_label("Value").fill(token)
        dpo.get_by_role("button", name="Look up").click()
        expect(dpo.get_by_text("This person was erased")).to_be_visible()
        assert token in dpo.url
        shot(dpo, "person", "admin")
        dpo.get_by_role("button", name="Sign out").click()
        expect(dpo.get_by_role("heading", name="Admin sign in")).to_be_visible()

    # the erased person asks for a code again: the same neutral page, but no code is sent
    before = len(mail.messages)
    page.goto(process.url + "/")
    page.get_by_label("Email address or phone number").fill(EMAIL)
    page.get_by_role("button", name="Send me a code").click()
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    # Outbox mail leaves in order: once a later person's code arrived, none was queued for
    # the erased one before it.
    sentinel = "sentinel@example.com"
    as_root(process, root, "POST", "/v1/user", {"email": sentinel})
    httpx.get(f"{process.url}/v1/prelogin/email/{sentinel}/0/0", timeout=10)
    arrived = mail.wait_for(before + 1, timeout=30)[before:]
    assert [m.envelope_to for m in arrived] == [[sentinel]]
    page.get_by_label("Code").fill("000000")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("This code is not valid.")).to_be_visible()
    assert "databunker_session" not in {c["name"] for c in page.context.cookies()}
    page.goto(process.url + "/profile")
    expect(page.get_by_role("heading", name="Sign in to see your data")).to_be_visible()


def test_stored_markup_renders_as_text(
    page: Page, server: tuple[ServerProcess, str], mail: MailServer
) -> None:
    process, root = server
    as_root(process, root, "POST", "/v1/user", {"email": EMAIL, "nickname": XSS})
    sign_in(page, process, mail, screenshots=False)
    field = page.get_by_label("nickname", exact=True)
    expect(field).to_have_value(XSS)
    page.get_by_role("link", name="History").click()
    page.get_by_role("link", name="Profile").click()
    html = page.content()
    assert XSS not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # the page fixture asserts that no dialog opened


def test_the_admin_sees_stored_markup_as_text(
    page: Page, browser: Browser, server: tuple[ServerProcess, str], mail: MailServer
) -> None:
    process, root = server
    token = as_root(process, root, "POST", "/v1/user", {"email": EMAIL, "nickname": XSS})["token"]
    sign_in(page, process, mail, screenshots=False)
    page.get_by_role("link", name="Forget me").click()
    page.get_by_label("I understand, forget all my data").check()
    page.get_by_role("button", name="Forget me").click()
    expect(page.get_by_role("status").first).to_have_text(
        "Your request to be forgotten waits for approval."
    )

    with phone_page(browser) as dpo:
        admin_sign_in(dpo, process, root, screenshots=False)
        dpo.get_by_role("link", name="forget-me").click()
        dpo.get_by_text("Current record").click()
        expect(dpo.get_by_text(XSS)).to_be_visible()
        dpo.get_by_label("Reason for rejecting (the person sees it)").fill(XSS)
        dpo.get_by_role("button", name="Reject").click()
        expect(dpo.get_by_role("status")).to_have_text("The request was rejected.")
        expect(dpo.locator("#request-reason")).to_have_text(XSS)
        html = dpo.content()
        assert XSS not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        dpo.goto(f"{process.url}/admin/requests?status=canceled")
        expect(dpo.get_by_role("cell", name=XSS)).to_be_visible()
        dpo.goto(f"{process.url}/admin/user/{token}")
        expect(dpo.get_by_text(XSS)).to_be_visible()
        assert XSS not in dpo.content()
        # phone_page asserts that no dialog opened
