"""v2 bulk listings (spec §2.3, §3.7): ``BulkListUnlock``, ``BulkListUsers``,
``BulkListAllUsers``, ``BulkListAllUserRequests``, ``BulkListAllAuditEvents``.

Listing the whole vault is root's and needs a live unlock id (``services.unlock``) on top;
listing users needs ``generic.list_users`` too, as v1's ``/v1/users`` does (decision A9).
Users are listed oldest first, so paging through a growing vault misses nobody; requests and
audit events newest first. Erased people are not listed.
"""

from __future__ import annotations

from databunker.api.v2.audit import event_row
from databunker.api.v2.fields import Identified, Paged
from databunker.api.v2.registry import Access, Payload, V2Body, V2Operation
from databunker.api.v2.user_requests import summary
from databunker.errors import AccessDenied, BadRequest
from databunker.services import audit, requests, unlock, users
from databunker.services.context import Work
from databunker.services.users import UserRecord

__all__ = ["OPERATIONS"]

MAX_IDENTITIES = 1_000
LOOKUP_MODES = ("login", "email", "phone", "custom")


class Unlocked(V2Body):
    unlockuuid: str


class UsersBody(Unlocked):
    users: list[Identified]


class PagedBody(Unlocked, Paged):
    pass


def user_row(record: UserRecord) -> Payload:
    return {
        "token": record.token,
        "profile": record.profile,
        "finaltime": 0,
        "slidingtime": 0,
        "expirationtime": 0,
        "grouproles": [],
    }


def _listing_allowed(work: Work, operation: str) -> None:
    if not work.settings.generic.list_users:
        raise AccessDenied(f"{operation} is disabled")


def issue(work: Work, _body: V2Body) -> Payload:
    return {"unlockuuid": unlock.issue_unlock(work)}


def list_users(work: Work, body: UsersBody) -> Payload:
    _listing_allowed(work, "BulkListUsers")
    unlock.require_unlock(work, body.unlockuuid)
    if not body.users:
        raise BadRequest("Missing API request parameters: users")
    if len(body.users) > MAX_IDENTITIES:
        raise BadRequest(f"At most {MAX_IDENTITIES} users can be listed in one call")
    for one in body.users:
        if one.mode not in LOOKUP_MODES:
            raise BadRequest("The mode parameter has an incorrect format")
    found = users.find_users(work, [(one.mode, one.identity) for one in body.users])
    return {"total": len(found), "rows": [user_row(record) for record in found]}


def list_all_users(work: Work, body: PagedBody) -> Payload:
    _listing_allowed(work, "BulkListAllUsers")
    unlock.require_unlock(work, body.unlockuuid)
    offset, limit = body.page()
    found = users.list_living_users(work, offset, limit)
    return {"total": found.total, "rows": [user_row(record) for record in found.rows]}


def list_all_requests(work: Work, body: PagedBody) -> Payload:
    unlock.require_unlock(work, body.unlockuuid)
    offset, limit = body.page()
    found = requests.list_all_requests(work, offset, limit)
    return {"total": found.total, "rows": [summary(row) for row in found.rows]}


def list_all_events(work: Work, body: PagedBody) -> Payload:
    unlock.require_unlock(work, body.unlockuuid)
    offset, limit = body.page()
    found = audit.list_all_events(work, offset, limit)
    return {"total": found.total, "rows": [event_row(entry) for entry in found.rows]}


OPERATIONS = (
    V2Operation("BulkListUnlock", V2Body, Access.ROOT, issue),
    V2Operation("BulkListUsers", UsersBody, Access.ROOT, list_users, title="list user records"),
    V2Operation(
        "BulkListAllUsers", PagedBody, Access.ROOT, list_all_users, title="list user records"
    ),
    V2Operation("BulkListAllUserRequests", PagedBody, Access.ROOT, list_all_requests),
    V2Operation("BulkListAllAuditEvents", PagedBody, Access.ROOT, list_all_events),
)
