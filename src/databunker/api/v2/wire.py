"""The v2 wire: ``POST /v2/<Operation>`` with a JSON object body, answered in v2's envelope.

Order of checks (spec §1.7): the operation exists (404), the body is a JSON object (400),
then, inside one unit of work, the credential and the operation's access level (403), the
tenant (403), the body's fields (400), and the domain's own answers (404, 409, ...). Every
answer is JSON: ``{"status":"ok", ...}`` or exactly ``{"status":"error","message":...}``.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from databunker.api.v2.registry import CLIENT_ADDRESS, Missing, Payload, V2Operation
from databunker.crypto import DecryptionError, KeyringSealed
from databunker.errors import BadRequest, Conflict, DatabunkerError, NotFound
from databunker.services import documents
from databunker.services.access import Credential, Source
from databunker.services.apps import AppRecordNotFound
from databunker.services.audit import REQUEST_SUBJECT
from databunker.services.context import Context, Work
from databunker.services.identity import MODES
from databunker.units import run_unit

log = logging.getLogger("databunker.errors")

JSON_TYPE = "application/json; charset=utf-8"
TOKEN_HEADER = "x-bunker-token"  # noqa: S105 - a header name, not a secret
TENANT_HEADER = "x-bunker-tenant"
# A v2 body may be a bulk call of thousands of records; its size is bounded by
# ``server.max_body_bytes`` and its nesting by ``server.max_json_depth``.
MAX_VALUES = 200_000

NOT_DECODED = "Failed to decode the request body"
ACCESS_DENIED = "Access denied"
UNKNOWN_OPERATION = "The API request was not found"
METHOD_NOT_ALLOWED = "Method not allowed"
SEALED = "The vault is sealed"


class _JSON(Response):
    media_type = JSON_TYPE

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def answer(payload: Payload) -> Response:
    return _JSON({"status": "ok", **payload})


def error(status_code: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return _JSON({"status": "error", "message": message}, status_code, headers=headers)


# --- the body ------------------------------------------------------------------------------


async def read_document(request: Request, max_bytes: int, max_depth: int) -> dict[str, Any]:
    """The body as a JSON object, whatever its Content-Type; an empty body is ``{}``.
    ``null`` members count as absent."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise BadRequest(NOT_DECODED)
        if len(declared.lstrip("0")) > len(str(max_bytes)) or int(declared) > max_bytes:
            raise _TooLarge()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _TooLarge()
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return {}
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(NOT_DECODED) from exc
    if not isinstance(document, dict):
        raise BadRequest(NOT_DECODED)
    _check_shape(document, max_depth)
    return {key: value for key, value in document.items() if value is not None}


class _TooLarge(DatabunkerError):
    status_code = 413

    def __init__(self) -> None:
        super().__init__("The request body is too large")


def _check_shape(document: Any, max_depth: int) -> None:
    stack: list[tuple[Any, int]] = [(document, 1)]
    count = 0
    while stack:
        value, depth = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise BadRequest("The request body has too many values")
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > max_depth:
            raise BadRequest("The request body is nested too deeply")
        stack.extend((child, depth + 1) for child in children)


def validate(operation: V2Operation, document: Mapping[str, Any]) -> Any:
    """The body as the operation's model; a missing or ill-typed field is a 400 naming it."""
    try:
        return operation.model.model_validate(document)
    except ValidationError as exc:
        missing: list[str] = []
        wrong: list[str] = []
        for problem in exc.errors():
            name = ".".join(str(part) for part in problem["loc"]) or "body"
            if problem["type"] == "missing":
                missing.append(name)
            else:
                wrong.append(str(problem["loc"][0]) if problem["loc"] else name)
        if missing:
            raise BadRequest("Missing API request parameters: " + ", ".join(missing)) from exc
        raise BadRequest(f"The {wrong[0]} parameter has an incorrect format") from exc


# --- errors --------------------------------------------------------------------------------

_MESSAGES = {
    "bad mode": "The mode parameter has an incorrect format",
    "bad uuid": "Bad UUID",
    "bad appname": "The appname parameter has an incorrect format",
    "bad status": "The status parameter has an incorrect format",
    "access denied": ACCESS_DENIED,
    "user record not found": "The user record was not found",
}


def message_of(exc: DatabunkerError, operation: V2Operation) -> str:
    """v2's message for a domain error (v1's wording is lower-case and terser)."""
    text = exc.message
    if text in _MESSAGES:
        return _MESSAGES[text]
    if isinstance(exc, Missing):
        return exc.v2_message
    if isinstance(exc, AppRecordNotFound):
        return "The app record was not found"
    if isinstance(exc, NotFound):
        return operation.not_found
    if isinstance(exc, Conflict) and text.startswith("wrong status"):
        return "This user request is closed"
    return text[:1].upper() + text[1:]


def _error_answer(exc: Exception, operation: V2Operation) -> Response:
    if isinstance(exc, DatabunkerError):
        return error(exc.status_code, message_of(exc, operation))
    if isinstance(exc, KeyringSealed):
        return error(503, SEALED)
    if isinstance(exc, DecryptionError):
        kind, row = exc.where()
        log.error(
            "record cannot be decrypted",
            extra={"route": f"/v2/{operation.name}", "kind": kind, "row": row},
        )
        return error(500, "Failed to decrypt the user record")
    log.error(
        "unhandled server fault",
        extra={"route": f"/v2/{operation.name}", "error_type": type(exc).__name__},
    )
    return error(500, "Internal error")


# --- one call ------------------------------------------------------------------------------


def tenant_named(request: Request) -> tuple[str | None, bool]:
    """The tenant the request names (spec §1.3), and whether it must exist: the
    ``X-Bunker-Tenant`` header (it must), else the first label of a sub-domain host
    (``acme.vault.example.com``: not an IP address, not ``localhost``, three labels or
    more), which names a tenant only if one has that name: a vault served at
    ``vault.example.com`` stays reachable. (None, False) for the default tenant."""
    named = (request.headers.get(TENANT_HEADER) or "").strip()
    if named:
        return named, True
    return _host_label(request), False


def _host_label(request: Request) -> str | None:
    host = (request.headers.get("host") or "").strip().lower()
    if host.startswith("["):  # an IPv6 literal
        return None
    host = host.rsplit(":", 1)[0] if ":" in host else host
    labels = host.rstrip(".").split(".")
    if len(labels) < 3 or _is_address(host) or labels[-1] == "localhost":
        return None
    return labels[0]


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _title(operation: V2Operation, document: Mapping[str, Any]) -> str:
    if operation.title is None:
        return operation.name
    mode = document.get("mode")
    return operation.title.format(mode=mode if mode in MODES else "unknown mode")


def _subject(document: Mapping[str, Any]) -> tuple[str, str] | None:
    """Whom a failed attempt is filed under: the person named, or the request's person."""
    mode, identity = document.get("mode"), document.get("identity")
    if isinstance(mode, str) and isinstance(identity, str):
        return mode, identity
    requestuuid = document.get("requestuuid")
    if isinstance(requestuuid, str):
        return REQUEST_SUBJECT, requestuuid
    return None


def _metadata(document: dict[str, Any]) -> bytes | None:
    metadata = document.pop("request_metadata", None)
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise BadRequest(NOT_DECODED)
    return documents.encode(metadata)


async def perform(request: Request, operation: V2Operation) -> Response:
    context: Context = request.app.state.vault
    limits = context.settings.server
    try:
        document = await read_document(request, limits.max_body_bytes, limits.max_json_depth)
        metadata = _metadata(document)
        document.pop(CLIENT_ADDRESS, None)  # only ever the wire's own reading
        if operation.client_address:
            document[CLIENT_ADDRESS] = request.client.host if request.client else "unknown"
        tenant_name, tenant_required = tenant_named(request)

        def run(work: Work) -> Payload:
            body = validate(operation, document)
            return operation.handler(work, body)

        payload = await run_unit(
            context,
            Credential(request.headers.get(TOKEN_HEADER), Source.HEADER),
            operation.access,
            run,
            title=_title(operation, document),
            subject=_subject(document),
            wake=_waker(request),
            request_metadata=metadata,
            keep_spent=operation.keep_spent,
            tenant_name=tenant_name,
            tenant_required=tenant_required,
        )
    except Exception as exc:
        return _error_answer(exc, operation)
    return answer(payload)


def _waker(request: Request) -> Callable[[], None]:
    def wake() -> None:
        dispatcher = getattr(request.app.state, "webhooks", None)
        if dispatcher is not None:
            dispatcher.wake()

    return wake
