"""Emails through a real SMTP server and text messages through a real local HTTP gateway.

Rows are queued with ``enqueue_email`` / ``enqueue_sms`` as a login would, and delivered with
``deliver_due`` and the test clock. What is asserted is what the SMTP server or the gateway
receives, and that no row (which would carry the code) outlives its delivery.
"""

from __future__ import annotations

import base64
import email.utils
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest
import sqlalchemy as sa

from databunker.jobs import SYSTEM, registered_jobs, run_jobs
from databunker.notify.dispatcher import (
    MESSAGE_LIFETIME_SECONDS,
    OutboxDispatcher,
    deliver_due,
)
from databunker.services.context import Context, Work
from databunker.services.outbox import enqueue_email, enqueue_sms
from databunker.storage.tables import outbox
from support.mail import MailServer
from support.server import free_port
from support.sms_gateway import SmsGateway, query
from support.vaults import Clock

TEXT = "Access code is 123456 — übung"
PHONE = "+44 7700 900123"
SMS_TEXT = 'Databunker code 654321 & "more" \\ _TOKEN_'
GATEWAY_TOKEN = "gw-t0ken-secret"


@pytest.fixture
def mail() -> Iterator[MailServer]:
    with MailServer() as server:
        yield server


@pytest.fixture
def gateway() -> Iterator[SmsGateway]:
    with SmsGateway() as server:
        yield server


def mail_vault(make_vault: Any, port: int, **smtp: Any) -> Context:
    settings = {
        "server": "127.0.0.1",
        "port": port,
        "security": "none",
        "sender": "Vault <vault@example.org>",
        **smtp,
    }
    vault: Context = make_vault(smtp=settings)
    return vault


def sms_vault(make_vault: Any, url: str, **sms: Any) -> Context:
    vault: Context = make_vault(sms={"url": url, "from": "Bunker", "token": GATEWAY_TOKEN, **sms})
    return vault


def queue_email(vault: Context, to: str = "ann@example.com", text: str = TEXT) -> None:
    with vault.database.transaction() as conn:
        enqueue_email(Work(vault, conn, SYSTEM, vault.clock()), to, "Access Code", text)


def queue_sms(vault: Context, to: str = PHONE, text: str = SMS_TEXT) -> None:
    with vault.database.transaction() as conn:
        enqueue_sms(Work(vault, conn, SYSTEM, vault.clock()), to, text)


def outbox_rows(vault: Context) -> list[sa.Row[Any]]:
    with vault.database.transaction() as conn:
        return list(conn.execute(sa.select(outbox).order_by(outbox.c.id)))


# Bookkeeping numbers of every record (times, ids, line numbers): they carry no data from a
# request, and a timestamp may contain any digits by chance.
RECORD_NUMBERS = {"created", "msecs", "relativeCreated", "thread", "process", "lineno", "levelno"}


def logged_by_databunker(caplog: pytest.LogCaptureFixture) -> str:
    records = [r for r in caplog.records if r.name.startswith("databunker")]
    fields = [{k: v for k, v in r.__dict__.items() if k not in RECORD_NUMBERS} for r in records]
    return "\n".join(r.getMessage() for r in records) + repr(fields)


# -- email -----------------------------------------------------------------------------------
def test_an_email_arrives_as_a_proper_mime_message_and_its_row_is_deleted(
    make_vault: Any, mail: MailServer, clock: Clock
) -> None:
    vault = mail_vault(make_vault, mail.port)
    queue_email(vault)

    assert deliver_due(vault, clock.now) == 1

    [received] = mail.wait_for(1)
    assert received.envelope_from == "vault@example.org"
    assert received.envelope_to == ["ann@example.com"]
    message = received.message
    assert message["From"] == "Vault <vault@example.org>"
    assert message["To"] == "ann@example.com"
    assert message["Subject"] == "Access Code"
    assert email.utils.parsedate_to_datetime(message["Date"]).timestamp() == clock.now
    assert message["Message-ID"].endswith("@example.org>")
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    assert received.text.rstrip("\n") == TEXT
    # Headers and body are separated by a blank line (the original's bug is not repeated).
    assert b"\r\n\r\n" in received.raw
    assert outbox_rows(vault) == []


def test_an_email_refused_by_the_server_is_retried_without_values_in_the_row_or_log(
    make_vault: Any, mail: MailServer, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    vault = mail_vault(make_vault, mail.port)
    queue_email(vault)
    mail.fail_next(1)

    with caplog.at_level("DEBUG"):
        assert deliver_due(vault, clock.now) == 0
    [row] = outbox_rows(vault)
    assert row.last_error == "smtp SMTPDataError"
    assert row.attempts == 1
    logged = logged_by_databunker(caplog)
    for secret in ("ann@example.com", "123456"):
        assert secret not in logged
    assert "email delivery failed, will retry" in caplog.text

    assert deliver_due(vault, clock.now) == 0  # not due yet
    clock.advance(row.next_attempt - clock.now)
    assert deliver_due(vault, clock.now) == 1
    assert [m.text.rstrip("\n") for m in mail.wait_for(1)] == [TEXT]
    assert outbox_rows(vault) == []


def test_an_unreachable_smtp_server_is_a_recorded_failure(make_vault: Any, clock: Clock) -> None:
    vault = mail_vault(make_vault, free_port())
    queue_email(vault)

    assert deliver_due(vault, clock.now) == 0

    [row] = outbox_rows(vault)
    assert row.last_error == "smtp ConnectionRefusedError"


def test_a_header_with_a_line_break_is_never_sent(
    make_vault: Any, mail: MailServer, clock: Clock
) -> None:
    vault = mail_vault(make_vault, mail.port)
    queue_email(vault, to="ann@example.com\r\nBcc: eve@example.com")

    assert deliver_due(vault, clock.now) == 0

    assert mail.attempts == 0
    [row] = outbox_rows(vault)
    assert row.last_error == "smtp ValueError"


def test_an_email_not_delivered_within_the_code_lifetime_is_dropped(
    make_vault: Any, mail: MailServer, clock: Clock
) -> None:
    vault = mail_vault(make_vault, mail.port)
    queue_email(vault)
    mail.fail_next(100)

    delivered = 0
    for _ in range(10):
        delivered += deliver_due(vault, clock.now)
        rows = outbox_rows(vault)
        if not rows:
            break
        clock.advance(max(rows[0].next_attempt - clock.now, 1))
    assert delivered == 0
    assert outbox_rows(vault) == []
    assert mail.messages == []
    assert mail.attempts > 1


def test_stale_messages_are_purged_even_without_a_deliverer(make_vault: Any, clock: Clock) -> None:
    vault: Context = make_vault(
        smtp={"server": "127.0.0.1", "port": free_port(), "security": "none"},
        sms={"url": f"http://127.0.0.1:{free_port()}/send"},
    )
    purge = [job for job in registered_jobs() if job.name == "purge delivered webhooks"]
    queue_email(vault)
    queue_sms(vault)
    clock.advance(MESSAGE_LIFETIME_SECONDS - 1)
    assert run_jobs(vault, purge) == {"purge delivered webhooks": 0}
    assert len(outbox_rows(vault)) == 2

    clock.advance(2)
    assert run_jobs(vault, purge) == {"purge delivered webhooks": 2}
    assert outbox_rows(vault) == []


def test_a_dispatcher_runs_for_email_or_sms_alone(make_vault: Any) -> None:
    assert OutboxDispatcher.for_deployment(make_vault()) is None
    assert OutboxDispatcher.for_deployment(mail_vault(make_vault, 25)) is not None
    assert OutboxDispatcher.for_deployment(sms_vault(make_vault, "http://127.0.0.1:9/")) is not None


# -- SMS -------------------------------------------------------------------------------------
def test_an_sms_goes_out_by_get_with_every_placeholder_url_encoded(
    make_vault: Any, gateway: SmsGateway, clock: Clock
) -> None:
    url = gateway.url + "?to=_PHONE_&from=_FROM_&key=_TOKEN_&text=_MSG_"
    vault = sms_vault(make_vault, url)
    queue_sms(vault)

    assert deliver_due(vault, clock.now) == 1

    [received] = gateway.wait_for(1)
    assert received.method == "GET"
    assert received.body == b""
    assert query(received) == {
        "to": [PHONE],
        "from": ["Bunker"],
        "key": [GATEWAY_TOKEN],
        # A value holding a placeholder's name is not substituted again.
        "text": [SMS_TEXT],
    }
    assert outbox_rows(vault) == []


def test_an_sms_goes_out_by_post_as_json_with_basic_auth_and_a_custom_header(
    make_vault: Any, gateway: SmsGateway, clock: Clock
) -> None:
    vault = sms_vault(
        make_vault,
        gateway.url,
        method="POST",
        content_type="application/json",
        body='{"To": "_PHONE_", "From": "_FROM_", "Body": "_MSG_", "n": 1, "tags": ["_FROM_"]}',
        basic_auth="AC123:auth-pa55",
        custom_header="X-Api-Key: _k3y_",
    )
    queue_sms(vault)

    assert deliver_due(vault, clock.now) == 1

    [received] = gateway.wait_for(1)
    assert received.method == "POST"
    assert received.path == "/send"
    assert received.header("Content-Type") == "application/json"
    assert received.json() == {
        "To": PHONE,
        "From": "Bunker",
        "Body": SMS_TEXT,
        "n": 1,
        "tags": ["Bunker"],
    }
    expected_auth = base64.b64encode(b"AC123:auth-pa55").decode()
    assert received.header("Authorization") == f"Basic {expected_auth}"
    assert received.header("X-Api-Key") == "_k3y_"


def test_an_sms_goes_out_by_post_as_a_form(
    make_vault: Any, gateway: SmsGateway, clock: Clock
) -> None:
    vault = sms_vault(
        make_vault, gateway.url, method="post", body="To=_PHONE_&From=_FROM_&Body=_MSG_"
    )
    queue_sms(vault)

    assert deliver_due(vault, clock.now) == 1

    [received] = gateway.wait_for(1)
    assert received.method == "POST"
    assert received.header("Content-Type") == "application/x-www-form-urlencoded"
    assert parse_qs(received.body.decode()) == {
        "To": [PHONE],
        "From": ["Bunker"],
        "Body": [SMS_TEXT],
    }


def test_a_failing_gateway_is_retried_and_neither_url_nor_code_is_logged(
    make_vault: Any, gateway: SmsGateway, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    vault = sms_vault(make_vault, gateway.url + "?key=_TOKEN_&text=_MSG_&to=_PHONE_")
    queue_sms(vault, text="Databunker code 777888")
    gateway.fail_next(2, status=503)

    with caplog.at_level("DEBUG"):
        assert deliver_due(vault, clock.now) == 0
        [row] = outbox_rows(vault)
        assert row.last_error == "http 503"
        clock.advance(row.next_attempt - clock.now)
        assert deliver_due(vault, clock.now) == 0
        [row] = outbox_rows(vault)
        assert row.attempts == 2
        clock.advance(row.next_attempt - clock.now)
        assert deliver_due(vault, clock.now) == 1

    assert len(gateway.wait_for(3, acknowledged=False)) == 3
    assert query(gateway.acknowledged[0])["text"] == ["Databunker code 777888"]
    assert outbox_rows(vault) == []
    logged = logged_by_databunker(caplog)
    for secret in (GATEWAY_TOKEN, "777888", "7700"):
        assert secret not in logged
    assert "sms delivery failed, will retry" in caplog.text


def test_an_unreachable_gateway_is_a_recorded_failure(make_vault: Any, clock: Clock) -> None:
    down = sms_vault(make_vault, f"http://127.0.0.1:{free_port()}/send?k=_TOKEN_")
    queue_sms(down)
    assert deliver_due(down, clock.now) == 0
    assert [row.last_error for row in outbox_rows(down)] == ["sms ConnectError"]


def test_a_broken_json_template_is_a_recorded_failure(
    make_vault: Any, gateway: SmsGateway, clock: Clock
) -> None:
    vault = sms_vault(
        make_vault, gateway.url, method="POST", content_type="json", body='{"To": _PHONE_}'
    )
    queue_sms(vault)

    assert deliver_due(vault, clock.now) == 0

    assert gateway.requests == []
    assert [row.last_error for row in outbox_rows(vault)] == ["sms invalid body template"]
