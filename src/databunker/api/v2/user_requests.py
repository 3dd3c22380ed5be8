"""v2 user requests (spec §2.2): changes and erasures that wait for an administrator.

``UserDeleteRequest``, ``UserUpdateRequest`` and ``UserPatchRequest`` open a request whoever
asks (a person's own login token included); root approves; root or the person reads,
lists and cancels. The same requests as v1's ``/v1/request``.
"""

from __future__ import annotations

from typing import Any

from databunker.api.v2.fields import Identified, Paged
from databunker.api.v2.registry import Access, Payload, V2Body, V2Operation
from databunker.api.v2.users import PatchOperation, json_patch
from databunker.errors import BadRequest
from databunker.services import requests, users
from databunker.services.context import Work
from databunker.services.requests import RequestSummary

__all__ = ["OPERATIONS"]

REQUEST_NOT_FOUND = "The user request was not found"


class UpdateRequestBody(Identified):
    profile: dict[str, Any]


class PatchRequestBody(Identified):
    patch: list[PatchOperation]


class RequestAddressed(V2Body):
    requestuuid: str


class DecisionBody(RequestAddressed):
    reason: str | None = None


class ListBody(Identified, Paged):
    pass


def summary(found: RequestSummary) -> Payload:
    row: Payload = {
        "requestuuid": found.rtoken,
        "token": found.token,
        "requesttype": found.action,
        "status": found.status,
        "creationtime": found.creationtime,
        "when": found.when,
    }
    if found.app is not None:
        row["appname"] = found.app
    if found.brief is not None:
        row["brief"] = found.brief
    return row


def delete_request(work: Work, body: Identified) -> Payload:
    return {"requestuuid": users.request_erasure(work, body.mode, body.identity).rtoken}


def update_request(work: Work, body: UpdateRequestBody) -> Payload:
    opened = users.request_change(work, body.mode, body.identity, body.profile)
    return {"requestuuid": opened.rtoken}


def patch_request(work: Work, body: PatchRequestBody) -> Payload:
    if not body.patch:
        raise BadRequest("Missing API request parameters: patch")
    opened = users.request_change(work, body.mode, body.identity, json_patch(body.patch))
    return {"requestuuid": opened.rtoken}


def get(work: Work, body: RequestAddressed) -> Payload:
    detail = requests.get_request(work, body.requestuuid)
    request = summary(detail.request)
    request.update(reason=detail.request.reason or "", change=detail.change)
    request["original"] = detail.original
    return {"request": request}


def list_of_user(work: Work, body: ListBody) -> Payload:
    offset, limit = body.page()
    found = requests.list_user_requests(work, body.mode, body.identity, None, offset, limit)
    return {"total": found.total, "rows": [summary(row) for row in found.rows]}


def _decision(body: DecisionBody) -> dict[str, Any] | None:
    return {"reason": body.reason} if body.reason else None


def approve(work: Work, body: DecisionBody) -> Payload:
    requests.approve_request(work, body.requestuuid, _decision(body))
    return {}


def cancel(work: Work, body: DecisionBody) -> Payload:
    requests.cancel_request(work, body.requestuuid, _decision(body))
    return {}


OPERATIONS = (
    V2Operation(
        "UserDeleteRequest",
        Identified,
        Access.AUTHENTICATED,
        delete_request,
        title="user forget-me request",
    ),
    V2Operation(
        "UserUpdateRequest",
        UpdateRequestBody,
        Access.AUTHENTICATED,
        update_request,
        title="user change-profile request",
    ),
    V2Operation(
        "UserPatchRequest",
        PatchRequestBody,
        Access.AUTHENTICATED,
        patch_request,
        title="user change-profile request",
    ),
    V2Operation(
        "UserRequestGet",
        RequestAddressed,
        Access.AUTHENTICATED,
        get,
        title="get user request by request token",
        not_found=REQUEST_NOT_FOUND,
    ),
    V2Operation(
        "UserRequestListUserRequests",
        ListBody,
        Access.AUTHENTICATED,
        list_of_user,
        title="get user privacy requests",
    ),
    V2Operation(
        "UserRequestApprove",
        DecisionBody,
        Access.ROOT,
        approve,
        title="approve user request",
        not_found=REQUEST_NOT_FOUND,
    ),
    V2Operation(
        "UserRequestCancel",
        DecisionBody,
        Access.AUTHENTICATED,
        cancel,
        title="cancel user request",
        not_found=REQUEST_NOT_FOUND,
    ),
)
