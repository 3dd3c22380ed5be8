"""Notifications a unit of work queues: webhooks, emails and text messages.

Each is a row of the outbox (``storage.outbox``), written in the unit's own transaction; the
dispatcher (``notify.dispatcher``) delivers it after commit. A kind that is not configured
queues nothing.
"""

from __future__ import annotations

from typing import Any

from databunker.notify.dispatcher import (
    KEEP_DELIVERED_SECONDS,
    MESSAGE_KINDS,
    MESSAGE_LIFETIME_SECONDS,
)
from databunker.services.context import Work
from databunker.storage import outbox as outbox_rows


def enqueue_webhook(work: Work, payload: dict[str, Any]) -> None:
    """Queue a webhook if ``notification.notification_url`` is set; no-op otherwise."""
    if not work.settings.notification.notification_url:
        return
    key = work.keyring.service_key("outbox")
    outbox_rows.enqueue(work.conn, key, outbox_rows.WEBHOOK, payload, work.now)
    work.queued += 1


def enqueue_email(work: Work, to: str | None, subject: str, text: str) -> None:
    """Queue an email (payload ``{"to","subject","text"}``); no-op without ``smtp.server``.

    ``to=None`` writes a void message, stored as already delivered and never sent: a caller
    that must not reveal whether a recipient exists does the same work either way."""
    if not work.settings.smtp.server:
        return
    payload = {"to": to or "", "subject": subject, "text": text}
    key = work.keyring.service_key("outbox")
    outbox_rows.enqueue(work.conn, key, outbox_rows.EMAIL, payload, work.now, void=to is None)
    work.queued += 1


def enqueue_sms(work: Work, to: str | None, text: str) -> None:
    """Queue a text message (payload ``{"to","text"}``); no-op without ``sms.url``.
    ``to=None``: a void message, as for ``enqueue_email``."""
    if not work.settings.sms.url:
        return
    key = work.keyring.service_key("outbox")
    payload = {"to": to or "", "text": text}
    outbox_rows.enqueue(work.conn, key, outbox_rows.SMS, payload, work.now, void=to is None)
    work.queued += 1


def purge_delivered(work: Work) -> int:
    """Delete webhooks acknowledged more than ``KEEP_DELIVERED_SECONDS`` ago, and emails and
    text messages still undelivered after ``MESSAGE_LIFETIME_SECONDS`` (their codes are void)."""
    purged = outbox_rows.delete_delivered_before(work.conn, work.now - KEEP_DELIVERED_SECONDS)
    return purged + outbox_rows.delete_stale(
        work.conn, kinds=list(MESSAGE_KINDS), created_before=work.now - MESSAGE_LIFETIME_SECONDS
    )
