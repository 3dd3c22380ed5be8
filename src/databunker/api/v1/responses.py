"""JSON responses in Databunker's wire format (``{"status":"ok",...}`` first)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

JSON_TYPE = "application/json; charset=utf-8"
# Exactly the original's body, space included: clients compare it.
ENDPOINT_MISSING = b'{"status":"error", "message":"endpoint is missing"}'


class JSONResponse(Response):
    media_type = JSON_TYPE

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def ok(payload: dict[str, Any]) -> Response:
    return JSONResponse(payload)


def error(status_code: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"status": "error", "message": message}, status_code, headers=headers)


def endpoint_missing() -> Response:
    return Response(ENDPOINT_MISSING, 404, media_type=JSON_TYPE)
