"""The v2 wire's OpenAPI 3.1 document, generated from the operation registry.

One path ``POST /v2/<Operation>`` per registered operation, its request body the
operation's pydantic model (``models_json_schema``, so a field added to a model is in the
document at once), the answers of spec §1.6-1.7 (the ``{"status":"ok",...}`` envelope and
exactly ``{"status":"error","message":...}``) and the ``X-Bunker-Token`` /
``X-Bunker-Tenant`` headers. Nothing here is written by hand per operation but a one-line
summary.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from starlette.requests import Request
from starlette.responses import Response

from databunker import __version__
from databunker.api.v2.registry import CLIENT_ADDRESS, Access, V2Operation
from databunker.api.v2.wire import (
    ACCESS_DENIED,
    JSON_TYPE,
    METHOD_NOT_ALLOWED,
    NOT_DECODED,
    SEALED,
    UNKNOWN_OPERATION,
)

__all__ = ["SUMMARIES", "document", "openapi_json", "served_document"]

Schema = dict[str, Any]

WHO = {
    Access.PUBLIC: "Anyone (no token needed; a token that is sent must be valid).",
    Access.ROOT: "Root only.",
    Access.AUTHENTICATED: (
        "Root, or a person's own access token for that person's own records only."
    ),
    Access.CREATE_USER: ("Root, or anyone when `generic.create_user_without_access_token` is on."),
}

OK_ANSWER: Schema = {
    "type": "object",
    "description": "The answer envelope: `status` is `ok`, the operation's fields beside it.",
    "required": ["status"],
    "properties": {"status": {"const": "ok"}},
    "additionalProperties": True,
}
ERROR_ANSWER: Schema = {
    "type": "object",
    "description": "Every refusal and fault: exactly these two members.",
    "required": ["status", "message"],
    "properties": {"status": {"const": "error"}, "message": {"type": "string"}},
    "additionalProperties": False,
}

ERRORS = {
    "400": f"The body is not a JSON object (`{NOT_DECODED}`), a field is missing "
    "(`Missing API request parameters: ...`) or ill-typed (`The ... parameter has an "
    "incorrect format`, `Bad UUID`).",
    "403": f"`{ACCESS_DENIED}`: no token, a wrong token, a token without this operation's "
    "access level, a token of another tenant, or a tenant that does not exist "
    "(`Only the main tenant admin can ...` for a tenant's root asking what only the "
    "default tenant's root may). A stranger learns nothing "
    "from a body's fields: they are validated only after this check.",
    "404": f"`{UNKNOWN_OPERATION}` for an unknown operation; otherwise the record the "
    "operation names was not found (`The user record was not found`, ...).",
    "405": f"`{METHOD_NOT_ALLOWED}`: any method but POST.",
    "409": "A duplicate identity (`Duplicate index: email`), a tenant name taken "
    "(`Duplicate tenant name`) or a closed request "
    "(`This user request is closed`).",
    "413": "The body is larger than `server.max_body_bytes`.",
    "429": "Too many attempts (login codes, per identity or per client address).",
    "500": "A server fault (`Internal error`), or a stored value that does not decrypt "
    "(`Failed to decrypt the user record`); logged without values.",
    "503": f"`{SEALED}`: the vault waits for its key or its shares.",
}

TENANT_PARAMETER: Schema = {
    "name": "X-Bunker-Tenant",
    "in": "header",
    "required": False,
    "description": "The tenant's name. Without it, the first label of a sub-domain host "
    "names the tenant if one has that name; otherwise the default tenant (`default`) is "
    "reached. A name that is no tenant's is 403 `Access denied`, as a wrong token is.",
    "schema": {"type": "string"},
}

SECURITY_SCHEMES: Schema = {
    "BunkerToken": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Bunker-Token",
        "description": "The root token, or a person's own access token (an `xtoken` from "
        "`UserLogin` or `XTokenCreateForUser`).",
    }
}

DESCRIPTION = """DatabunkerPro's v2 API, served by Databunker for Python over the same \
vault as v1: a person created through v2 is the same person through v1.

Every operation is `POST /v2/<Operation>` with a JSON object body (read as JSON whatever \
the `Content-Type`; an empty body is `{}`; a `null` member counts as absent; unknown \
members are ignored). Any body may also carry `request_metadata`, an object kept with the \
operation's audit event. Checks run in this order: the operation exists (404), the body is \
a JSON object (400), the credential and the operation's access level (403), the tenant \
(403), the fields (400), then the domain (404, 409, ...).

Deliberate differences from the specification are listed in the README ("Where this \
server differs from the v2 specification"): no sliding expiry for user records, no record \
versions, groups or roles yet, a person's own token keeps v1's rules, login answers alike \
for known and unknown people, tenants on every database (SQLite and MariaDB too)."""

# One line per operation for the reference page (the body's fields come from its model).
# ``tests/integration/api/test_openapi.py`` fails for an operation without one, and for a
# summary of no operation.
SUMMARIES: Mapping[str, str] = {
    "AgreementAccept": "Give a person's consent to a legal basis (status `active`)",
    "AgreementCancel": "Withdraw a person's consent (it becomes `canceled`)",
    "AgreementCancelRequest": "Ask for a consent to be withdrawn (an `agreement-withdraw` request)",
    "AgreementGet": "A person's agreement to one legal basis",
    "AgreementListUserAgreements": "A person's agreements",
    "AgreementRevokeAll": "Revoke every consent given to a legal basis",
    "AppdataCreate": "Create or replace a person's app record (a person's own token: a "
    "request unless the app is self-service)",
    "AppdataDelete": "Delete a person's app record",
    "AppdataGet": "A person's app record",
    "AppdataListAppNames": "Every app name in use",
    "AppdataListUserAppNames": "A person's app names",
    "AppdataUpdate": "Change a person's app record (merge patch)",
    "AppdataUpdateRequest": "Ask for a change of a person's app record",
    "AuditGetEvent": "One audit event with its values",
    "AuditListUserEvents": "A person's audit events, newest first",
    "BulkListAllAuditEvents": "Every audit event, newest first (needs an unlock id)",
    "BulkListAllUserRequests": "Every user request, newest first (needs an unlock id)",
    "BulkListAllUsers": "Every user record, oldest first (needs an unlock id and `list_users`)",
    "BulkListUnlock": "An unlock id for the bulk listings (valid 60 s, for this credential)",
    "BulkListUsers": "The user records of the people named (needs an unlock id and `list_users`)",
    "CaptchaCreate": "A new captcha for the login",
    "LegalBasisCreate": "Create a legal basis",
    "LegalBasisDelete": "Delete a legal basis (one in use is kept as `deleted`)",
    "LegalBasisListAgreements": "The legal bases",
    "LegalBasisUpdate": "Change or rename a legal basis",
    "ProcessingActivityCreate": "Create a processing activity",
    "ProcessingActivityDelete": "Delete a processing activity",
    "ProcessingActivityLinkLegalBasis": "Link a legal basis to a processing activity",
    "ProcessingActivityListActivities": "The processing activities",
    "ProcessingActivityUnlinkLegalBasis": "Unlink a legal basis from a processing activity",
    "ProcessingActivityUpdate": "Change or rename a processing activity",
    "SessionDelete": "Delete a session",
    "SessionGet": "A session (an expired one is 404)",
    "SessionListUserSessions": "A person's live sessions",
    "SessionUpsert": "Create or replace a session",
    "SharedRecordCreate": "Share a person's record for a time (answers `recorduuid`)",
    "SharedRecordGet": "Read a shared record",
    "SystemGetSystemStats": "Counts of the tenant's records (the default tenant's root: "
    "the whole deployment's)",
    "SystemGetUserHTMLReport": "Everything stored about a person, as an escaped HTML page",
    "SystemGetUserReport": "Everything stored about a person (v1's export)",
    "TenantCreate": "Create a tenant and answer its root token, once (the default "
    "tenant's root only)",
    "TenantDelete": "Delete a tenant: its people are crypto-shredded, its tokens and "
    "records deleted (the default tenant's root only)",
    "TenantGet": "A tenant's name, organisation and email (a tenant's root: its own)",
    "TenantListTenants": "Every tenant (the default tenant's root only)",
    "TenantUpdate": "Change a tenant's name, organisation or email (by default the caller's)",
    "UserCreate": "Create a user record (answers its `token`)",
    "UserCreateBulk": "Create many user records at once (one refused record refuses all)",
    "UserDelete": "Erase a user record (crypto-shredding)",
    "UserDeleteBulk": "Erase many user records at once",
    "UserDeleteRequest": "Ask for a user record to be erased",
    "UserGet": "A user record",
    "UserLogin": "Log in with the code sent (answers the `xtoken`)",
    "UserPatch": "Change a user record (RFC 6902 JSON Patch)",
    "UserPatchRequest": "Ask for a change of a user record (JSON Patch)",
    "UserPrelogin": "Send a login code (alike for known and unknown people)",
    "UserRequestApprove": "Approve a user request: its change is applied",
    "UserRequestCancel": "Cancel a user request",
    "UserRequestGet": "A user request, the original it would change and the change",
    "UserRequestListUserRequests": "A person's user requests, newest first",
    "UserUpdate": "Change a user record (merge patch: `null` removes a key)",
    "UserUpdateRequest": "Ask for a change of a user record",
    "XTokenCreateForUser": "An access token for a person, minted by root",
}


def _summary(operation: V2Operation) -> str:
    summary = SUMMARIES.get(operation.name)
    if summary is None:
        raise LookupError(f"v2 operation {operation.name} has no summary in api/v2/openapi.py")
    return summary


def _body_schemas(
    operations: Mapping[str, V2Operation],
) -> tuple[dict[str, Schema], dict[str, Schema]]:
    """Each operation's body schema (a reference, or the schema itself) and the shared
    component schemas they refer to."""
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = []
    for operation in operations.values():
        if (operation.model, "validation") not in models:
            models.append((operation.model, "validation"))
    keys, definitions = models_json_schema(models, ref_template="#/components/schemas/{model}")
    components: dict[str, Schema] = dict(definitions.get("$defs", {}))
    bodies: dict[str, Schema] = {}
    for name, operation in operations.items():
        schema = dict(keys[(operation.model, "validation")])
        if operation.client_address:
            # The wire fills it from the connection; a value in the body is dropped.
            _drop_property(schema, components, CLIENT_ADDRESS)
        bodies[name] = schema
    return bodies, components


def _drop_property(schema: Schema, components: dict[str, Schema], name: str) -> None:
    target = schema
    reference = schema.get("$ref")
    if isinstance(reference, str):
        key = reference.rsplit("/", 1)[-1]
        target = components[key] = dict(components[key])
    properties = dict(target.get("properties", {}))
    properties.pop(name, None)
    target["properties"] = properties
    required = [field for field in target.get("required", []) if field != name]
    if required:
        target["required"] = required
    else:
        target.pop("required", None)


def _responses() -> Schema:
    responses: Schema = {
        "200": {
            "description": 'Done: the operation\'s fields beside `"status": "ok"`.',
            "content": {JSON_TYPE.split(";")[0]: {"schema": {"$ref": "#/components/schemas/Ok"}}},
        }
    }
    for code, text in ERRORS.items():
        responses[code] = {
            "description": text,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    return responses


def document(operations: Mapping[str, V2Operation]) -> Schema:
    """The OpenAPI 3.1 document of these operations."""
    bodies, components = _body_schemas(operations)
    paths: Schema = {}
    for name in sorted(operations):
        operation = operations[name]
        public = operation.access is Access.PUBLIC
        paths[f"/v2/{name}"] = {
            "post": {
                "operationId": name,
                "summary": _summary(operation),
                "description": f"**Who**: {WHO[operation.access]}",
                "tags": [_area(operation)],
                "parameters": [{"$ref": "#/components/parameters/Tenant"}],
                "requestBody": {
                    "required": False,
                    "content": {"application/json": {"schema": bodies[name]}},
                },
                "responses": _responses(),
                "security": [{}, {"BunkerToken": []}] if public else [{"BunkerToken": []}],
            }
        }
    schemas = {**components, "Ok": OK_ANSWER, "Error": ERROR_ANSWER}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Databunker for Python: v2 API (DatabunkerPro-compatible)",
            "version": __version__,
            "description": DESCRIPTION,
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "parameters": {"Tenant": TENANT_PARAMETER},
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


def _area(operation: V2Operation) -> str:
    module = getattr(operation.handler, "__module__", "") or ""
    return module.rsplit(".", 1)[-1]


_SERVED: dict[str, bytes] = {}


def served_document(operations: Mapping[str, V2Operation]) -> bytes:
    """The document as served, built once per process."""
    if "document" not in _SERVED:
        _SERVED["document"] = orjson.dumps(document(operations))
    return _SERVED["document"]


def openapi_json(operations: Mapping[str, V2Operation]) -> Any:
    """The ``GET /v2/openapi.json`` endpoint (public: the document holds no data)."""

    async def endpoint(_request: Request) -> Response:
        return Response(served_document(operations), media_type="application/json")

    return endpoint
