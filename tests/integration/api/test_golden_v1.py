"""The v1 wire, pinned byte for byte: every v1 route driven in scripted scenarios, each
answer (status, content type, raw body) compared with a committed transcript in
``tests/golden/``, and the audit trail's titles, statuses and modes after it.

Each scenario runs on SQLite and PostgreSQL against the same file. After an intended change
of the wire, ``GOLDEN_UPDATE=1 pytest tests/integration/api/test_golden_v1.py`` rewrites the
files; review their diff before committing it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
import sqlalchemy as sa
from httpx2 import Response
from starlette.testclient import TestClient

from conftest import VaultFactory
from databunker.app import Application
from databunker.services import captcha
from databunker.services.context import ANONYMOUS, Context, Work
from databunker.storage.outbox import open_payload
from databunker.storage.tables import outbox
from support.golden import (
    Caller,
    Transcript,
    audit_trail_rows,
    compare_with_golden,
    routes_not_driven,
)
from support.vaults import ROOT_TOKEN, Clock, client_for, issue_user_token

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
# Login codes are queued for this relay and read back from the outbox; nothing listens.
DELIVERY = {"smtp": {"server": "127.0.0.1", "port": 9}}
ROOT = Caller("root", ROOT_TOKEN)
ANONYMOUS_CALLER = Caller("anonymous", None)
STRANGER = Caller("unknown token", "99999999-8888-4777-8666-555555555555")
# Session ids are chosen by the client; fixed ones keep the transcript readable.
SESSION_ANN = "5e55e55e-0000-4000-8000-000000000001"
SESSION_LOOSE = "5e55e55e-0000-4000-8000-000000000002"
SESSION_SHORT = "5e55e55e-0000-4000-8000-000000000003"
MISSING = "00000000-0000-4000-8000-000000000000"

ANN = {"login": "ann", "email": "Ann@Example.com", "phone": "07700 900123", "name": "Ann"}
BOB = {"login": "bob", "email": "bob@example.com", "name": "Bob"}
NEWSLETTER = {
    "module": "signup-page",
    "shortdesc": "Newsletter",
    "fulldesc": "Send me the monthly newsletter",
    "basistype": "consent",
    "requiredmsg": "Needed to send the newsletter",
    "usercontrol": True,
    "requiredflag": False,
}
TERMS = {
    "module": "signup-page",
    "shortdesc": "Terms of service",
    "basistype": "contract",
    "usercontrol": False,
    "requiredflag": True,
}
ANALYTICS = {"module": "cookie-popup", "shortdesc": "Analytics cookies", "usercontrol": True}
SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "login": {"type": "string", "preserve": True},
        "email": {"type": "string"},
        "ssn": {"type": "string", "locked": True},
        "tier": {"type": "string", "admin": True},
    },
    "required": ["name"],
}


# -- the stage -------------------------------------------------------------------------------
class Stage:
    """A vault's app, a transcript of the exchanges with it, and ways to read what a person
    would read elsewhere (a captcha's image, a login code's email)."""

    def __init__(self, vault: Context, client: TestClient, clock: Clock) -> None:
        self.vault = vault
        self.transcript = Transcript(client, clock)
        self.call = self.transcript.call

    def person(self, label: str, user_token: str) -> Caller:
        """The person's own access token, as a passwordless login issues it."""
        return Caller(label, issue_user_token(self.vault, user_token, ttl=86_400))

    def captcha_answer(self, captcha_id: str) -> str:
        with self.vault.database.transaction() as conn:
            work = Work(self.vault, conn, ANONYMOUS, self.vault.clock())
            answer = captcha.live_answer(work, captcha_id)
        assert answer is not None
        return answer

    def last_login_code(self) -> str:
        key = self.vault.keyring.service_key("outbox")
        with self.vault.database.transaction() as conn:
            row = conn.execute(
                sa.select(outbox.c.id, outbox.c.payload)
                .where(outbox.c.kind == "email", outbox.c.delivered.is_(None))
                .order_by(outbox.c.id.desc())
                .limit(1)
            ).one()
        match = re.search(r"\b(\d{6})\b", open_payload(key, row.id, row.payload)["text"])
        assert match is not None
        return match.group(1)

    def finish(self, name: str) -> None:
        client = self.transcript.client
        self.transcript.section("audit trail, newest first", audit_trail_rows(client, ROOT))
        compare_with_golden(name, self.transcript)


StageFactory = Callable[..., Stage]


@pytest.fixture
def stage(make_vault: VaultFactory, clock: Clock) -> Iterator[StageFactory]:
    """``stage(schema=None, **settings)``: a Stage on a vault with those settings."""
    with ExitStack() as stack:

        def build(schema: dict[str, Any] | None = None, **settings: dict[str, Any]) -> Stage:
            vault = make_vault(schema, **settings)
            client = stack.enter_context(client_for(vault, None))
            return Stage(vault, client, clock)

        yield build


def request_counts(metrics: str) -> str:
    """The metric names and the request counts by method, route template and status: the
    rest (latencies, creation times) changes from run to run."""
    kept = ("# HELP", "# TYPE", "databunker_http_requests_total")
    return "\n".join(line for line in metrics.splitlines() if line.startswith(kept))


def document_outline(text: str) -> str:
    """An OpenAPI document's version and its paths with their methods, one a line."""
    document = json.loads(text)
    lines = [f"openapi {document['openapi']}"]
    for path, item in document["paths"].items():
        lines.append(f"{' '.join(sorted(item)).upper()} {path}")
    return "\n".join(lines)


def token_of(response: Response, key: str = "token") -> str:
    assert response.status_code == 200, response.text
    return str(response.json()[key])


# -- scenarios -------------------------------------------------------------------------------
def test_default_settings(stage: StageFactory) -> None:
    """Default settings (self-service off: a person's changes become requests), every route."""
    s = stage(**DELIVERY)
    call = s.call

    # system
    call(ANONYMOUS_CALLER, "GET", "/v1/status", all_headers=True)
    call(ANONYMOUS_CALLER, "GET", "/status")
    call(ANONYMOUS_CALLER, "GET", "/v1/status/")
    call(ANONYMOUS_CALLER, "GET", "/v1/metrics", volatile_body=True)
    call(ANONYMOUS_CALLER, "GET", "/v1/sys/uiconfiguration")
    call(ROOT, "GET", "/v1/sys/configuration")
    call(ANONYMOUS_CALLER, "GET", "/v1/sys/configuration", all_headers=True)
    call(STRANGER, "GET", "/v1/sys/configuration")

    # the consent catalogue
    call(ROOT, "GET", "/v1/lbasis")
    call(ROOT, "POST", "/v1/lbasis/newsletter", json=NEWSLETTER)
    call(ROOT, "POST", "/v1/lbasis/terms", json=TERMS)
    call(ROOT, "POST", "/v1/lbasis/analytics", json=ANALYTICS)
    call(ROOT, "POST", "/v1/lbasis/newsletter", json={"fulldesc": "Monthly news"})
    call(
        ROOT, "POST", "/v1/lbasis/old-basis", content="shortdesc=Old&usercontrol=true", headers=FORM
    )
    call(ROOT, "POST", "/v1/lbasis/old-basis", json={"brief": "older-basis"})
    call(ROOT, "POST", "/v1/lbasis/older-basis", json={"brief": "terms"})
    call(ROOT, "POST", "/v1/lbasis/newsletter", json={"usercontrol": "maybe"})
    call(ROOT, "POST", "/v1/lbasis/Bad_Brief!", json=NEWSLETTER)
    call(ROOT, "DELETE", "/v1/lbasis/older-basis")
    call(ROOT, "DELETE", "/v1/lbasis/no-such-basis")
    call(ROOT, "GET", "/v1/lbasis")
    call(ANONYMOUS_CALLER, "GET", "/v1/lbasis")
    call(ROOT, "POST", "/v1/pactivity/tracking", json={"title": "Tracking", "script": "track()"})
    call(ROOT, "POST", "/v1/pactivity/tracking/analytics")
    call(ROOT, "POST", "/v1/pactivity/mailing", json={"fulldesc": "Mail people"})
    call(ROOT, "POST", "/v1/pactivity/mailing/newsletter")
    call(ROOT, "POST", "/v1/pactivity/mailing/no-such-basis")
    call(ROOT, "GET", "/v1/pactivity")
    call(ANONYMOUS_CALLER, "GET", "/v1/sys/cookiesettings")
    call(ROOT, "DELETE", "/v1/pactivity/mailing/newsletter")
    call(ROOT, "DELETE", "/v1/pactivity/mailing")
    call(ROOT, "DELETE", "/v1/pactivity/mailing")
    call(ROOT, "GET", "/v1/pactivity")
    call(STRANGER, "POST", "/v1/pactivity/mailing", json={})

    # users
    ann = token_of(call(ROOT, "POST", "/v1/user", json=ANN))
    bob = token_of(call(ROOT, "POST", "/v1/user/", json=BOB))
    carol = token_of(
        call(ROOT, "POST", "/v1/user", content="login=carol&email=carol@example.com", headers=FORM)
    )
    call(ANONYMOUS_CALLER, "POST", "/v1/user", json={"login": "mallory"})
    call(ROOT, "POST", "/v1/user", json={"email": "ANN@example.com"})
    call(ROOT, "POST", "/v1/user", json={"login": "ann"})
    call(ROOT, "POST", "/v1/user")
    call(
        ROOT,
        "POST",
        "/v1/user",
        content='{"login": "dan"',
        headers={"Content-Type": "application/json"},
    )
    call(ROOT, "POST", "/v1/user", json=["not", "an", "object"])
    call(ROOT, "POST", "/v1/user", json={"email": "not-an-email"})
    call(ROOT, "POST", "/v1/user", json={"phone": "12"})
    call(ROOT, "POST", "/v1/user", json={"login": "bad\u0000login"})
    deep: Any = "x"
    for _ in range(40):
        deep = {"a": deep}
    call(ROOT, "POST", "/v1/user", json={"deep": deep}, shown_request="<40 nested objects>")
    call(
        ROOT,
        "POST",
        "/v1/user",
        json={"big": "x" * 1_100_000},
        shown_request='{"big":"<1,100,000 x>"}',
    )
    call(ROOT, "GET", f"/v1/user/token/{ann}", all_headers=True)
    call(ROOT, "GET", "/v1/user/login/ann")
    call(ROOT, "GET", "/v1/user/email/ann@EXAMPLE.com")
    call(ROOT, "GET", "/v1/user/phone/+447700900123")
    call(ROOT, "GET", "/v1/user/phone/07700%20900123")
    call(ROOT, "GET", "/v1/user/email/nobody@example.com")
    call(ROOT, "GET", "/v1/user/custom/nobody")
    call(ROOT, "GET", "/v1/user/size/7")
    call(ROOT, "GET", "/v1/user/token/not-a-uuid")
    call(ROOT, "GET", f"/v1/user/token/{MISSING}")
    call(ROOT, "GET", "/v1/user/email/not-an-email")
    call(ANONYMOUS_CALLER, "GET", f"/v1/user/token/{ann}")
    call(ANONYMOUS_CALLER, "GET", "/v1/user/email/nobody@example.com")
    call(STRANGER, "GET", f"/v1/user/token/{ann}")
    as_ann = s.person("ann", ann)
    as_bob = s.person("bob", bob)
    call(as_ann, "GET", f"/v1/user/token/{ann}")
    call(as_ann, "GET", "/v1/user/login/ann")
    call(as_bob, "GET", f"/v1/user/token/{ann}")
    call(as_bob, "GET", "/v1/user/email/nobody@example.com")
    call(ROOT, "PUT", f"/v1/user/token/{ann}", json={"city": "Leeds", "tags": ["a", "b"]})
    call(
        ROOT,
        "PUT",
        "/v1/user/login/ann",
        json=[{"op": "replace", "path": "/city", "value": "York"}],
    )
    call(ROOT, "PUT", f"/v1/user/token/{ann}", content="nick=annie", headers=FORM)
    call(ROOT, "PUT", f"/v1/user/token/{ann}", json={"nick": None})
    call(ROOT, "PUT", f"/v1/user/token/{bob}", json={"email": "ann@example.com"})
    call(ROOT, "PUT", f"/v1/user/token/{ann}")
    call(ROOT, "PUT", f"/v1/user/token/{ann}", json=[{"op": "remove", "path": "/nothing"}])
    call(ROOT, "PUT", f"/v1/user/email/{ANN['email']}", json={"email": "ann@example.org"})
    call(ROOT, "GET", "/v1/user/email/ann@example.com")
    call(ROOT, "PUT", "/v1/user/email/ann@example.org", json={"email": ANN["email"]})
    call(ROOT, "GET", f"/v1/user/token/{ann}")
    call(ROOT, "POST", "/v1/users")
    call(ROOT, "PATCH", f"/v1/user/token/{ann}", json={})
    call(ROOT, "GET", "/v1/user")
    call(ROOT, "DELETE", "/v1/users")

    # app records
    call(ROOT, "POST", f"/v1/userapp/token/{ann}/shop", json={"card": "4242", "basket": ["tea"]})
    call(ROOT, "GET", f"/v1/userapp/token/{ann}/shop")
    call(ROOT, "PUT", f"/v1/userapp/token/{ann}/shop", json={"basket": ["tea", "milk"]})
    call(
        ROOT,
        "PUT",
        "/v1/userapp/login/ann/shop",
        json=[{"op": "add", "path": "/vip", "value": True}],
    )
    call(ROOT, "POST", "/v1/userapp/email/bob@example.com/crm", content="stage=lead", headers=FORM)
    call(ROOT, "POST", f"/v1/userapp/token/{ann}/crm", json={"stage": "customer"})
    call(ROOT, "GET", f"/v1/userapp/token/{ann}")
    call(ROOT, "GET", "/v1/userapps")
    call(ROOT, "DELETE", f"/v1/userapp/token/{ann}/crm")
    call(ROOT, "GET", f"/v1/userapp/token/{ann}/crm")
    call(ROOT, "DELETE", f"/v1/userapp/token/{ann}/crm")
    call(ROOT, "POST", f"/v1/userapp/token/{ann}/Bad App", json={"a": 1})
    call(ROOT, "POST", f"/v1/userapp/token/{ann}/shop")
    call(as_ann, "GET", f"/v1/userapp/token/{ann}/shop")
    call(as_ann, "GET", f"/v1/userapp/token/{ann}")
    call(as_bob, "GET", f"/v1/userapp/token/{ann}/shop")
    call(as_ann, "GET", "/v1/userapps")
    call(ANONYMOUS_CALLER, "GET", f"/v1/userapp/token/{ann}/shop")

    # sessions
    call(ROOT, "POST", f"/v1/session/{SESSION_ANN}", json={"login": "ann", "cart": {"items": 2}})
    call(ROOT, "POST", f"/v1/session/{SESSION_LOOSE}", content="views=3&ip=192.0.2.1", headers=FORM)
    call(ROOT, "POST", f"/v1/session/{SESSION_SHORT}", json={"token": ann, "expiration": "10s"})
    call(ROOT, "GET", f"/v1/session/{SESSION_ANN}")
    call(ROOT, "GET", f"/v1/session/{SESSION_LOOSE}")
    call(as_ann, "GET", f"/v1/session/{SESSION_ANN}")
    call(as_ann, "GET", f"/v1/session/{SESSION_LOOSE}")
    call(as_bob, "GET", f"/v1/session/{SESSION_ANN}")
    call(ROOT, "GET", f"/v1/sessions/token/{ann}")
    call(as_ann, "GET", "/v1/sessions/login/ann?limit=1")
    call(as_bob, "GET", f"/v1/sessions/token/{ann}")
    s.transcript.clock.advance(10)
    call(ROOT, "GET", f"/v1/session/{SESSION_SHORT}")
    call(ROOT, "GET", "/v1/sessions/email/ann@example.com")
    call(ROOT, "DELETE", f"/v1/session/{SESSION_LOOSE}")
    call(ROOT, "GET", f"/v1/session/{SESSION_LOOSE}")
    call(ROOT, "DELETE", f"/v1/session/{SESSION_LOOSE}")
    call(ROOT, "GET", "/v1/session/not-a-uuid")
    call(ROOT, "POST", f"/v1/session/{SESSION_LOOSE}")
    call(ROOT, "POST", f"/v1/session/{SESSION_LOOSE}", json={"expiration": "forever"})
    call(as_ann, "POST", f"/v1/session/{SESSION_ANN}", json={"login": "ann"})
    call(as_ann, "DELETE", f"/v1/session/{SESSION_ANN}")
    call(ROOT, "GET", "/v1/sessions/size/7")

    # shared records
    fields = token_of(
        call(
            ROOT,
            "POST",
            f"/v1/sharedrecord/token/{ann}",
            json={"fields": "name,city", "partner": "acme", "expiration": "1d"},
        ),
        "record",
    )
    whole_app = token_of(
        call(ROOT, "POST", "/v1/sharedrecord/login/ann", json={"app": "shop"}), "record"
    )
    session_record = token_of(
        call(as_ann, "POST", f"/v1/sharedrecord/token/{ann}", json={"session": SESSION_ANN}),
        "record",
    )
    short = token_of(
        call(ROOT, "POST", f"/v1/sharedrecord/token/{ann}", json={"expiration": "5s"}), "record"
    )
    call(ANONYMOUS_CALLER, "GET", f"/v1/get/{fields}")
    call(ANONYMOUS_CALLER, "GET", f"/v1/get/{whole_app}")
    call(ANONYMOUS_CALLER, "GET", f"/v1/get/{session_record}")
    s.transcript.clock.advance(5)
    call(ANONYMOUS_CALLER, "GET", f"/v1/get/{short}")
    call(ANONYMOUS_CALLER, "GET", f"/v1/get/{MISSING}")
    call(ANONYMOUS_CALLER, "GET", "/v1/get/not-a-uuid")
    call(ROOT, "POST", f"/v1/sharedrecord/token/{ann}", json={"app": "nothing"})
    call(as_ann, "POST", f"/v1/sharedrecord/token/{ann}", json={"session": SESSION_LOOSE})
    call(as_bob, "POST", f"/v1/sharedrecord/token/{ann}", json={"fields": "name"})
    call(ROOT, "POST", "/v1/sharedrecord/email/nobody@example.com")
    call(ROOT, "POST", f"/v1/sharedrecord/token/{ann}", json={"partner": "a\u0001b"})

    # agreements
    call(ROOT, "POST", f"/v1/agreement/newsletter/token/{ann}", json={"status": "yes"})
    call(
        ROOT,
        "POST",
        "/v1/agreement/terms/login/ann",
        json={"referencecode": "ref-1", "lastmodifiedby": "shop", "agreementmethod": "web"},
    )
    call(as_bob, "POST", f"/v1/agreement/newsletter/token/{bob}", content="status=no", headers=FORM)
    call(ANONYMOUS_CALLER, "POST", "/v1/agreement/newsletter/email/dora@example.com", json={})
    call(
        ANONYMOUS_CALLER,
        "POST",
        "/v1/agreement/analytics/phone/07700900456",
        json={"expiration": "1d"},
    )
    call(ANONYMOUS_CALLER, "POST", "/v1/agreement/newsletter/email/dora@example.com", json={})
    call(ANONYMOUS_CALLER, "POST", f"/v1/agreement/newsletter/token/{ann}", json={})
    call(ROOT, "POST", f"/v1/agreement/no-such-basis/token/{ann}", json={})
    call(ROOT, "POST", f"/v1/agreement/Bad!/token/{ann}", json={})
    call(ROOT, "POST", f"/v1/agreement/newsletter/token/{ann}", json={"status": "perhaps"})
    call(ROOT, "POST", f"/v1/agreement/newsletter/token/{ann}", json={"expiration": "200y"})
    call(ROOT, "GET", f"/v1/agreement/newsletter/token/{ann}")
    call(as_ann, "GET", "/v1/agreement/terms/email/ann@example.com")
    call(as_bob, "GET", f"/v1/agreement/terms/token/{ann}")
    call(ROOT, "GET", f"/v1/agreement/analytics/token/{ann}")
    call(ROOT, "GET", f"/v1/agreements/token/{ann}")
    call(as_ann, "GET", "/v1/agreements/login/ann")
    call(ROOT, "GET", "/v1/agreements/email/dora@example.com")
    dora = token_of(call(ROOT, "POST", "/v1/user", json={"email": "dora@example.com"}))
    call(ROOT, "GET", f"/v1/agreements/token/{dora}")
    call(as_ann, "DELETE", f"/v1/agreement/newsletter/token/{ann}")
    call(as_ann, "DELETE", f"/v1/agreement/terms/token/{ann}")
    call(as_ann, "DELETE", f"/v1/agreement/terms/token/{ann}")
    call(ANONYMOUS_CALLER, "DELETE", f"/v1/agreement/newsletter/token/{bob}")
    call(ROOT, "DELETE", "/v1/agreement/newsletter/email/dora@example.com")
    call(ROOT, "DELETE", "/v1/agreement/analytics")
    call(ROOT, "GET", "/v1/agreements/phone/07700900456")
    call(as_ann, "DELETE", "/v1/agreement/terms")

    # data retention
    kept = token_of(
        call(ROOT, "POST", f"/v1/exp/start/token/{bob}", json={"expiration": "10d"}), "exptoken"
    )
    call(ROOT, "GET", f"/v1/exp/status/token/{bob}")
    call(as_bob, "GET", "/v1/exp/status/login/bob")
    call(as_bob, "DELETE", f"/v1/exp/cancel/token/{bob}")
    call(ANONYMOUS_CALLER, "GET", f"/v1/exp/retain/{kept}")
    call(ANONYMOUS_CALLER, "GET", f"/v1/exp/retain/{kept}")
    call(ROOT, "GET", f"/v1/exp/status/token/{bob}")
    call(ROOT, "DELETE", f"/v1/exp/cancel/token/{bob}")
    call(ROOT, "GET", f"/v1/exp/status/token/{bob}")
    gone = token_of(
        call(ROOT, "POST", "/v1/exp/start/login/carol", content="expiration=1d", headers=FORM),
        "exptoken",
    )
    call(ANONYMOUS_CALLER, "GET", f"/v1/exp/delete/{gone}")
    call(ANONYMOUS_CALLER, "GET", f"/v1/exp/delete/{gone}")
    call(ROOT, "GET", f"/v1/user/token/{carol}")
    call(ROOT, "POST", f"/v1/exp/start/token/{ann}", json={"expiration": "200y"})
    call(ROOT, "POST", "/v1/exp/start/size/7")
    call(as_ann, "POST", f"/v1/exp/start/token/{ann}", json={"expiration": "1d"})
    call(ANONYMOUS_CALLER, "GET", "/v1/exp/retain/not-a-uuid")
    call(ANONYMOUS_CALLER, "GET", f"/v1/exp/delete/{MISSING}")
    call(ROOT, "GET", f"/v1/exp/status/token/{MISSING}")

    # user requests (self-service is off)
    change = token_of(
        call(as_ann, "PUT", f"/v1/user/token/{ann}", json={"name": "Annie"}), "rtoken"
    )
    call(as_ann, "PUT", "/v1/user/login/ann", json={"name": "Anna"})
    forget = token_of(call(as_ann, "DELETE", f"/v1/user/token/{ann}"), "rtoken")
    app_change = token_of(
        call(as_ann, "PUT", f"/v1/userapp/token/{ann}/shop", json={"card": "0000"}), "rtoken"
    )
    call(as_ann, "POST", f"/v1/userapp/token/{ann}/crm", json={"stage": "gone"})
    call(as_ann, "DELETE", f"/v1/userapp/token/{ann}/shop")
    call(as_bob, "PUT", f"/v1/user/token/{ann}", json={"name": "Bobbed"})
    call(ROOT, "GET", "/v1/requests")
    call(ROOT, "GET", "/v1/requests?offset=1&limit=2")
    call(ROOT, "GET", "/v1/requests?status=bogus")
    call(ROOT, "GET", "/v1/requests?limit=abc")
    call(as_ann, "GET", "/v1/requests")
    call(ROOT, "GET", f"/v1/requests/token/{ann}")
    call(as_ann, "GET", "/v1/requests/login/ann?status=open&limit=2")
    call(as_bob, "GET", f"/v1/requests/token/{bob}")
    call(as_bob, "GET", f"/v1/requests/token/{ann}")
    call(ROOT, "GET", f"/v1/request/{change}")
    call(as_ann, "GET", f"/v1/request/{forget}")
    call(as_ann, "GET", f"/v1/request/{app_change}")
    call(as_bob, "GET", f"/v1/request/{change}")
    call(as_ann, "POST", f"/v1/request/{change}")
    call(ROOT, "POST", f"/v1/request/{change}", json={"reason": "checked"})
    call(ROOT, "POST", f"/v1/request/{change}")
    call(ROOT, "GET", f"/v1/user/token/{ann}")
    call(as_ann, "DELETE", f"/v1/request/{forget}")
    call(ROOT, "DELETE", f"/v1/request/{app_change}", content="reason=not+now", headers=FORM)
    call(ROOT, "DELETE", f"/v1/request/{app_change}")
    call(ROOT, "GET", "/v1/requests?status=approved")
    call(ROOT, "GET", "/v1/requests?status=canceled")
    call(ROOT, "GET", "/v1/request/not-a-uuid")
    call(ROOT, "GET", f"/v1/request/{MISSING}")
    call(ROOT, "POST", f"/v1/request/{MISSING}")

    # passwordless login
    first = token_of(call(ANONYMOUS_CALLER, "GET", "/v1/captcha"), "captcha")
    call(ANONYMOUS_CALLER, "GET", f"/v1/captcha/{first}", volatile_body=True, all_headers=True)
    answer = s.captcha_answer(first)
    wrong = f"{(int(answer) + 1) % 1_000_000:06d}"
    call(
        ANONYMOUS_CALLER,
        "GET",
        f"/v1/prelogin/email/ANN@example.com/{answer}/{first}",
        shown_path=f"/v1/prelogin/email/ANN@example.com/<answer>/{first}",
    )
    call(
        ANONYMOUS_CALLER,
        "GET",
        f"/v1/prelogin/email/ANN@example.com/{answer}/{first}",
        shown_path=f"/v1/prelogin/email/ANN@example.com/<answer>/{first}",
    )
    call(ANONYMOUS_CALLER, "GET", f"/v1/captcha/{first}")
    code = s.last_login_code()
    wrong_code = f"{(int(code) + 1) % 1_000_000:06d}"
    call(
        ANONYMOUS_CALLER,
        "GET",
        f"/v1/login/email/ann@example.com/{wrong_code}",
        shown_path="/v1/login/email/ann@example.com/<wrong code>",
    )
    xtoken = token_of(
        call(
            ANONYMOUS_CALLER,
            "GET",
            f"/v1/login/email/ann@example.com/{code}",
            shown_path="/v1/login/email/ann@example.com/<code>",
        ),
        "xtoken",
    )
    logged_in = Caller("ann, logged in", xtoken)
    call(
        ANONYMOUS_CALLER,
        "GET",
        f"/v1/login/email/ann@example.com/{code}",
        shown_path="/v1/login/email/ann@example.com/<code>",
    )
    call(logged_in, "GET", f"/v1/user/token/{ann}")
    call(logged_in, "POST", "/v1/logout")
    call(logged_in, "GET", f"/v1/user/token/{ann}")
    call(ROOT, "POST", "/v1/logout")
    call(ANONYMOUS_CALLER, "POST", "/v1/logout")
    other = token_of(call(ANONYMOUS_CALLER, "GET", "/v1/captcha"), "captcha")
    call(
        ANONYMOUS_CALLER,
        "GET",
        f"/v1/prelogin/email/nobody@example.com/{s.captcha_answer(other)}/{other}",
        shown_path=f"/v1/prelogin/email/nobody@example.com/<answer>/{other}",
    )
    third = token_of(call(ANONYMOUS_CALLER, "GET", "/v1/captcha"), "captcha")
    call(
        ANONYMOUS_CALLER,
        "GET",
        f"/v1/prelogin/phone/07700900123/{wrong}/{third}",
        shown_path=f"/v1/prelogin/phone/07700900123/<wrong answer>/{third}",
    )
    call(ANONYMOUS_CALLER, "GET", f"/v1/prelogin/email/ann@example.com/123456/{MISSING}")
    call(ANONYMOUS_CALLER, "GET", "/v1/prelogin/login/ann/123456/none")
    call(ANONYMOUS_CALLER, "GET", "/v1/login/token/ann/123456")
    call(ANONYMOUS_CALLER, "GET", "/v1/login/email/nobody@example.com/123456")
    call(ANONYMOUS_CALLER, "GET", f"/v1/captcha/{MISSING}")
    call(ANONYMOUS_CALLER, "GET", "/v1/captcha/not-a-captcha")

    # export
    call(ROOT, "GET", f"/v1/export/token/{bob}")
    call(as_bob, "GET", "/v1/export/login/bob")
    call(as_ann, "GET", f"/v1/export/token/{bob}")
    call(ROOT, "GET", "/v1/export/email/nobody@example.com")

    # audit
    trail = call(ROOT, "GET", f"/v1/audit/list/{bob}?limit=3")
    call(ROOT, "GET", f"/v1/audit/list/{bob}?offset=3&limit=2")
    call(as_bob, "GET", f"/v1/audit/list/{bob}?limit=2")
    call(as_ann, "GET", f"/v1/audit/list/{bob}")
    call(ROOT, "GET", "/v1/audit/list/not-a-uuid")
    call(ROOT, "GET", "/v1/audit/admin?limit=4")
    call(as_ann, "GET", "/v1/audit/admin")
    atokens = [row["atoken"] for row in trail.json()["rows"]]
    for atoken in atokens:
        call(ROOT, "GET", f"/v1/audit/get/{atoken}")
    # Events that keep the values before and after a change.
    full_trail = call(ROOT, "GET", f"/v1/audit/list/{ann}?limit=100").json()["rows"]
    for row in [row for row in full_trail if row["more"]][:4]:
        call(ROOT, "GET", f"/v1/audit/get/{row['atoken']}")
    call(as_bob, "GET", f"/v1/audit/get/{atokens[0]}")
    call(as_ann, "GET", f"/v1/audit/get/{atokens[0]}")
    call(ROOT, "GET", f"/v1/audit/get/{MISSING}")
    call(as_ann, "GET", f"/v1/audit/get/{MISSING}")
    call(ROOT, "GET", "/v1/audit/get/not-a-uuid")

    # erasure
    call(ROOT, "DELETE", f"/v1/user/token/{bob}")
    call(ROOT, "GET", f"/v1/user/token/{bob}")
    call(ROOT, "GET", "/v1/user/email/bob@example.com")
    call(ROOT, "PUT", f"/v1/user/token/{bob}", json={"name": "Back"})
    call(ROOT, "DELETE", f"/v1/user/token/{bob}")
    call(as_bob, "GET", f"/v1/user/token/{bob}")
    call(ROOT, "GET", f"/v1/userapp/token/{bob}")
    call(ROOT, "GET", f"/v1/export/token/{bob}")
    call(ROOT, "DELETE", "/v1/user/email/nobody@example.com")

    # the edge: unknown endpoints, methods, preflight
    call(ANONYMOUS_CALLER, "GET", "/v1/nothing", all_headers=True)
    call(ROOT, "GET", "/v2/user")
    call(ANONYMOUS_CALLER, "OPTIONS", f"/v1/user/token/{ann}", all_headers=True)
    call(ANONYMOUS_CALLER, "OPTIONS", "/v1/nothing")
    call(ROOT, "POST", "/v1/status")
    call(ROOT, "PUT", "/v1/requests")
    call(ROOT, "GET", "/v1/logout")
    call(ANONYMOUS_CALLER, "GET", "/v1/sys/ready")

    # the API's own OpenAPI document (its body is pinned by tests/integration/api/test_openapi.py)
    call(ANONYMOUS_CALLER, "GET", "/v1/openapi.json", shown_body=document_outline)

    call(ANONYMOUS_CALLER, "GET", "/v1/metrics", shown_body=request_counts)
    app = s.transcript.client.app
    assert isinstance(app, Application)
    assert routes_not_driven(app.starlette.router.routes, s.transcript.sent) == []
    s.finish("v1_default.txt")


def test_self_service(stage: StageFactory) -> None:
    """Self-service on, open sign-up, the user list and login without a captcha: a person
    changes and erases their own data directly."""
    s = stage(
        generic={
            "create_user_without_access_token": True,
            "list_users": True,
            "login_captcha": False,
        },
        selfservice={"user_record_change": True, "forget_me": True, "app_record_change": ["shop"]},
        **DELIVERY,
    )
    call = s.call

    ann = token_of(call(ANONYMOUS_CALLER, "POST", "/v1/user", json=ANN))
    bob = token_of(call(STRANGER, "POST", "/v1/user", json=BOB))
    token_of(call(ROOT, "POST", "/v1/user", json={"login": "carol", "name": "Carol"}))
    call(ROOT, "POST", "/v1/users")
    call(ROOT, "POST", "/v1/users?offset=1&limit=1")
    call(ROOT, "POST", "/v1/users?limit=0")
    call(ROOT, "POST", "/v1/users?limit=1000")
    call(ANONYMOUS_CALLER, "POST", "/v1/users")
    as_ann = s.person("ann", ann)
    as_bob = s.person("bob", bob)
    call(as_ann, "POST", "/v1/users")
    call(as_ann, "PUT", f"/v1/user/token/{ann}", json={"name": "Annie"})
    call(
        as_ann, "PUT", "/v1/user/login/ann", json=[{"op": "add", "path": "/city", "value": "Leeds"}]
    )
    call(as_ann, "PUT", f"/v1/user/token/{ann}", json={"email": "bob@example.com"})
    call(as_bob, "PUT", f"/v1/user/token/{ann}", json={"name": "Bobbed"})
    call(as_ann, "GET", f"/v1/user/token/{ann}")
    call(as_ann, "POST", f"/v1/userapp/token/{ann}/shop", json={"basket": ["tea"]})
    call(as_ann, "PUT", f"/v1/userapp/token/{ann}/shop", json={"card": "4242"})
    call(as_ann, "POST", f"/v1/userapp/token/{ann}/crm", json={"stage": "lead"})
    call(as_ann, "GET", f"/v1/userapp/token/{ann}/shop")
    call(as_ann, "DELETE", f"/v1/userapp/token/{ann}/shop")
    call(ROOT, "POST", "/v1/lbasis/terms", json=TERMS)
    call(as_ann, "POST", f"/v1/agreement/terms/token/{ann}", json={})
    call(as_ann, "DELETE", f"/v1/agreement/terms/token/{ann}")
    call(ROOT, "GET", "/v1/requests")
    call(as_ann, "GET", f"/v1/requests/token/{ann}")
    call(as_ann, "DELETE", f"/v1/user/token/{ann}")
    call(as_ann, "GET", f"/v1/user/token/{ann}")
    call(ROOT, "GET", f"/v1/user/token/{ann}")
    call(ROOT, "GET", "/v1/user/login/ann")
    call(ROOT, "POST", "/v1/users")
    call(ROOT, "GET", f"/v1/audit/list/{ann}?limit=100")
    call(ROOT, "GET", "/v1/sys/configuration")

    # Without a captcha the last two segments are ignored; the sixth prelogin for one
    # identity within 15 minutes is refused.
    for _ in range(6):
        call(ANONYMOUS_CALLER, "GET", "/v1/prelogin/email/bob@example.com/000000/none")
    code = s.last_login_code()
    call(
        ANONYMOUS_CALLER,
        "GET",
        f"/v1/login/email/bob@example.com/{code}",
        shown_path="/v1/login/email/bob@example.com/<code>",
    )

    s.finish("v1_selfservice.txt")


def test_user_record_schema(stage: StageFactory) -> None:
    """A user-record schema with locked, admin and preserved fields (self-service on)."""
    s = stage(SCHEMA, selfservice={"user_record_change": True})
    call = s.call

    call(ROOT, "POST", "/v1/user", json={"login": "ann"})
    call(ROOT, "POST", "/v1/user", json={"login": "ann", "name": 7})
    ann = token_of(
        call(
            ROOT,
            "POST",
            "/v1/user",
            json={"name": "Ann", "login": "ann", "email": "ann@example.com", "ssn": "123"},
        )
    )
    call(ROOT, "PUT", f"/v1/user/token/{ann}", json={"name": 7})
    call(ROOT, "PUT", f"/v1/user/token/{ann}", json={"name": None})
    call(ROOT, "PUT", f"/v1/user/token/{ann}", json={"ssn": "999"})
    call(ROOT, "PUT", f"/v1/user/token/{ann}", json={"tier": "gold"})
    as_ann = s.person("ann", ann)
    call(as_ann, "PUT", f"/v1/user/token/{ann}", json={"name": "Annie"})
    rtoken = token_of(
        call(as_ann, "PUT", f"/v1/user/token/{ann}", json={"tier": "platinum"}), "rtoken"
    )
    call(as_ann, "PUT", f"/v1/user/token/{ann}", json={"ssn": "000"})
    call(ROOT, "GET", f"/v1/request/{rtoken}")
    call(ROOT, "POST", f"/v1/request/{rtoken}")
    call(ROOT, "GET", f"/v1/user/token/{ann}")
    call(ROOT, "DELETE", f"/v1/user/token/{ann}")
    call(ROOT, "GET", f"/v1/user/token/{ann}")
    call(ROOT, "GET", "/v1/user/login/ann")
    call(ROOT, "GET", "/v1/user/email/ann@example.com")

    s.finish("v1_schema.txt")
