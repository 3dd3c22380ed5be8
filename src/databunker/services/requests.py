"""User requests: a data subject's change that needs a DPO's approval is queued here.

Actions: ``forget-me``, ``change-profile``, ``change-app-data``, ``agreement-withdraw``.
While a request for the same action (and app or brief) is open, a new one is not created:
the caller is told ``request-exists`` with the open request's token. A new request alerts
``generic.admin_email`` (the action only, never a personal value).

Root lists every request, approves (the change is then applied as root would apply it) and
cancels; a person sees and cancels only their own requests and never approves one. A
request's status moves once: ``open`` to ``approved`` or ``canceled``.
"""

from __future__ import annotations

from typing import Any

from databunker.crypto import DataKey, DecryptionError, value_context
from databunker.errors import BadRequest, Conflict, NotFound
from databunker.services import documents
from databunker.services.access import require_root, require_user_access
from databunker.services.context import Work
from databunker.services.identity import require_uuid
from databunker.services.outbox import enqueue_email
from databunker.services.text import clean_text
from databunker.storage import requests as repo
from databunker.storage.repositories import UserRow

ACTIONS = ("forget-me", "change-profile", "change-app-data", "agreement-withdraw")
STATUSES = (repo.OPEN, repo.APPROVED, repo.CANCELED)
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
) -> dict[str, Any]:
    """Queue a request; answers Databunker's ``request-created`` / ``request-exists`` shape."""
    assert action in ACTIONS
    existing = repo.find_open(work.conn, user_token=user_token, action=action, app=app, brief=brief)
    if existing is not None:
        return {"status": "ok", "result": "request-exists", "rtoken": existing}
    rtoken = work.random.token()
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
    work.audit.record(msg=f"request {rtoken}")
    admin = work.settings.generic.admin_email
    if admin:
        enqueue_email(work, admin, ALERT_SUBJECT, f"Request: {action}")
    return {"status": "ok", "result": "request-created", "rtoken": rtoken}


# --- reading -------------------------------------------------------------------------------


def row_payload(row: repo.RequestRow) -> dict[str, Any]:
    """A request as lists show it: its metadata, and ``more`` instead of the change itself."""
    payload: dict[str, Any] = {
        "rtoken": row.rtoken,
        "token": row.user_token,
        "action": row.action,
        "status": row.status,
    }
    for name in ("app", "brief", "reason"):
        value = getattr(row, name)
        if value is not None:
            payload[name] = value
    payload.update(creationtime=row.created, when=row.updated, more=row.change is not None)
    return payload


def parse_status(status: str | None, default: str | None) -> str | None:
    if status is None or status == "":
        return default
    if status not in STATUSES:
        raise BadRequest("bad status")
    return status


def _page(
    work: Work, *, user_token: str | None, status: str | None, offset: int, limit: int
) -> dict[str, Any]:
    total = repo.count(work.conn, user_token=user_token, status=status)
    rows = repo.page(work.conn, offset=offset, limit=limit, user_token=user_token, status=status)
    return {"status": "ok", "total": total, "rows": [row_payload(r) for r in rows]}


def list_requests(work: Work, status: str | None, offset: int, limit: int) -> dict[str, Any]:
    """Root: every request with ``status`` (default ``open``), newest first."""
    require_root(work.principal)
    wanted = parse_status(status, repo.OPEN)
    return _page(work, user_token=None, status=wanted, offset=offset, limit=limit)


def list_user_requests(
    work: Work, mode: str, identity: str, status: str | None, offset: int, limit: int
) -> dict[str, Any]:
    """The person's requests (every status unless ``status`` is given), newest first."""
    from databunker.services.users import resolve_user

    wanted = parse_status(status, None)
    row, _key, _profile = resolve_user(work, mode, identity)
    return _page(work, user_token=row.token, status=wanted, offset=offset, limit=limit)


def _load(work: Work, rtoken: str, *, for_update: bool = False) -> repo.RequestRow:
    """The request, if the caller may reach it: root, or the person it belongs to."""
    require_uuid(rtoken)
    row = repo.get(work.conn, rtoken, for_update=for_update)
    if row is None:
        # A person's token learns nothing about requests that are not theirs.
        require_root(work.principal)
        raise NotFound("not found")
    # Filed under the person even when denied.
    work.audit.record(user_token=row.user_token, mode="token", msg=f"request {rtoken}")
    if row.app is not None:
        work.audit.record(app=row.app)
    require_user_access(work.principal, row.user_token)
    return row


def _person(
    work: Work, user_token: str, *, for_update: bool = False
) -> tuple[UserRow | None, DataKey | None, dict[str, Any]]:
    from databunker.services.users import find_user, open_user

    person = find_user(work, "token", user_token, for_update=for_update)
    if person is None:
        return None, None, {}
    key, profile = open_user(work, person)
    work.audit.record(subject=(person.token, key))
    return person, key, profile


def _open_change(key: DataKey | None, row: repo.RequestRow) -> Any:
    if key is None or row.change is None:
        return None
    try:
        plain = key.decrypt(row.change, change_context(row.rtoken, row.user_token))
    except DecryptionError:
        return None
    return documents.decode(plain)


def _original(work: Work, row: repo.RequestRow, key: DataKey | None, profile: Any) -> Any:
    """The current state the request would change."""
    if key is None:
        return {}
    if row.action == "change-app-data" and row.app is not None:
        from databunker.services.apps import open_app_record
        from databunker.storage import apps as app_repo

        record = app_repo.get_app_record(work.conn, row.user_token, row.app)
        return open_app_record(key, record) if record is not None else {}
    if row.action == "agreement-withdraw" and row.brief is not None:
        from databunker.services import agreements
        from databunker.storage import agreements as agreement_repo

        found = agreement_repo.find(work.conn, row.brief, user_token=row.user_token)
        return agreements.payload(work, found, key) if found is not None else {}
    return profile


def get_request(work: Work, rtoken: str) -> dict[str, Any]:
    """The request, the current state it would change (``original``) and its ``change``."""
    row = _load(work, rtoken)
    _person_row, key, profile = _person(work, row.user_token)
    answer: dict[str, Any] = {"status": "ok", "rtoken": row.rtoken, "action": row.action}
    if row.app is not None:
        answer["app"] = row.app
    if row.brief is not None:
        answer["brief"] = row.brief
    answer["original"] = _original(work, row, key, profile)
    change = _open_change(key, row)
    if change is not None:
        answer["change"] = change
    answer["request"] = row_payload(row)
    return answer


# --- deciding ------------------------------------------------------------------------------


def _reason(body: dict[str, Any] | None) -> str | None:
    value = (body or {}).get("reason")
    if value is None:
        return None
    if isinstance(value, dict | list | bool):
        raise BadRequest("reason must be text")
    return clean_text("reason", str(value), multiline=True)


def _require_open(row: repo.RequestRow) -> None:
    if row.status != repo.OPEN:
        raise Conflict(f"wrong status: {row.status}")


def approve_request(work: Work, rtoken: str, body: dict[str, Any] | None) -> dict[str, Any]:
    """Root applies the request as root would: erase, change the profile or app record, or
    withdraw the consent; the request is then ``approved``."""
    row = _load(work, rtoken, for_update=True)
    require_root(work.principal)  # a person never approves, not even their own request
    reason = _reason(body)
    _require_open(row)
    person, key, profile = _person(work, row.user_token, for_update=True)
    if person is None or person.erased is not None or key is None:
        raise NotFound("user record not found")
    _execute(work, row, person, key, profile)
    repo.set_status(work.conn, rtoken, status=repo.APPROVED, reason=reason, now=work.now)
    return {"status": "ok", "result": "done"}


def _execute(
    work: Work, row: repo.RequestRow, person: UserRow, key: DataKey, profile: dict[str, Any]
) -> None:
    from databunker.services import agreements, apps, users

    if row.action == "forget-me":
        users.shred(work, person, key, profile)
        work.audit.forget_person()
        return
    change = _open_change(key, row)
    if row.action == "change-profile":
        if change is None:
            raise Conflict("the request holds no change")
        users.change_user(work, "token", person.token, change)
    elif row.action == "change-app-data":
        if change is None or row.app is None:
            raise Conflict("the request holds no change")
        before, after = apps.apply_app_change(
            work, person.token, key, row.app, change, create_missing=True
        )
        work.audit.record(before=documents.encode(before), after=documents.encode(after))
    elif row.action == "agreement-withdraw" and row.brief is not None:
        agreements.withdraw(work, row.brief, "token", person.token, {"lastmodifiedby": "admin"})
    # The steps above noted their own facts; the event stays the approval of this request.
    work.audit.record(msg=f"request {row.rtoken}")


def cancel_request(work: Work, rtoken: str, body: dict[str, Any] | None) -> dict[str, Any]:
    """Root or the person cancels an open request; a person's default reason is
    ``user operation``."""
    reason = _reason(body)
    row = _load(work, rtoken, for_update=True)
    _require_open(row)
    if reason is None and work.principal.is_user:
        reason = "user operation"
    repo.set_status(work.conn, rtoken, status=repo.CANCELED, reason=reason, now=work.now)
    return {"status": "ok", "result": "done"}


def all_of_user(work: Work, user_token: str, key: DataKey | None) -> list[dict[str, Any]]:
    """Every request of the person with its change decrypted (for the data export)."""
    rows = []
    for row in repo.of_user(work.conn, user_token):
        payload = row_payload(row)
        change = _open_change(key, row)
        if change is not None:
            payload["change"] = change
        rows.append(payload)
    return rows
