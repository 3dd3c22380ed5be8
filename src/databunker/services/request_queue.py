"""Opening a user request: a data subject's change that waits for a DPO's approval.

Actions: ``forget-me``, ``change-profile``, ``change-app-data``, ``agreement-withdraw``.
While a request for the same action (and app or brief) is open, a new one is not created:
the caller is told it exists, with the open request's token. A new request alerts
``generic.admin_email`` (the action only, never a personal value). The proposed change is
stored only under the person's data key, bound to the request and the person.

The aggregates (users, apps, agreements) queue their changes here; ``services.requests``,
the layer above them, lists, approves and cancels.
"""

from __future__ import annotations

from typing import Any

from databunker.crypto import DataKey, value_context
from databunker.services import documents
from databunker.services.context import Work
from databunker.services.outbox import enqueue_email
from databunker.services.results import RequestOpened
from databunker.storage import requests as request_rows

ACTIONS = ("forget-me", "change-profile", "change-app-data", "agreement-withdraw")
ALERT_SUBJECT = "Data Subject request received"


def change_context(rtoken: str, user_token: str) -> bytes:
    return value_context("requests", "change", rtoken, user_token)


def open_request(
    work: Work,
    *,
    user_token: str,
    action: str,
    key: DataKey | None = None,
    app: str | None = None,
    brief: str | None = None,
    change: Any = None,
) -> RequestOpened:
    """Queue a request, or name the open one for the same thing (``existed``)."""
    assert action in ACTIONS
    existing = request_rows.find_open(
        work.conn, user_token=user_token, action=action, app=app, brief=brief
    )
    if existing is not None:
        return RequestOpened(existing, existed=True)
    rtoken = work.random.token()
    sealed = None
    if change is not None:
        if key is None:
            raise ValueError("a change is stored only under the person's key")
        sealed = key.encrypt(documents.encode(change), change_context(rtoken, user_token))
    request_rows.insert(
        work.conn,
        request_rows.RequestRow(
            rtoken=rtoken,
            user_token=user_token,
            action=action,
            status=request_rows.OPEN,
            app=app,
            brief=brief,
            change=sealed,
            reason=None,
            created=work.now,
            updated=work.now,
        ),
    )
    work.audit.record(msg=f"request {rtoken}")
    admin = work.settings.generic.admin_email
    if admin:
        enqueue_email(work, admin, ALERT_SUBJECT, f"Request: {action}")
    return RequestOpened(rtoken)
