"""Passwordless login over HTTP: captcha, prelogin, login with the code, logout.

The code is read where the person would read it: from the email or SMS queued in the outbox.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from databunker.jobs import run_jobs
from databunker.notify.dispatcher import OutboxDispatcher
from databunker.services import captcha
from databunker.services.context import ANONYMOUS, Context, Work
from databunker.storage.outbox import open_payload
from databunker.storage.prepared import Prepared
from databunker.storage.tables import access_tokens, audit, login_codes, outbox
from support.vaults import ROOT_TOKEN, Clock, client_for, issue_user_token

ANN = {"login": "ann", "email": "Ann@Example.com", "phone": "+44 7700 900123", "name": "Ann"}
BOB = {"login": "bob", "email": "bob@example.com"}
ANN_EMAIL = "ann@example.com"
ANN_PHONE = "+447700900123"
NOBODY_EMAIL = "nobody@example.com"
NOBODY_PHONE = "+447700900999"
DONE = {"status": "ok", "result": "done"}
CAPTCHA_ERROR = {"status": "error", "result": "captcha-error"}
INVALID_CODE = {"status": "error", "message": "invalid code"}
TOO_MANY = {"status": "error", "message": "too many requests"}
ACCESS_DENIED = {"status": "error", "message": "access denied"}
NOT_FOUND = {"status": "error", "message": "not found"}
DELIVERY = {"smtp": {"server": "127.0.0.1"}, "sms": {"url": "http://127.0.0.1:9/sms"}}
NO_CAPTCHA = {"generic": {"login_captcha": False}}
SKIP = "000000/none"  # captcha segments, ignored when login_captcha is off


# -- helpers ---------------------------------------------------------------------------------
class Site:
    """A vault with Ann and Bob, an anonymous client and a root client."""

    def __init__(self, vault: Context, stack: ExitStack) -> None:
        self.vault = vault
        self.client = stack.enter_context(client_for(vault, None))
        self.root = stack.enter_context(client_for(vault, ROOT_TOKEN))
        self.ann = self.create(ANN)
        self.bob = self.create(BOB)

    def create(self, profile: dict[str, Any]) -> str:
        found = self.root.get(f"/v1/user/login/{profile['login']}")
        if found.status_code == 200:
            return str(found.json()["token"])
        response = self.root.post("/v1/user", json=profile)
        assert response.status_code == 200, response.text
        return str(response.json()["token"])

    def captcha(self) -> tuple[str, str]:
        response = self.client.get("/v1/captcha")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "ok"
        captcha_id = str(body["captcha"])
        with self.vault.database.transaction() as conn:
            work = Work(self.vault, conn, ANONYMOUS, self.vault.clock())
            answer = captcha.live_answer(work, captcha_id)
        assert answer is not None
        return captcha_id, answer

    def prelogin(self, mode: str, identity: str, solved: str | None = None) -> Any:
        if solved is None:
            captcha_id, answer = self.captcha()
            solved = f"{answer}/{captcha_id}"
        return self.client.get(f"/v1/prelogin/{mode}/{identity}/{solved}")

    def login(self, mode: str, identity: str, code: str) -> Any:
        return self.client.get(f"/v1/login/{mode}/{identity}/{code}")

    def messages(self) -> list[tuple[str, dict[str, Any]]]:
        """Messages queued for sending (a void one, written for nobody, is never sent)."""
        key = self.vault.keyring.service_key("outbox")
        with self.vault.database.transaction() as conn:
            rows = conn.execute(
                sa.select(outbox.c.id, outbox.c.kind, outbox.c.payload)
                .where(outbox.c.delivered.is_(None))
                .order_by(outbox.c.id)
            ).all()
        found = [(row.kind, open_payload(key, row.id, row.payload)) for row in rows]
        return [(kind, payload) for kind, payload in found if kind in ("email", "sms")]

    def last_code(self) -> str:
        _kind, payload = self.messages()[-1]
        match = re.search(r"\b(\d{6})\b", payload["text"])
        assert match, payload
        return match.group(1)

    def code_for(self, mode: str, identity: str) -> str:
        response = self.prelogin(mode, identity)
        assert (response.status_code, response.json()) == (200, DONE)
        return self.last_code()

    def logged_in(self, mode: str = "email", identity: str = ANN_EMAIL) -> str:
        response = self.login(mode, identity, self.code_for(mode, identity))
        assert response.status_code == 200, response.text
        return str(response.json()["xtoken"])

    def as_user(self, method: str, path: str, xtoken: str) -> Any:
        return self.client.request(method, path, headers={"X-Bunker-Token": xtoken})


SiteFactory = Callable[..., Site]


@pytest.fixture
def site_for(make_vault: Callable[..., Context]) -> Iterator[SiteFactory]:
    """``site_for(demo=False, **sections)``: a site whose vault can queue email and SMS."""
    with ExitStack() as stack:

        def build(demo: bool = False, **sections: dict[str, Any]) -> Site:
            vault = make_vault(**{**DELIVERY, **sections})
            if demo:
                vault = dataclasses.replace(vault, demo=True)
            return Site(vault, stack)

        yield build


@pytest.fixture
def site(site_for: SiteFactory) -> Site:
    return site_for()


# -- captcha ---------------------------------------------------------------------------------
def test_a_captcha_is_an_image_of_its_answer_and_is_spent_once(site: Site) -> None:
    captcha_id, answer = site.captcha()
    assert uuid.UUID(captcha_id)
    assert answer not in captcha_id
    image = site.client.get(f"/v1/captcha/{captcha_id}")
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG")

    assert site.prelogin("email", ANN_EMAIL, f"{answer}/{captcha_id}").json() == DONE
    again = site.prelogin("email", ANN_EMAIL, f"{answer}/{captcha_id}")
    assert (again.status_code, again.json()) == (200, CAPTCHA_ERROR)
    gone = site.client.get(f"/v1/captcha/{captcha_id}")
    assert (gone.status_code, gone.json()) == (404, NOT_FOUND)


def test_a_wrong_answer_spends_the_captcha_and_sends_nothing(site: Site) -> None:
    captcha_id, answer = site.captcha()
    wrong = f"{(int(answer) + 1) % 1_000_000:06d}"
    first = site.prelogin("email", ANN_EMAIL, f"{wrong}/{captcha_id}")
    assert (first.status_code, first.json()) == (200, CAPTCHA_ERROR)
    second = site.prelogin("email", ANN_EMAIL, f"{answer}/{captcha_id}")
    assert (second.status_code, second.json()) == (200, CAPTCHA_ERROR)
    assert site.messages() == []


def test_unknown_and_expired_captchas_are_refused(site: Site, clock: Clock) -> None:
    unknown = site.prelogin("email", ANN_EMAIL, f"123456/{uuid.uuid4()}")
    assert (unknown.status_code, unknown.json()) == (200, CAPTCHA_ERROR)
    assert site.prelogin("email", ANN_EMAIL, "123456/not-a-captcha").json() == CAPTCHA_ERROR
    for path in (f"/v1/captcha/{uuid.uuid4()}", "/v1/captcha/not-a-captcha"):
        response = site.client.get(path)
        assert (response.status_code, response.json()) == (404, NOT_FOUND)

    captcha_id, answer = site.captcha()
    clock.advance(captcha.CAPTCHA_SECONDS)
    assert site.client.get(f"/v1/captcha/{captcha_id}").status_code == 404
    late = site.prelogin("email", ANN_EMAIL, f"{answer}/{captcha_id}")
    assert (late.status_code, late.json()) == (200, CAPTCHA_ERROR)
    assert site.messages() == []


def test_without_login_captcha_the_segments_are_ignored(site_for: SiteFactory) -> None:
    site = site_for(**NO_CAPTCHA)
    response = site.prelogin("email", ANN_EMAIL, SKIP)
    assert (response.status_code, response.json()) == (200, DONE)
    assert site.login("email", ANN_EMAIL, site.last_code()).status_code == 200


def test_bad_mode(site: Site) -> None:
    for response in (
        site.client.get(f"/v1/prelogin/login/ann/{SKIP}"),
        site.client.get("/v1/login/token/ann/123456"),
    ):
        assert (response.status_code, response.json()) == (
            400,
            {"status": "error", "message": "bad mode"},
        )


# -- prelogin --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("mode", "known", "unknown"),
    [("email", ANN_EMAIL, NOBODY_EMAIL), ("phone", ANN_PHONE, NOBODY_PHONE)],
)
def test_prelogin_answers_the_same_whether_or_not_the_identity_exists(
    site: Site, mode: str, known: str, unknown: str
) -> None:
    for_unknown = site.prelogin(mode, unknown)
    assert site.messages() == []
    for_known = site.prelogin(mode, known)
    assert (for_unknown.status_code, for_unknown.content) == (
        for_known.status_code,
        for_known.content,
    )
    assert (for_known.status_code, for_known.json()) == (200, DONE)
    assert len(site.messages()) == 1
    # Not an email address or phone number at all: the same answer again.
    assert site.prelogin(mode, "not-an-identity").content == for_known.content


def test_an_erased_person_gets_no_code(site: Site) -> None:
    assert site.root.delete(f"/v1/user/token/{site.ann}").status_code == 200
    assert site.prelogin("email", ANN_EMAIL).json() == DONE
    assert site.messages() == []


def test_the_code_goes_by_email_to_the_address_stored_in_the_record(site: Site) -> None:
    assert site.prelogin("email", "  ANN@example.COM ").json() == DONE
    [(kind, payload)] = site.messages()
    code = site.last_code()
    # The record's own spelling, not the typed one nor its canonical form.
    assert (kind, payload["to"], payload["subject"]) == ("email", ANN["email"], "Access Code")
    assert code in payload["text"]

    response = site.login("email", ANN_EMAIL, code)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert body["token"] == site.ann
    assert uuid.UUID(body["xtoken"])
    # The code was spent by that login.
    assert (site.login("email", ANN_EMAIL, code).json()) == INVALID_CODE


def test_the_code_goes_by_sms_in_e164(site: Site) -> None:
    assert site.prelogin("phone", "07700 900123").json() == DONE
    [(kind, payload)] = site.messages()
    code = site.last_code()
    assert (kind, payload) == ("sms", {"to": ANN_PHONE, "text": f"Databunker code {code}"})
    response = site.login("phone", ANN_PHONE, code)
    assert response.status_code == 200, response.text
    assert response.json()["token"] == site.ann


# -- login -----------------------------------------------------------------------------------
def test_a_used_code_fails(site: Site) -> None:
    code = site.code_for("email", ANN_EMAIL)
    assert site.login("email", ANN_EMAIL, code).status_code == 200
    used = site.login("email", ANN_EMAIL, code)
    assert (used.status_code, used.json()) == (400, INVALID_CODE)


def test_an_expired_code_fails(site_for: SiteFactory, clock: Clock) -> None:
    site = site_for(policy={"login_code_period": "60s"})
    code = site.code_for("email", ANN_EMAIL)
    clock.advance(60)
    expired = site.login("email", ANN_EMAIL, code)
    assert (expired.status_code, expired.json()) == (400, INVALID_CODE)

    code = site.code_for("email", ANN_EMAIL)
    clock.advance(59)
    assert site.login("email", ANN_EMAIL, code).status_code == 200


def test_five_wrong_attempts_void_the_code(site: Site, clock: Clock) -> None:
    code = site.code_for("email", ANN_EMAIL)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(4):
        assert site.login("email", ANN_EMAIL, wrong).json() == INVALID_CODE
    assert site.login("email", ANN_EMAIL, code).status_code == 200  # four are forgiven

    clock.advance(15 * 60)  # a new rate-limit window
    code = site.code_for("email", ANN_EMAIL)
    for _ in range(5):
        response = site.login("email", ANN_EMAIL, wrong)
        assert (response.status_code, response.json()) == (400, INVALID_CODE)
    assert (site.login("email", ANN_EMAIL, code).json()) == INVALID_CODE


def test_every_failure_answers_the_same(site: Site) -> None:
    answers = {
        site.login("email", NOBODY_EMAIL, "123456").content,  # nobody
        site.login("email", ANN_EMAIL, "123456").content,  # no code pending
        site.login("email", "not-an-email", "123456").content,
    }
    site.code_for("email", ANN_EMAIL)
    answers.add(site.login("email", ANN_EMAIL, "x" * 100).content)
    assert answers == {orjson.dumps(INVALID_CODE)}


def test_a_new_prelogin_replaces_the_pending_code(site: Site) -> None:
    first = site.code_for("email", ANN_EMAIL)
    second = site.code_for("email", ANN_EMAIL)
    if first != second:
        assert site.login("email", ANN_EMAIL, first).json() == INVALID_CODE
    assert site.login("email", ANN_EMAIL, second).status_code == 200


# -- demo ------------------------------------------------------------------------------------
def test_the_demo_code_works_only_in_a_demo_vault(site_for: SiteFactory) -> None:
    site = site_for()
    site.code_for("email", ANN_EMAIL)
    assert site.login("email", ANN_EMAIL, "4444").json() == INVALID_CODE

    demo = site_for(demo=True)
    sent_before = len(demo.messages())
    assert demo.prelogin("phone", ANN_PHONE).json() == DONE
    assert len(demo.messages()) == sent_before  # nothing is sent in the demo
    response = demo.login("phone", ANN_PHONE, "4444")
    assert response.status_code == 200, response.text
    assert response.json()["token"] == demo.ann


# -- rate limits -----------------------------------------------------------------------------
def test_prelogins_per_identity_are_limited_across_servers(
    site_for: SiteFactory, clock: Clock
) -> None:
    one, two = site_for(**NO_CAPTCHA), site_for(**NO_CAPTCHA)
    for site in (one, two, one, two, one):
        assert site.prelogin("email", ANN_EMAIL, SKIP).json() == DONE
    for site in (two, one):
        refused = site.prelogin("email", ANN_EMAIL, SKIP)
        assert (refused.status_code, refused.json()) == (429, TOO_MANY)
    # The same for someone who does not exist: the limit reveals nothing either.
    for _ in range(5):
        assert one.prelogin("email", NOBODY_EMAIL, SKIP).json() == DONE
    assert one.prelogin("email", NOBODY_EMAIL, SKIP).status_code == 429
    # Another person is not affected, and the window passes.
    assert one.prelogin("email", "bob@example.com", SKIP).json() == DONE
    clock.advance(15 * 60)
    assert two.prelogin("email", ANN_EMAIL, SKIP).json() == DONE


def test_prelogins_per_address_are_limited(site_for: SiteFactory) -> None:
    site = site_for(**NO_CAPTCHA)
    for number in range(30):
        assert site.prelogin("email", f"p{number}@example.com", SKIP).status_code == 200
    refused = site.prelogin("email", "p99@example.com", SKIP)
    assert (refused.status_code, refused.json()) == (429, TOO_MANY)


def test_logins_are_limited_across_servers(site_for: SiteFactory) -> None:
    one, two = site_for(), site_for()
    code = one.code_for("email", ANN_EMAIL)
    for number in range(10):
        site = (one, two)[number % 2]
        assert site.login("email", ANN_EMAIL, "000000").status_code == 400
    refused = two.login("email", ANN_EMAIL, code)
    assert (refused.status_code, refused.json()) == (429, TOO_MANY)


# -- the user access token -------------------------------------------------------------------
def test_the_user_token_reaches_the_owners_records_only(site: Site) -> None:
    xtoken = site.logged_in()
    own = site.as_user("GET", f"/v1/user/token/{site.ann}", xtoken)
    assert own.status_code == 200, own.text
    assert own.json()["data"]["name"] == "Ann"
    for method, path in (
        ("GET", f"/v1/user/token/{site.bob}"),
        ("GET", "/v1/user/login/bob"),
        ("GET", "/v1/audit/admin"),
        ("GET", "/v1/userapps"),
        ("GET", "/v1/sys/configuration"),
    ):
        response = site.as_user(method, path, xtoken)
        assert (response.status_code, response.json()) == (403, ACCESS_DENIED), path


def test_the_user_token_expires_after_its_period(site_for: SiteFactory, clock: Clock) -> None:
    site = site_for(policy={"user_token_period": "600s"})
    xtoken = site.logged_in()
    clock.advance(599)
    assert site.as_user("GET", f"/v1/user/token/{site.ann}", xtoken).status_code == 200
    clock.advance(1)
    assert site.as_user("GET", f"/v1/user/token/{site.ann}", xtoken).status_code == 403


def test_logout_revokes_the_token(site: Site) -> None:
    xtoken = site.logged_in()
    other = issue_user_token(site.vault, site.ann)
    response = site.as_user("POST", "/v1/logout", xtoken)
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    for method, path in (("GET", f"/v1/user/token/{site.ann}"), ("POST", "/v1/logout")):
        denied = site.as_user(method, path, xtoken)
        assert (denied.status_code, denied.json()) == (403, ACCESS_DENIED)
    # Only the presented token: the person's other session goes on.
    assert site.as_user("GET", f"/v1/user/token/{site.ann}", other).status_code == 200


def test_root_cannot_log_out(site: Site) -> None:
    response = site.root.post("/v1/logout")
    assert (response.status_code, response.json()) == (
        400,
        {"status": "error", "message": "only a user token can log out"},
    )
    assert site.root.get(f"/v1/user/token/{site.ann}").status_code == 200


# -- secrets stay out of the audit trail and the logs -----------------------------------------
def test_no_code_or_token_is_audited_or_logged(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("DEBUG"):
        captcha_id, answer = site.captcha()
        assert site.prelogin("email", ANN_EMAIL, f"{answer}/{captcha_id}").json() == DONE
        code = site.last_code()
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        assert site.login("email", ANN_EMAIL, wrong).status_code == 400
        xtoken = str(site.login("email", ANN_EMAIL, code).json()["xtoken"])
        assert site.as_user("POST", "/v1/logout", xtoken).status_code == 200
        listed = site.root.get(f"/v1/audit/list/{site.ann}?limit=100").json()["rows"]
        admin = site.root.get("/v1/audit/admin?limit=100").json()["rows"]

    titles = [(row["title"], row["status"]) for row in reversed(listed)]
    assert titles[-4:] == [
        ("user prelogin by email", "ok"),
        ("user login by email", "error"),
        ("user login by email", "ok"),
        ("user logout", "ok"),
    ]
    with site.vault.database.transaction() as conn:
        stored = repr(conn.execute(sa.select(audit)).all())
    seen = " ".join((repr(listed), repr(admin), stored, caplog.text, repr(caplog.records)))
    for secret in (code, wrong, xtoken, answer, captcha_id):
        assert secret not in seen
    assert ANN_EMAIL not in stored  # the identity is only in the encrypted `who`


# -- periodic purges -------------------------------------------------------------------------
def test_jobs_purge_what_has_expired(site: Site, clock: Clock) -> None:
    site.captcha()
    xtoken = site.logged_in()
    site.code_for("email", ANN_EMAIL)
    clock.advance(24 * 3600)
    handled = run_jobs(site.vault)
    assert handled["purge expired captchas"] == 1
    assert handled["purge expired login codes"] == 1
    assert handled["purge stale rate limits"] >= 2
    assert handled["purge expired user tokens"] == 1
    with site.vault.database.transaction() as conn:
        left = conn.execute(sa.select(sa.func.count()).select_from(login_codes)).scalar_one()
        tokens = conn.execute(
            sa.select(sa.func.count())
            .select_from(access_tokens)
            .where(access_tokens.c.kind == "login")
        ).scalar_one()
    assert (left, tokens) == (0, 0)
    assert site.as_user("GET", f"/v1/user/token/{site.ann}", xtoken).status_code == 403


class _Statements:
    """Every SQL statement run while recording, as text without its parameters: those run
    through SQLAlchemy and those the hot paths run on the driver's cursor."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.recording = False
        self.seen: list[str] = []
        original = Prepared._run

        def run(prepared: Prepared, conn: Any, params: Any) -> Any:
            self._record(prepared._compile(conn.dialect)[0])
            return original(prepared, conn, params)

        monkeypatch.setattr(Prepared, "_run", run)
        sa.event.listen(sa.engine.Engine, "before_cursor_execute", self._on_execute)

    def _on_execute(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self._record(statement)

    def _record(self, statement: str) -> None:
        # Not the tenancy's own housekeeping: a pooled connection sets its tenant only when
        # it last worked for another (a job, say), whoever the request is about.
        if self.recording and "set_config('app.tenant'" not in statement:
            self.seen.append(" ".join(statement.split()))

    def during(self, action: Callable[[], Any]) -> list[str]:
        self.seen, self.recording = [], True
        try:
            action()
        finally:
            self.recording = False
        return self.seen

    def close(self) -> None:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", self._on_execute)


@pytest.mark.parametrize(
    ("mode", "known", "unknowns"),
    [
        ("email", ANN_EMAIL, [NOBODY_EMAIL, "not-an-email"]),
        ("phone", ANN_PHONE, [NOBODY_PHONE, "call-me"]),
    ],
)
def test_a_prelogin_does_the_same_work_whether_or_not_the_identity_exists(
    make_vault: Callable[..., Context],
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    known: str,
    unknowns: list[str],
) -> None:
    # Only the requests' own statements: no delivery rounds and no periodic jobs meanwhile.
    monkeypatch.setattr(OutboxDispatcher, "for_deployment", classmethod(lambda _cls, _vault: None))
    vault = make_vault(**DELIVERY, **NO_CAPTCHA, server={"jobs_interval": 3600})
    statements = _Statements(monkeypatch)
    try:
        with ExitStack() as stack:
            site = Site(vault, stack)
            for_known = statements.during(lambda: site.prelogin(mode, known, SKIP))
            assert len(site.messages()) == 1
            for unknown in unknowns:
                for_unknown = statements.during(lambda u=unknown: site.prelogin(mode, u, SKIP))
                assert for_unknown == for_known
            assert len(site.messages()) == 1  # nothing was sent for nobody
    finally:
        statements.close()
    assert any("login_codes" in statement for statement in for_known)
    assert any("outbox" in statement for statement in for_known)
