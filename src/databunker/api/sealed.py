"""The sealed-state gate: a plain ASGI middleware in front of every route.

While the vault's keyring is sealed (no master key in memory), only the unseal routes and
the portal's stylesheets are served: ``GET /v1/status`` answers 503 with ``"sealed":true`` (so
load balancers skip this server), every other API route 503 ``vault is sealed``, and every
page a plain "temporarily unavailable" page. Unsealed, it costs one attribute read.
"""

from __future__ import annotations

from pathlib import Path

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from databunker.api.v1.responses import JSON_TYPE
from databunker.crypto import Keyring

SEALED_MESSAGE = "vault is sealed"
OPEN_WHILE_SEALED = frozenset(
    {("GET", "/v1/sys/seal"), ("POST", "/v1/sys/unseal"), ("GET", "/v1/sys/ready")}
)
STATUS_PATHS = frozenset({"/v1/status", "/status"})
_STATUS_BODY = orjson.dumps({"status": "error", "message": SEALED_MESSAGE, "sealed": True})
_API_BODY = orjson.dumps({"status": "error", "message": SEALED_MESSAGE})
_PAGE = (Path(__file__).parent.parent / "web" / "templates" / "sealed.html").read_bytes()
_API_PREFIXES = ("/v1/", "/v2/")


class SealedGate:
    def __init__(self, app: ASGIApp, keyring: Keyring) -> None:
        self.app = app
        self.keyring = keyring

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keyring.sealed:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        method: str = scope["method"]
        if (method, path) in OPEN_WHILE_SEALED or path.startswith("/static/"):
            await self.app(scope, receive, send)
            return
        if path in STATUS_PATHS:
            body, content_type = _STATUS_BODY, JSON_TYPE
        elif path.startswith(_API_PREFIXES):
            body, content_type = _API_BODY, JSON_TYPE
        else:
            body, content_type = _PAGE, "text/html; charset=utf-8"
        headers = [
            (b"content-type", content_type.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", b"5"),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})
