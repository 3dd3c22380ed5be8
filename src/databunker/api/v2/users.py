"""v2 users (spec §2.1): ``UserCreate``, ``UserGet``, ``UserUpdate``, ``UserPatch``,
``UserDelete``, ``UserCreateBulk``, ``UserDeleteBulk``.

The same people as v1's ``/v1/user``: v2 wraps the profile in ``profile``, refuses a login
token the direct changes (it uses the ``...Request`` operations instead), and deletes for
good (no request, 404 for nobody).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from databunker.api.v2.fields import Grouped, Identified, TimeValue, user_final_time
from databunker.api.v2.registry import Access, Missing, Payload, V2Body, V2Operation
from databunker.errors import BadRequest
from databunker.services import users
from databunker.services.context import Work

__all__ = ["OPERATIONS"]

MAX_BULK = 10_000


class UserCreateBody(Grouped):
    profile: dict[str, Any]
    slidingtime: TimeValue = None
    finaltime: TimeValue = None


class UserGetBody(Identified):
    version: int | None = None


class UserUpdateBody(Identified):
    profile: dict[str, Any]


class PatchOperation(V2Body):
    op: str
    path: str
    value: Any = None
    from_: str | None = Field(default=None, alias="from")


class UserPatchBody(Identified):
    patch: list[PatchOperation]


class BulkRecord(Grouped):
    profile: dict[str, Any]


class UserCreateBulkBody(V2Body):
    records: list[BulkRecord]
    slidingtime: TimeValue = None
    finaltime: TimeValue = None


class UserDeleteBulkBody(V2Body):
    users: list[Identified]


def json_patch(patch: list[PatchOperation]) -> list[dict[str, Any]]:
    """The patch as RFC 6902 documents (``value`` kept only where the op carries one)."""
    operations: list[dict[str, Any]] = []
    for step in patch:
        document = step.model_dump(by_alias=True, exclude_none=True, exclude={"value"})
        if "value" in step.model_fields_set:
            document["value"] = step.value
        operations.append(document)
    return operations


def create(work: Work, body: UserCreateBody) -> Payload:
    body.refuse_groups()
    finaltime = user_final_time(work.now, body.finaltime, body.slidingtime)
    saved = users.create_user(work, body.profile, require_lookup=False, finaltime=finaltime)
    return {"token": saved.token}


def get(work: Work, body: UserGetBody) -> Payload:
    found = users.get_user_detail(work, body.mode, body.identity)
    if body.version is not None:
        # Record versions are not kept: no version is ever found.
        raise Missing("The record version was not found")
    return {
        "token": found.token,
        "profile": found.profile,
        "finaltime": found.finaltime,
        "slidingtime": 0,
        "expirationtime": found.finaltime,
        "grouproles": [],
    }


def update(work: Work, body: UserUpdateBody) -> Payload:
    users.change_user(work, body.mode, body.identity, body.profile)
    return {}


def patch(work: Work, body: UserPatchBody) -> Payload:
    if not body.patch:
        raise BadRequest("Missing API request parameters: patch")
    users.change_user(work, body.mode, body.identity, json_patch(body.patch))
    return {}


def delete(work: Work, body: Identified) -> Payload:
    users.delete_user(work, body.mode, body.identity)
    return {}


def create_bulk(work: Work, body: UserCreateBulkBody) -> Payload:
    if not body.records:
        raise BadRequest("Missing API request parameters: records")
    if len(body.records) > MAX_BULK:
        raise BadRequest(f"At most {MAX_BULK} records can be created in one call")
    for record in body.records:
        record.refuse_groups()
    finaltime = user_final_time(work.now, body.finaltime, body.slidingtime)
    profiles = [record.profile for record in body.records]
    saved = users.create_users(work, profiles, finaltime=finaltime)
    return {
        "created": [
            {"token": one.token, "profile": profile}
            for one, profile in zip(saved, profiles, strict=True)
        ]
    }


def delete_bulk(work: Work, body: UserDeleteBulkBody) -> Payload:
    if not body.users:
        raise BadRequest("Missing API request parameters: users")
    if len(body.users) > MAX_BULK:
        raise BadRequest(f"At most {MAX_BULK} users can be deleted in one call")
    targets = [(one.mode, one.identity) for one in body.users]
    return {"deleted_count": users.delete_users(work, targets)}


OPERATIONS = (
    V2Operation("UserCreate", UserCreateBody, Access.ROOT, create, title="create user record"),
    V2Operation(
        "UserGet", UserGetBody, Access.AUTHENTICATED, get, title="get user record by {mode}"
    ),
    V2Operation(
        "UserUpdate", UserUpdateBody, Access.ROOT, update, title="change user record by {mode}"
    ),
    V2Operation(
        "UserPatch", UserPatchBody, Access.ROOT, patch, title="change user record by {mode}"
    ),
    V2Operation(
        "UserDelete", Identified, Access.ROOT, delete, title="delete user record by {mode}"
    ),
    V2Operation(
        "UserCreateBulk",
        UserCreateBulkBody,
        Access.ROOT,
        create_bulk,
        title="create user records in bulk",
    ),
    V2Operation(
        "UserDeleteBulk",
        UserDeleteBulkBody,
        Access.ROOT,
        delete_bulk,
        title="delete user records in bulk",
    ),
)
