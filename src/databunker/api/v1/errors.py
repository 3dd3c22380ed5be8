"""The one place where errors become responses.

Domain errors carry their status and a message that is safe to show. Anything else is a
server fault: logged with its type and the route template only (never values, which may be
personal data), and answered with a bare ``internal error``.
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from databunker.api.v1.responses import endpoint_missing, error
from databunker.crypto import DecryptionError
from databunker.errors import DatabunkerError

log = logging.getLogger("databunker.errors")


def route_template(request: Request) -> str:
    route = request.scope.get("route")
    return str(getattr(route, "path", "unmatched"))


async def on_domain_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DatabunkerError)
    return error(exc.status_code, exc.message)


async def on_http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return endpoint_missing()
    if exc.status_code == 405:
        return error(405, "method not allowed", headers=dict(exc.headers or {}))
    return error(exc.status_code, "request failed")


async def on_decryption_error(request: Request, exc: Exception) -> Response:
    """A stored value that does not decrypt: the read fails closed, and the operator is told
    which row to look at (its kind and id, no values) and counts it in the metrics."""
    assert isinstance(exc, DecryptionError)
    kind, row = exc.where()
    log.error(
        "record cannot be decrypted",
        extra={"route": route_template(request), "kind": kind, "row": row},
    )
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.decryption_failures.labels(kind).inc()
    return error(500, "record cannot be decrypted")


async def on_server_fault(request: Request, exc: Exception) -> Response:
    log.error(
        "unhandled server fault",
        extra={"route": route_template(request), "error_type": type(exc).__name__},
    )
    return error(500, "internal error")
