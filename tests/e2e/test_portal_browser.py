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
from support.node import install_npm_project
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
ERASURE_SENT = (
    "Your request to erase your data was sent: it waits for approval by our data "
    "protection officer."
)


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
    name = page.get_by_label("Name", exact=True)
    expect(name).to_have_value("Ann")
    shot(page, "profile")
    name.fill("Annie")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Your profile was saved.")
    expect(page.get_by_label("Name", exact=True)).to_have_value("Annie")
    assert as_root(process, root, "GET", f"/v1/user/token/{token}")["data"]["name"] == "Annie"

    # consents: the legal basis texts, then a withdrawal
    page.get_by_role("link", name="Consents").click()
    newsletter = page.locator("#consent-newsletter")
    expect(newsletter).to_contain_text("Monthly newsletter")
    expect(newsletter).to_contain_text("News by email")
    expect(newsletter).to_contain_text("Status: Given")
    shot(page, "consents")
    page.get_by_role("button", name="Withdraw consent: Monthly newsletter").click()
    expect(page.get_by_role("status")).to_have_text("Your consent was withdrawn.")
    expect(page.locator("#consent-newsletter")).to_contain_text("Status: Withdrawn")
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
    expect(page.get_by_text("You changed your profile.").first).to_be_visible()
    expect(page.get_by_text("You withdrew a consent.").first).to_be_visible()
    shot(page, "audit")

    # forget me: a confirmation step, then a request waiting for the DPO
    page.get_by_role("link", name="Erase my data").click()
    shot(page, "forget-me")
    button = page.get_by_role("button", name="Ask to erase my data")
    button.click()  # the required box is not ticked: nothing is sent
    expect(page.get_by_role("heading", name="Erase my data")).to_be_visible()
    page.get_by_label("I understand: erase all my data").check()
    button.click()
    expect(page.get_by_role("status")).to_have_text(ERASURE_SENT)
    page.get_by_role("link", name="Requests").click()
    expect(page.get_by_role("link", name="Erase all my data")).to_be_visible()
    expect(page.get_by_text("Status: Waiting for approval")).to_be_visible()
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
        dpo.get_by_role("link", name="Erase the person").click()
        expect(dpo.get_by_role("heading", name="Erase the person")).to_be_visible()
        expect(dpo.locator("#request-status")).to_have_text("Waiting for approval")
        expect(dpo.get_by_text("Erases the person")).to_be_visible()
        shot(dpo, "request", "admin")
        dpo.get_by_label("Reason (optional)").fill("Identity checked")
        dpo.get_by_role("button", name="Approve").click()
        expect(dpo.get_by_role("status")).to_have_text("The request was approved and carried out.")
        expect(dpo.locator("#request-status")).to_have_text("Approved")
        expect(dpo.locator("#request-reason")).to_have_text("Identity checked")
        assert as_root(process, root, "GET", f"/v1/user/token/{token}")["data"] == {}
        assert as_root(process, root, "GET", "/v1/requests")["rows"] == []

        dpo.get_by_role("link", name="Audit").click()
        expect(dpo.get_by_role("cell", name="Request approved").first).to_be_visible()
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
    field = page.get_by_label("Nickname", exact=True)
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
    page.get_by_role("link", name="Erase my data").click()
    page.get_by_label("I understand: erase all my data").check()
    page.get_by_role("button", name="Ask to erase my data").click()
    expect(page.get_by_role("status")).to_have_text(ERASURE_SENT)

    with phone_page(browser) as dpo:
        admin_sign_in(dpo, process, root, screenshots=False)
        dpo.get_by_role("link", name="Erase the person").click()
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


# --- accessibility, languages, phones ------------------------------------------------------

AXE_PROJECT = Path(__file__).parent / "axe"
WIDTHS = (1280, 390)
# axe impacts that fail a page; "moderate" and "minor" findings are printed, not failed.
BLOCKING = ("serious", "critical")


@pytest.fixture(scope="module")
def axe_script(tmp_path_factory: pytest.TempPathFactory) -> str:
    """axe-core's script, installed by npm into a scratch copy of ``tests/e2e/axe``."""
    project = install_npm_project(AXE_PROJECT, tmp_path_factory.mktemp("axe") / "axe")
    return (project.folder / "node_modules" / "axe-core" / "axe.min.js").read_text()


@contextmanager
def audited_page(browser: Browser, width: int) -> Iterator[tuple[Page, list[str]]]:
    """A page of ``width`` pixels in a context of its own, and the console errors and
    failed requests it has seen (a 404 for a favicon counts)."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    opened = context.new_page()
    problems: list[str] = []
    opened.on(
        "console",
        lambda message: (
            problems.append(f"console {message.type}: {message.text}")
            if message.type == "error"
            else None
        ),
    )
    opened.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    opened.on(
        "response",
        lambda response: (
            problems.append(f"{response.status} {response.url}") if response.status >= 400 else None
        ),
    )
    yield opened, problems
    context.close()


def check_page(page: Page, axe: str, problems: list[str], name: str, width: int) -> None:
    """axe finds nothing serious, the console stayed clean, nothing is wider than the
    screen; a screenshot is written either way."""
    page.wait_for_load_state("load")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
    page.evaluate(axe)
    results = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}))"
    )
    blocking = [v for v in results if v["impact"] in BLOCKING]
    for finding in results:
        if finding not in blocking:
            print(f"axe {finding['impact']} on {name} at {width}px: {finding['id']}")
    assert blocking == [], f"{name} at {width}px: {blocking}"
    assert problems == [], f"{name} at {width}px: {problems}"
    overflow = page.evaluate(
        "() => [...document.querySelectorAll('body *')]"
        ".filter(e => e.getBoundingClientRect().right > window.innerWidth + 1"
        " && !e.closest('.hidden, .skip'))"
        ".map(e => e.tagName + '.' + e.className).slice(0, 5)"
    )
    assert overflow == [], f"{name} at {width}px is wider than the screen: {overflow}"


def person_with_data(process: ServerProcess, root: str) -> str:
    """A person with something on every portal page: a nested profile, an app record, a
    session, a consent, a contract basis, and an open request."""
    profile = {"email": EMAIL, "name": "Ann", "address": {"city": "Oslo", "street": "Storgata 1"}}
    token: str = as_root(process, root, "POST", "/v1/user", profile)["token"]
    as_root(process, root, "POST", f"/v1/userapp/token/{token}/shop", {"plan": "gold"})
    as_root(process, root, "POST", f"/v1/session/{uuid.uuid4()}", {"token": token, "cart": 2})
    as_root(
        process,
        root,
        "POST",
        "/v1/lbasis/newsletter",
        {"shortdesc": "Monthly newsletter", "usercontrol": True},
    )
    as_root(process, root, "POST", f"/v1/agreement/newsletter/token/{token}")
    as_root(
        process,
        root,
        "POST",
        "/v1/lbasis/delivery",
        {"shortdesc": "Delivery", "basistype": "contract"},
    )
    return token


PORTAL_PAGES = ("/profile", "/apps", "/sessions", "/consents", "/requests", "/audit", "/forget")
ADMIN_PAGES = (
    "/admin",
    "/admin/requests",
    "/admin/users",
    "/admin/audit",
    "/admin/legal",
    "/admin/legal/basis",
    "/admin/legal/activity",
)


def test_every_page_is_accessible_and_fits_a_phone(
    browser: Browser, server: tuple[ServerProcess, str], mail: MailServer, axe_script: str
) -> None:
    process, root = server
    token = person_with_data(process, root)
    print(f"screenshots in {ARTIFACTS}")
    for width in WIDTHS:
        with audited_page(browser, width) as (page, problems):
            page.goto(process.url + "/")
            check_page(page, axe_script, problems, "portal-sign-in", width)
            sign_in(page, process, mail, screenshots=False)
            for path in PORTAL_PAGES:
                page.goto(process.url + path)
                check_page(page, axe_script, problems, "portal" + path.replace("/", "-"), width)
            if width == WIDTHS[0]:
                page.goto(process.url + "/forget")
                page.get_by_label("I understand: erase all my data").check()
                page.get_by_role("button", name="Ask to erase my data").click()
                expect(page.get_by_role("status")).to_have_text(ERASURE_SENT)
            page.goto(process.url + "/requests")
            page.get_by_role("link", name="Erase all my data").click()
            check_page(page, axe_script, problems, "portal-request", width)
        with audited_page(browser, width) as (dpo, problems):
            dpo.goto(process.url + "/admin")
            check_page(dpo, axe_script, problems, "admin-sign-in", width)
            dpo.get_by_label("Root token").fill(root)
            dpo.get_by_role("button", name="Sign in").click()
            expect(dpo.get_by_role("heading", name="Dashboard")).to_be_visible()
            for path in (*ADMIN_PAGES, f"/admin/user/{token}"):
                dpo.goto(process.url + path)
                name = "admin-person" if token in path else "admin" + path.replace("/admin", "")
                check_page(dpo, axe_script, problems, name.replace("/", "-"), width)
            dpo.goto(process.url + "/admin/requests")
            dpo.get_by_role("link", name="Erase the person").click()
            check_page(dpo, axe_script, problems, "admin-request", width)
            dpo.goto(process.url + "/admin/audit")
            dpo.get_by_role("link", name=re.compile("^Details")).first.click()
            check_page(dpo, axe_script, problems, "admin-event", width)


@pytest.mark.parametrize(
    ("lang", "sign_in_heading", "profile_heading", "consents_heading"),
    [
        ("de", "Melden Sie sich an, um Ihre Daten zu sehen", "Ihr Profil", "Ihre Einwilligungen"),
        ("fr", "Connectez-vous pour voir vos données", "Votre profil", "Vos consentements"),
        ("es", "Inicia sesión para ver tus datos", "Tu perfil", "Tus consentimientos"),
        ("it", "Accedi per vedere i tuoi dati", "Il tuo profilo", "I tuoi consensi"),
    ],
)
def test_the_portal_in_each_language(
    browser: Browser,
    server: tuple[ServerProcess, str],
    mail: MailServer,
    axe_script: str,
    lang: str,
    sign_in_heading: str,
    profile_heading: str,
    consents_heading: str,
) -> None:
    process, root = server
    person_with_data(process, root)
    with audited_page(browser, 390) as (page, problems):
        page.goto(process.url + "/")
        page.get_by_role("link", name=i18n_name(lang)).click()  # the visible switcher
        expect(page.get_by_role("heading", name=sign_in_heading)).to_be_visible()
        assert page.get_attribute("html", "lang") == lang
        check_page(page, axe_script, problems, f"portal-sign-in-{lang}", 390)
        page.locator("#identity").fill(EMAIL)
        before = len(mail.messages)
        page.locator("button[type=submit]").last.click()
        found = CODE.search(mail.wait_for(before + 1, timeout=30)[-1].text)
        assert found is not None
        page.locator("#code").fill(found.group(1))
        page.locator("#code").press("Enter")
        expect(page.get_by_role("heading", name=profile_heading)).to_be_visible()
        check_page(page, axe_script, problems, f"portal-profile-{lang}", 390)
        page.goto(process.url + "/consents")
        expect(page.get_by_role("heading", name=consents_heading)).to_be_visible()
        check_page(page, axe_script, problems, f"portal-consents-{lang}", 390)


def i18n_name(lang: str) -> str:
    return {"de": "Deutsch", "fr": "Français", "es": "Español", "it": "Italiano"}[lang]


def tab_to(page: Page, selector: str, limit: int = 60) -> None:
    """Press Tab until the element ``selector`` names has the focus, and check the focus
    is visible (an outline)."""
    page.wait_for_load_state("load")
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"() => document.activeElement.matches({json.dumps(selector)})"):
            outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
            assert outline not in ("", "none"), f"no visible focus on {selector}"
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_sign_in_withdraw_and_erase_with_the_keyboard_only(
    browser: Browser, server: tuple[ServerProcess, str], mail: MailServer
) -> None:
    process, root = server
    token = person_with_data(process, root)
    with audited_page(browser, 1280) as (page, problems):
        page.goto(process.url + "/")
        tab_to(page, "#identity")
        page.keyboard.type(EMAIL)
        before = len(mail.messages)
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
        found = CODE.search(mail.wait_for(before + 1, timeout=30)[-1].text)
        assert found is not None
        page.keyboard.type(found.group(1))  # the code field has the focus
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Your profile")).to_be_visible()

        tab_to(page, 'nav a[href="/consents"]')
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Your consents")).to_be_visible()
        tab_to(page, "#consent-newsletter button")
        page.keyboard.press("Enter")
        expect(page.get_by_role("status")).to_have_text("Your consent was withdrawn.")
        agreement = as_root(process, root, "GET", f"/v1/agreement/newsletter/token/{token}")
        assert agreement["data"]["status"] == "no"

        tab_to(page, 'nav a[href="/forget"]')
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Erase my data")).to_be_visible()
        tab_to(page, 'input[name="confirm"]')
        page.keyboard.press("Space")
        tab_to(page, "button.danger")
        page.keyboard.press("Enter")
        expect(page.get_by_role("status")).to_have_text(ERASURE_SENT)
        assert [r["action"] for r in as_root(process, root, "GET", "/v1/requests")["rows"]] == [
            "forget-me"
        ]
        assert problems == []
