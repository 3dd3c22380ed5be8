"""User requests: a data subject's change that needs a DPO's approval is queued here.

Actions: ``forget-me``, ``change-profile``, ``change-app-data``, ``agreement-withdraw``.
While a request for the same action (and app or brief) is open, a new one is not created:
the caller is told ``request-exists`` with the open request's token.
"""

from __future__ import annotations

from typing import Any

from databunker.crypto import DataKey, new_token, value_context
from databunker.services import documents
from databunker.services.context import Work
from databunker.storage import requests as repo

ACTIONS = ("forget-me", "change-profile", "change-app-data", "agreement-withdraw")


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
) -> dict[str, Any]:
    """Queue a request; answers Databunker's ``request-created`` / ``request-exists`` shape."""
    assert action in ACTIONS
    existing = repo.find_open(work.conn, user_token=user_token, action=action, app=app, brief=brief)
    if existing is not None:
        return {"status": "ok", "result": "request-exists", "rtoken": existing}
    rtoken = new_token()
    sealed = None
    if change is not None:
        if key is None:
            raise ValueError("a change is stored only under the person's key")
        sealed = key.encrypt(documents.encode(change), change_context(rtoken, user_token))
    repo.insert(
        work.conn,
        repo.RequestRow(
            rtoken=rtoken,
            user_token=user_token,
            action=action,
            status=repo.OPEN,
            app=app,
            brief=brief,
            change=sealed,
            reason=None,
            created=work.now,
            updated=work.now,
        ),
    )
    if work.event is not None:
        work.event.msg = f"request {rtoken}"
    return {"status": "ok", "result": "request-created", "rtoken": rtoken}
