"""Request bodies and query parameters: bounded, parsed and validated before any service runs.

Databunker v1 accepts JSON objects and urlencoded forms. Bodies shorter than three
characters (``{}`` included) count as absent. A body is bounded in size, nesting depth and
number of values; anything malformed is a 400, never a server error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request

from databunker.errors import BadRequest, PayloadTooLarge

MAX_VALUES = 10_000
DEFAULT_LIMIT = 10
MAX_LIMIT = 100


async def read_body(request: Request, max_bytes: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise BadRequest("bad content-length")
        digits = declared.lstrip("0")
        if len(digits) > len(str(max_bytes)) or int(digits or "0") > max_bytes:
            raise PayloadTooLarge()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


def _media_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    return content_type.split(";", 1)[0].strip().lower() or None


def _check_shape(document: Any, max_depth: int) -> None:
    """Reject documents nested deeper than ``max_depth`` or holding too many values."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    count = 0
    while stack:
        value, depth = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise BadRequest("request body has too many values")
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > max_depth:
            raise BadRequest("request body is nested too deeply")
        stack.extend((child, depth + 1) for child in children)


def _json(raw: bytes, max_depth: int) -> Any:
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest("failed to decode request body") from exc
    _check_shape(document, max_depth)
    return document


def _form(text: str) -> dict[str, str] | None:
    form: dict[str, str] = {}
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False)
    except ValueError as exc:
        raise BadRequest("failed to decode request body") from exc
    if len(pairs) > MAX_VALUES:
        raise BadRequest("request body has too many values")
    for key, value in pairs:
        form.setdefault(key, value)
    return form or None


def _decode_text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise BadRequest("failed to decode request body") from exc


def parse_object(raw: bytes, content_type: str | None, max_depth: int) -> dict[str, Any] | None:
    """A JSON object or form body; None when the body is absent."""
    document = parse_document(raw, content_type, max_depth)
    if document is None or isinstance(document, dict):
        return document
    raise BadRequest("failed to decode request body")


def parse_document(raw: bytes, content_type: str | None, max_depth: int) -> Any:
    """Any JSON value or a form (as an object of strings); None when the body is absent."""
    text = _decode_text(raw)
    if len(text) < 3:
        return None
    media = _media_type(content_type)
    if media == "application/x-www-form-urlencoded":
        if text[0] in "{[":
            raise BadRequest("wrong content-type, json instead of url encoded data")
        return _form(text)
    if media in ("application/json", "application/xml", "text/json") or (
        media is None and text[0] in "{["
    ):
        return _json(raw, max_depth)
    if media is None:
        return None
    raise BadRequest("wrong content-type, not a json string")


@dataclass(frozen=True, slots=True)
class RequestBody:
    """A request's raw body, parsed on demand: only after the caller is authorised."""

    raw: bytes
    content_type: str | None
    max_depth: int

    def object(self) -> dict[str, Any] | None:
        return parse_object(self.raw, self.content_type, self.max_depth)

    def document(self) -> Any:
        return parse_document(self.raw, self.content_type, self.max_depth)


async def read_request_body(request: Request) -> RequestBody:
    limits = request.app.state.vault.settings.server
    if _has_no_body(request):
        return RequestBody(b"", None, limits.max_json_depth)
    raw = await read_body(request, limits.max_body_bytes)
    return RequestBody(raw, request.headers.get("content-type"), limits.max_json_depth)


def _has_no_body(request: Request) -> bool:
    """True when HTTP/1.1 framing says the body is empty (no length, not chunked): most GETs,
    answered without waiting on the body stream."""
    framing = (b"content-length", b"transfer-encoding")
    return not any(name.lower() in framing for name, _ in request.scope["headers"])


def page(request: Request) -> tuple[int, int]:
    """``offset`` and ``limit`` query parameters (limit defaults to 10, at most 100)."""
    return (
        _non_negative(request, "offset", 0),
        min(_non_negative(request, "limit", DEFAULT_LIMIT) or DEFAULT_LIMIT, MAX_LIMIT),
    )


def _non_negative(request: Request, name: str, default: int) -> int:
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    if not (value.isascii() and value.isdigit()) or len(value) > 9:
        raise BadRequest(f"bad {name}")
    return int(value)
