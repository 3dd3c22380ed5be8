"""User requests, once queued (``services.request_queue``): listing, reading, approving and
cancelling.

This is the layer above the aggregates a request changes (users, apps, agreements):
approving applies the request as root would apply it. Root lists every request, approves and
cancels; a person sees and cancels only their own requests and never approves one. A
request's status moves once: ``open`` to ``approved`` or ``canceled``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from databunker.crypto import DataKey, DecryptionError
from databunker.errors import BadRequest, Conflict, NotFound
from databunker.services import agreements, apps, documents, users
from databunker.services.access import require_root, require_user_access
from databunker.services.agreements import AgreementView
from databunker.services.context import Work
from databunker.services.identity import require_uuid
from databunker.services.records import Profile, open_by_token, resolve_user
from databunker.services.request_queue import ACTIONS, change_context
from databunker.services.results import Page
from databunker.services.text import clean_text
from databunker.storage import agreements as agreement_rows
from databunker.storage import apps as app_rows
from databunker.storage import requests as request_rows
from databunker.storage.repositories import UserRow

__all__ = [
    "ACTIONS",
    "STATUSES",
    "RequestDetail",
    "RequestSummary",
    "all_of_user",
    "approve_request",
    "cancel_request",
    "get_request",
    "list_all_requests",
    "list_requests",
    "list_user_requests",
]

STATUSES = (request_rows.OPEN, request_rows.APPROVED, request_rows.CANCELED)


@dataclass(frozen=True, slots=True)
class RequestSummary:
    """A request as lists show it: its metadata; ``more`` says it holds a proposed change.
    ``change`` is that change, decrypted, only where it is shown (the data export)."""

    rtoken: str
    token: str
    action: str
    status: str
    app: str | None
    brief: str | None
    reason: str | None
    creationtime: int
    when: int
    more: bool
    change: Any = None


@dataclass(frozen=True, slots=True)
class RequestDetail:
    """One request, the current state it would change (``original``: the profile, the app
    record or the agreement) and the change it proposes (None when there is none, or it
    cannot be read any more)."""

    request: RequestSummary
    original: Profile | AgreementView
    change: Any

    @property
    def action(self) -> str:
        return self.request.action


def _summary(row: request_rows.RequestRow, change: Any = None) -> RequestSummary:
    return RequestSummary(
        rtoken=row.rtoken,
        token=row.user_token,
        action=row.action,
        status=row.status,
        app=row.app,
        brief=row.brief,
        reason=row.reason,
        creationtime=row.created,
        when=row.updated,
        more=row.change is not None,
        change=change,
    )


def parse_status(status: str | None, default: str | None) -> str | None:
    if status is None or status == "":
        return default
    if status not in STATUSES:
        raise BadRequest("bad status")
    return status


def _page(
    work: Work, *, user_token: str | None, status: str | None, offset: int, limit: int
) -> Page[RequestSummary]:
    total = request_rows.count(work.conn, user_token=user_token, status=status)
    rows = request_rows.page(
        work.conn, offset=offset, limit=limit, user_token=user_token, status=status
    )
    return Page(total, [_summary(r) for r in rows])


def list_requests(work: Work, status: str | None, offset: int, limit: int) -> Page[RequestSummary]:
    """Every request with ``status`` (default ``open``), newest first (a root route)."""
    wanted = parse_status(status, request_rows.OPEN)
    return _page(work, user_token=None, status=wanted, offset=offset, limit=limit)


def list_all_requests(work: Work, offset: int, limit: int) -> Page[RequestSummary]:
    """Every request whatever its status, newest first (root's)."""
    require_root(work.principal)
    return _page(work, user_token=None, status=None, offset=offset, limit=limit)


def list_user_requests(
    work: Work, mode: str, identity: str, status: str | None, offset: int, limit: int
) -> Page[RequestSummary]:
    """The person's requests (every status unless ``status`` is given), newest first."""
    wanted = parse_status(status, None)
    row, _key, _profile = resolve_user(work, mode, identity)
    return _page(work, user_token=row.token, status=wanted, offset=offset, limit=limit)


def _load(work: Work, rtoken: str, *, for_update: bool = False) -> request_rows.RequestRow:
    """The request, if the caller may reach it: root, or the person it belongs to."""
    require_uuid(rtoken)
    row = request_rows.get(work.conn, rtoken, for_update=for_update)
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


def _open_change(key: DataKey | None, row: request_rows.RequestRow) -> Any:
    if key is None or row.change is None:
        return None
    try:
        plain = key.decrypt(row.change, change_context(row.rtoken, row.user_token))
    except DecryptionError:
        return None
    return documents.decode(plain)


def _original(
    work: Work, row: request_rows.RequestRow, key: DataKey | None, profile: Profile
) -> Profile | AgreementView:
    """The current state the request would change."""
    if key is None:
        return {}
    if row.action == "change-app-data" and row.app is not None:
        record = app_rows.get_app_record(work.conn, row.user_token, row.app)
        return apps.open_app_record(key, record) if record is not None else {}
    if row.action == "agreement-withdraw" and row.brief is not None:
        found = agreement_rows.find(work.conn, row.brief, user_token=row.user_token)
        return agreements.agreement_view(work, found, key) if found is not None else {}
    return profile


def get_request(work: Work, rtoken: str) -> RequestDetail:
    """The request, the current state it would change and its change."""
    row = _load(work, rtoken)
    _person, key, profile = open_by_token(work, row.user_token)
    return RequestDetail(_summary(row), _original(work, row, key, profile), _open_change(key, row))


# --- deciding ------------------------------------------------------------------------------


def _reason(body: dict[str, Any] | None) -> str | None:
    value = (body or {}).get("reason")
    if value is None:
        return None
    if isinstance(value, dict | list | bool):
        raise BadRequest("reason must be text")
    return clean_text("reason", str(value), multiline=True)


def _require_open(row: request_rows.RequestRow) -> None:
    if row.status != request_rows.OPEN:
        raise Conflict(f"wrong status: {row.status}")


def approve_request(work: Work, rtoken: str, body: dict[str, Any] | None) -> None:
    """Root applies the request as root would: erase, change the profile or app record, or
    withdraw the consent; the request is then ``approved``."""
    row = _load(work, rtoken, for_update=True)
    reason = _reason(body)
    _require_open(row)
    person, key, profile = open_by_token(work, row.user_token, for_update=True)
    if person is None or person.erased is not None or key is None:
        raise NotFound("user record not found")
    _execute(work, row, person, key, profile)
    request_rows.set_status(
        work.conn, rtoken, status=request_rows.APPROVED, reason=reason, now=work.now
    )


def _execute(
    work: Work, row: request_rows.RequestRow, person: UserRow, key: DataKey, profile: Profile
) -> None:
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
        agreements.withdraw(work, row.brief, "token", person.token, lastmodifiedby="admin")
    # The steps above noted their own facts; the event stays the approval of this request.
    work.audit.record(msg=f"request {row.rtoken}")


def cancel_request(work: Work, rtoken: str, body: dict[str, Any] | None) -> None:
    """Root or the person cancels an open request; a person's default reason is
    ``user operation``."""
    reason = _reason(body)
    row = _load(work, rtoken, for_update=True)
    _require_open(row)
    if reason is None and work.principal.is_user:
        reason = "user operation"
    request_rows.set_status(
        work.conn, rtoken, status=request_rows.CANCELED, reason=reason, now=work.now
    )


def all_of_user(work: Work, user_token: str, key: DataKey | None) -> list[RequestSummary]:
    """Every request of the person with its change decrypted (for the data export)."""
    return [
        _summary(row, _open_change(key, row)) for row in request_rows.of_user(work.conn, user_token)
    ]
