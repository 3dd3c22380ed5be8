"""The outbox: notifications written in the same transaction as the change they report.

A rollback therefore sends nothing, and a crash after commit loses nothing: the dispatcher
delivers queued rows after commit and retries until the receiver acknowledges. Payloads are
encrypted under the ``outbox`` service key, since they may outlive the person they concern.
"""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from databunker.crypto import DataKey, value_context
from databunker.services.context import Work
from databunker.storage.tables import outbox

WEBHOOK = "webhook"
EMAIL = "email"
SMS = "sms"


def payload_context(row_id: int | str) -> bytes:
    return value_context("outbox", "payload", str(row_id), "outbox")


def enqueue_webhook(work: Work, payload: dict[str, Any]) -> None:
    """Queue a webhook if ``notification.notification_url`` is set; no-op otherwise."""
    if not work.settings.notification.notification_url:
        return
    enqueue(work.conn, work.keyring.service_key("outbox"), WEBHOOK, payload, work.now)
    work.queued += 1


def enqueue_email(work: Work, to: str, subject: str, text: str) -> None:
    """Queue an email (payload ``{"to","subject","text"}``); no-op without ``smtp.server``."""
    if not work.settings.smtp.server:
        return
    payload = {"to": to, "subject": subject, "text": text}
    enqueue(work.conn, work.keyring.service_key("outbox"), EMAIL, payload, work.now)
    work.queued += 1


def enqueue_sms(work: Work, to: str, text: str) -> None:
    """Queue a text message (payload ``{"to","text"}``); no-op without ``sms.url``."""
    if not work.settings.sms.url:
        return
    enqueue(work.conn, work.keyring.service_key("outbox"), SMS, {"to": to, "text": text}, work.now)
    work.queued += 1


def enqueue(conn: Connection, key: DataKey, kind: str, payload: dict[str, Any], now: int) -> int:
    # The row id is part of the associated data, so the row is inserted first and sealed after.
    row_id = conn.execute(
        outbox.insert()
        .values(kind=kind, payload=b"", created=now, next_attempt=now)
        .returning(outbox.c.id)
    ).scalar_one()
    sealed = key.encrypt(orjson.dumps(payload), payload_context(row_id))
    conn.execute(sa.update(outbox).where(outbox.c.id == row_id).values(payload=sealed))
    return int(row_id)


def open_payload(key: DataKey, row_id: int, sealed: bytes) -> dict[str, Any]:
    payload: dict[str, Any] = orjson.loads(key.decrypt(sealed, payload_context(row_id)))
    return payload
