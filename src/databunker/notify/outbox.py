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


def enqueue_email(work: Work, to: str | None, subject: str, text: str) -> None:
    """Queue an email (payload ``{"to","subject","text"}``); no-op without ``smtp.server``.

    ``to=None`` writes a void message, stored as already delivered and never sent: a caller
    that must not reveal whether a recipient exists does the same work either way."""
    if not work.settings.smtp.server:
        return
    payload = {"to": to or "", "subject": subject, "text": text}
    key = work.keyring.service_key("outbox")
    enqueue(work.conn, key, EMAIL, payload, work.now, void=to is None)
    work.queued += 1


def enqueue_sms(work: Work, to: str | None, text: str) -> None:
    """Queue a text message (payload ``{"to","text"}``); no-op without ``sms.url``.
    ``to=None``: a void message, as for ``enqueue_email``."""
    if not work.settings.sms.url:
        return
    key = work.keyring.service_key("outbox")
    enqueue(work.conn, key, SMS, {"to": to or "", "text": text}, work.now, void=to is None)
    work.queued += 1


def enqueue(
    conn: Connection,
    key: DataKey,
    kind: str,
    payload: dict[str, Any],
    now: int,
    *,
    void: bool = False,
) -> int:
    """Insert a sealed row; a ``void`` one is written as delivered, so it is never sent."""
    # The row id is part of the associated data, so the row is inserted first and sealed after.
    row_id = conn.execute(
        outbox.insert()
        .values(
            kind=kind,
            payload=b"",
            created=now,
            next_attempt=now,
            delivered=now if void else None,
        )
        .returning(outbox.c.id)
    ).scalar_one()
    sealed = key.encrypt(orjson.dumps(payload), payload_context(row_id))
    conn.execute(sa.update(outbox).where(outbox.c.id == row_id).values(payload=sealed))
    return int(row_id)


def open_payload(key: DataKey, row_id: int, sealed: bytes) -> dict[str, Any]:
    payload: dict[str, Any] = orjson.loads(key.decrypt(sealed, payload_context(row_id)))
    return payload
