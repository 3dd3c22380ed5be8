"""The edge of every HTTP exchange, as one plain ASGI middleware.

- ``/v1/user/`` and ``/v1/user`` are the same route (no redirect);
- ``OPTIONS`` on a known path answers the CORS preflight;
- security headers on every response (HSTS only over TLS), ``no-store`` caching;
- metrics and a structured access-log line per request, labelled by route template only,
  so no identity from a URL reaches a log or a metric;
- a request id (``X-Request-Id``) and a trace id (W3C ``traceparent``) for every log line of
  the request, and a span per request when tracing is on (``databunker.tracing``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.routing import Match, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from databunker.api.v1.responses import ENDPOINT_MISSING, JSON_TYPE
from databunker.metrics import Metrics
from databunker.tracing import CURRENT, RequestIds, Tracing, request_id_of

access_log = logging.getLogger("databunker.access")

CORS_HEADERS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-methods", b"GET, POST, PUT, DELETE, OPTIONS"),
    (
        b"access-control-allow-headers",
        b"Accept, Content-Type, Content-Length, Accept-Encoding, X-Bunker-Token, X-Bunker-Tenant",
    ),
    (b"access-control-max-age", b"600"),
]
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"access-control-allow-origin", b"*"),
]
DEFAULT_HEADERS = {
    b"content-security-policy": b"default-src 'none'; frame-ancestors 'none'",
    b"cache-control": b"no-store",
}
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


class EdgeMiddleware:
    def __init__(
        self, app: ASGIApp, router: Router, metrics: Metrics, tracing: Tracing | None = None
    ) -> None:
        self.app = app
        self.router = router
        self.metrics = metrics
        self.tracing = tracing or Tracing()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if len(path) > 1 and path.endswith("/"):
            scope = dict(scope)
            scope["path"] = path.rstrip("/") or "/"
        started = time.perf_counter()
        status = 500
        secure = scope.get("scheme") == "https"
        given_id = traceparent = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                given_id = value.decode("latin-1")
            elif name == b"traceparent":
                traceparent = value.decode("latin-1")
        request_id = request_id_of(given_id)
        span = self.tracing.start(scope["method"], traceparent)
        ids = CURRENT.set(RequestIds(request_id, span.trace_id))
        id_header = (b"x-request-id", request_id.encode())

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = _with_security_headers(message.get("headers", []), secure)
                headers.append(id_header)
                message["headers"] = headers
            await send(message)

        try:
            if scope["method"] == "OPTIONS":
                await self._preflight(scope, send_with_headers)
            else:
                await self.app(scope, receive, send_with_headers)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            elapsed = time.perf_counter() - started
            self.metrics.observe(scope["method"], route, status, elapsed)
            access_log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            span.finish(scope["method"], route, status)
            CURRENT.reset(ids)

    async def _preflight(self, scope: Scope, send: Send) -> None:
        allowed: set[str] = set()
        for route in self.router.routes:
            match, _child = route.matches({**scope, "method": "GET"})
            if match is not Match.NONE:
                allowed.update(getattr(route, "methods", None) or ())
                scope["route"] = route
        if not allowed:
            await _send(send, 404, [(b"content-type", JSON_TYPE.encode())], ENDPOINT_MISSING)
            return
        allow = ", ".join(sorted(allowed | {"OPTIONS"})).encode()
        await _send(send, 204, [*CORS_HEADERS, (b"allow", allow)], b"")


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _with_security_headers(headers: Any, secure: bool) -> list[tuple[bytes, bytes]]:
    result = [(bytes(k), bytes(v)) for k, v in headers]
    present = {k.lower() for k, _ in result}
    result.extend(h for h in SECURITY_HEADERS if h[0] not in present)
    result.extend((k, v) for k, v in DEFAULT_HEADERS.items() if k not in present)
    if secure:
        result.append(HSTS)
    return result
