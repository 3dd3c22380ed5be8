"""System routes: status, metrics, and the UI and server configuration."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from databunker import __version__
from databunker.api.v1.responses import JSONResponse, error, ok
from databunker.api.v1.runtime import Access, context_of, perform
from databunker.metrics import CONTENT_TYPE_LATEST
from databunker.services.context import Work
from databunker.services.system import unreadiness


async def status(request: Request) -> Response:
    if await run_in_threadpool(context_of(request).database.ping):
        return ok({"status": "ok", "version": __version__})
    return error(503, "database unavailable")


async def ready(request: Request) -> Response:
    """Readiness, for load balancers and orchestrators: 200 only when this server can serve."""
    vault = context_of(request)
    reason = await run_in_threadpool(unreadiness, vault.database, vault.keyring)
    if reason is None:
        return ok({"status": "ok", "ready": True})
    return JSONResponse({"status": "error", "message": reason, "ready": False}, 503)


async def metrics(request: Request) -> Response:
    body = request.app.state.metrics.render()
    return Response(body, media_type=CONTENT_TYPE_LATEST)


async def ui_configuration(request: Request) -> Response:
    return ok({"status": "ok", "ui": context_of(request).settings.ui_configuration()})


async def configuration(request: Request) -> Response:
    def operation(work: Work) -> dict[str, Any]:
        return {"status": "ok", "configuration": work.settings.redacted_configuration()}

    return await perform(request, Access.ROOT, operation)


routes = [
    Route("/v1/status", status, methods=["GET"]),
    Route("/status", status, methods=["GET"]),
    Route("/v1/sys/ready", ready, methods=["GET"]),
    Route("/v1/metrics", metrics, methods=["GET"]),
    Route("/v1/sys/uiconfiguration", ui_configuration, methods=["GET"]),
    Route("/v1/sys/configuration", configuration, methods=["GET"]),
]
