"""Seal state and keys: ``/v1/sys/seal``, ``/v1/sys/unseal``, ``/v1/sys/keys``,
``/v1/sys/keys/rotate``.

``GET /v1/sys/seal`` and ``POST /v1/sys/unseal`` need no token (a sealed vault can check
none) and unseal attempts are rate-limited per client address; the others are root's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from databunker.api.v1.body import read_body
from databunker.api.v1.responses import error, ok
from databunker.api.v1.runtime import Access, context_of, path_route, perform
from databunker.services import keys
from databunker.services.context import Work
from databunker.unsealing import SealStatus, ShareRefused

if TYPE_CHECKING:
    from databunker.key_keeper import KeyKeeper

MAX_SHARE_BODY = 4096


def _keeper(request: Request) -> KeyKeeper:
    keeper: KeyKeeper = request.app.state.keeper
    return keeper


def _seal_status(status: SealStatus) -> dict[str, Any]:
    return {
        "status": "ok",
        "sealed": status.sealed,
        "threshold": status.threshold,
        "progress": status.progress,
    }


async def seal_status(request: Request) -> Response:
    return ok(_seal_status(await run_in_threadpool(_keeper(request).status)))


async def unseal(request: Request) -> Response:
    keeper = _keeper(request)
    vault = context_of(request)
    address = request.client.host if request.client else "unknown"
    allowed = await run_in_threadpool(
        keys.count_unseal_attempt, vault.database, address, vault.clock()
    )
    if not allowed:
        return error(429, "too many attempts")
    try:
        document = orjson.loads(await read_body(request, MAX_SHARE_BODY) or b"{}")
    except orjson.JSONDecodeError:
        return error(400, "failed to decode request body")
    share = document.get("share") if isinstance(document, dict) else None
    if not isinstance(share, str) or not share.strip():
        return error(400, "share is missing")
    try:
        status = await run_in_threadpool(keeper.submit, share)
    except ShareRefused as exc:
        return error(400, str(exc))
    return ok(_seal_status(status))


async def seal(request: Request) -> Response:
    keeper = _keeper(request)

    answer = await perform(request, Access.ROOT, _authorised, title="seal vault")
    if answer.status_code != 200:
        return answer
    await run_in_threadpool(keeper.seal)
    return ok(_seal_status(await run_in_threadpool(keeper.status)))


def _keys_payload(found: keys.KeyringStatus) -> dict[str, Any]:
    rotation = found.rotation
    return {
        "status": "ok",
        "current": found.current,
        "provider": found.provider,
        "versions": [
            {"version": v.version, "current": v.current, "wrapped_keys": v.wrapped_keys}
            for v in found.versions
        ],
        "rotation": None
        if rotation is None
        else {
            "version": rotation.version,
            "state": rotation.state,
            "rewrapped": rotation.rewrapped,
            "remaining": rotation.remaining,
        },
    }


def _authorised(_work: Work) -> dict[str, Any]:
    return {"status": "ok"}


async def key_status(request: Request) -> Response:
    # Authorised in one unit of work, counted in another: the count reads whole tables.
    answer = await perform(request, Access.ROOT, _authorised)
    if answer.status_code != 200:
        return answer
    found = await run_in_threadpool(keys.status, context_of(request).database)
    return ok(_keys_payload(found))


async def rotate(request: Request) -> Response:
    keeper = _keeper(request)

    answer = await perform(request, Access.ROOT, _authorised, title="rotate keys")
    if answer.status_code != 200:
        return answer
    if not keeper.start_rotation():
        return error(409, "a rotation is running")
    found = await run_in_threadpool(keys.status, context_of(request).database)
    return ok({**_keys_payload(found), "rotation_started": True})


routes = [
    path_route("/v1/sys/seal", {"GET": seal_status, "POST": seal}),
    Route("/v1/sys/unseal", unseal, methods=["POST"]),
    Route("/v1/sys/keys", key_status, methods=["GET"]),
    Route("/v1/sys/keys/rotate", rotate, methods=["POST"]),
]
