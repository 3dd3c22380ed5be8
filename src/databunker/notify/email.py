"""Email delivery: one queued outbox row of kind ``email`` sent through ``smtp.*``.

The message is a proper MIME message (``From``, ``To``, ``Subject``, ``Date``,
``Message-ID``, a ``text/plain; charset=utf-8`` body); the connection is plain, STARTTLS or
implicit TLS (``smtp.security``) with the system's trusted certificates, and logs in when
``smtp.user`` is set. Callers run ``send_email`` in a worker thread: it blocks on the network
for at most ``TIMEOUT_SECONDS`` per step.

Invariant: nothing of the message, the address or the credentials reaches the log or the
outbox row: a failure is described by ``failure_description`` as ``smtp <exception type>``.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, make_msgid
from typing import Any

from databunker.config import SmtpSettings

__all__ = ["TIMEOUT_SECONDS", "build_message", "failure_description", "send_email"]

TIMEOUT_SECONDS = 10.0
# The Message-ID domain when the sender address has none (make_msgid would ask DNS).
_FALLBACK_DOMAIN = "databunker.invalid"


def build_message(smtp: SmtpSettings, payload: dict[str, Any], *, now: int) -> EmailMessage:
    """The MIME message for a payload ``{"to","subject","text"}``.

    Raises ValueError for a header value that would break the message (a line break).
    """
    sender = smtp.sender or smtp.user
    message = EmailMessage(policy=SMTP_POLICY)
    message["From"] = sender
    message["To"] = str(payload["to"])
    message["Subject"] = str(payload["subject"])
    message["Date"] = formatdate(now, usegmt=True)
    domain = sender.rpartition("@")[2] if "@" in sender else ""
    message["Message-ID"] = make_msgid(domain=domain or _FALLBACK_DOMAIN)
    message.set_content(str(payload["text"]), subtype="plain", charset="utf-8")
    return message


def send_email(smtp: SmtpSettings, payload: dict[str, Any], *, now: int) -> None:
    """Send one message; raises on any failure (see ``failure_description``)."""
    message = build_message(smtp, payload, now=now)
    envelope_sender = smtp.sender or smtp.user
    client: smtplib.SMTP
    if smtp.security == "tls":
        context = ssl.create_default_context()
        client = smtplib.SMTP_SSL(smtp.server, smtp.port, timeout=TIMEOUT_SECONDS, context=context)
    else:
        client = smtplib.SMTP(smtp.server, smtp.port, timeout=TIMEOUT_SECONDS)
    with client:
        if smtp.security == "starttls":
            client.starttls(context=ssl.create_default_context())
        if smtp.user:
            client.login(smtp.user, smtp.pass_)
        client.send_message(message, from_addr=envelope_sender, to_addrs=[str(payload["to"])])


def failure_description(exc: BaseException) -> str:
    """``smtp <exception type>``: no address, server answer or credential in it."""
    return f"smtp {type(exc).__name__}"
