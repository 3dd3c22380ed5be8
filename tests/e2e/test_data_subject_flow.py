"""The whole data-subject flow against a real ``databunker serve`` process.

A person created by the admin asks for a login code by email (a real SMTP server, aiosmtpd)
and by SMS (a real local HTTP gateway), logs in with each, reads their profile, asks for a
change and for erasure (both become requests under the default self-service settings), the
admin approves them, and afterwards the person's data is gone and they can no longer log in.
Captchas are off (``GENERIC_LOGIN_CAPTCHA=false``); waits are on the servers' condition
variables, never sleeps.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from support.mail import MailServer
from support.server import ServerProcess, run_cli
from support.sms_gateway import SmsGateway, query

pytestmark = pytest.mark.e2e

EMAIL = "ann.flow@example.com"
PHONE = "+447700900123"
GATEWAY_TOKEN = "gw-e2e-t0ken"
# The dispatcher is woken at commit; the periodic round (1 s) is the fallback.
DELIVERY_TIMEOUT = 30.0
CODE = re.compile(r"\b(\d{6})\b")


@pytest.fixture
def mail() -> Iterator[MailServer]:
    with MailServer() as server:
        yield server


@pytest.fixture
def gateway() -> Iterator[SmsGateway]:
    with SmsGateway() as server:
        yield server


@pytest.fixture
def server(
    database_url: str, tmp_path: Path, mail: MailServer, gateway: SmsGateway
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
        "SMTP_SERVER": "127.0.0.1",
        "SMTP_PORT": str(mail.port),
        "SMTP_SECURITY": "none",
        "SMTP_SENDER": "vault@example.org",
        "SMS_URL": gateway.url + "?to=_PHONE_&key=_TOKEN_&text=_MSG_",
        "SMS_TOKEN": GATEWAY_TOKEN,
    }
    with ServerProcess(["serve", "--db", database_url], env, cwd=tmp_path) as process:
        yield process, values["DATABUNKER_ROOTTOKEN"].strip()


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, (response.request.url.path, response.text)
    body: dict[str, Any] = response.json()
    assert body["status"] == "ok", body
    return body


def code_in(text: str) -> str:
    found = CODE.search(text)
    assert found is not None, "no code in the message"
    return found.group(1)


def test_a_person_logs_in_by_email_and_sms_changes_and_erases_their_data(
    server: tuple[ServerProcess, str], mail: MailServer, gateway: SmsGateway
) -> None:
    process, root_token = server
    with (
        httpx.Client(base_url=process.url, timeout=15.0) as anonymous,
        httpx.Client(
            base_url=process.url, headers={"X-Bunker-Token": root_token}, timeout=15.0
        ) as admin,
    ):
        profile = {"email": EMAIL, "phone": PHONE, "name": "Ann"}
        token = ok(admin.post("/v1/user", json=profile))["token"]

        # A code by email, and a login with it.
        answer = ok(anonymous.get(f"/v1/prelogin/email/{EMAIL}/x/x"))
        assert answer == {"status": "ok", "result": "done"}
        [letter] = mail.wait_for(1, timeout=DELIVERY_TIMEOUT)
        assert letter.envelope_to == [EMAIL]
        assert letter.message["To"] == EMAIL
        assert letter.message["From"] == "vault@example.org"
        login = ok(anonymous.get(f"/v1/login/email/{EMAIL}/{code_in(letter.text)}"))
        assert login["token"] == token
        person = {"X-Bunker-Token": login["xtoken"]}

        # The person reads their profile and asks for a change: a request for the admin.
        mine = ok(anonymous.get(f"/v1/user/token/{token}", headers=person))
        assert mine["data"] == profile
        renamed = {"name": "Ann B"}
        change = ok(anonymous.put(f"/v1/user/token/{token}", json=renamed, headers=person))
        assert change["result"] == "request-created"
        ok(admin.post(f"/v1/request/{change['rtoken']}"))
        mine = ok(anonymous.get(f"/v1/user/token/{token}", headers=person))
        assert mine["data"] == {**profile, "name": "Ann B"}

        # A code by SMS through the HTTP gateway, and a login with it.
        ok(anonymous.get(f"/v1/prelogin/phone/{PHONE}/x/x"))
        [text] = gateway.wait_for(1, timeout=DELIVERY_TIMEOUT)
        sent = query(text)
        assert sent["to"] == [PHONE]
        assert sent["key"] == [GATEWAY_TOKEN]
        login = ok(anonymous.get(f"/v1/login/phone/{PHONE}/{code_in(sent['text'][0])}"))
        assert login["token"] == token
        person = {"X-Bunker-Token": login["xtoken"]}

        # The person asks for erasure; the admin approves.
        erasure = ok(anonymous.delete(f"/v1/user/token/{token}", headers=person))
        assert erasure["result"] == "request-created"
        assert ok(admin.get(f"/v1/user/token/{token}"))["data"] == {**profile, "name": "Ann B"}
        ok(admin.post(f"/v1/request/{erasure['rtoken']}"))

        assert ok(admin.get(f"/v1/user/token/{token}"))["data"] == {}
        assert admin.get(f"/v1/user/email/{EMAIL}").status_code == 404
        assert anonymous.get(f"/v1/user/token/{token}", headers=person).status_code == 403

        # No code reaches the erased person: the next message to arrive is someone else's.
        bob = {"email": "bob.flow@example.com", "name": "Bob"}
        ok(admin.post("/v1/user", json=bob))
        assert ok(anonymous.get(f"/v1/prelogin/email/{EMAIL}/x/x"))["result"] == "done"
        ok(anonymous.get(f"/v1/prelogin/email/{bob['email']}/x/x"))
        letters = mail.wait_for(2, timeout=DELIVERY_TIMEOUT)
        assert [m.envelope_to for m in letters] == [[EMAIL], [bob["email"]]]
        refused = anonymous.get(f"/v1/login/email/{EMAIL}/{code_in(letter.text)}")
        assert refused.status_code == 400
        assert len(gateway.requests) == 1
