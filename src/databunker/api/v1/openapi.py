"""The v1 wire's OpenAPI 3.1 document: the served route table plus a description per route.

``DESCRIPTIONS`` holds, for every (method, path template) the v1 wire serves, what a caller
needs to know: who may call it, its query parameters, its body, its answer and its errors,
and where it deliberately differs from the original Databunker. Path parameters come from
the template itself. ``document`` is built from the app's route table at run time and
refuses a route without a description (``UndescribedRoute``), and the tests refuse a
description that names no route: the document cannot drift from what is served.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from databunker import __version__
from databunker.services.identity import MODES

__all__ = [
    "DESCRIPTIONS",
    "RouteDoc",
    "UndescribedRoute",
    "document",
    "routes",
    "served_routes",
]

Schema = dict[str, Any]


class UndescribedRoute(LookupError):
    """A served v1 route has no entry in ``DESCRIPTIONS``."""


# --- who may call ----------------------------------------------------------------------------

ANYONE = "Anyone: no token is needed."
ROOT = "Root only."
ROOT_OR_PERSON = (
    "Root, or the person's own access token (another person's token, no token or a wrong "
    "one is 403 `access denied`, the same whether or not the person exists)."
)
TOKEN_IN_PATH = "Anyone holding the token in the path: it is the credential."  # noqa: S105

# --- schemas -----------------------------------------------------------------------------------


def ok(description: str = "", **properties: Schema) -> Schema:
    schema: Schema = {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"const": "ok"}, **properties},
    }
    if description:
        schema["description"] = description
    return schema


def obj(description: str = "", **properties: Schema) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if description:
        schema["description"] = description
    return schema


def text(description: str = "") -> Schema:
    return {"type": "string", "description": description} if description else {"type": "string"}


def rows(item: Schema) -> Schema:
    return ok(total={"type": "integer"}, rows={"type": "array", "items": item})


INTEGER: Schema = {"type": "integer"}
BOOLEAN: Schema = {"type": "boolean"}
ANY_OBJECT: Schema = {"type": "object", "additionalProperties": True}
PROFILE: Schema = {
    "type": "object",
    "additionalProperties": True,
    "description": "The person's profile: any JSON object. `login`, `email`, `phone` and "
    "`custom` are lookup identities (unique; an email or phone must be valid).",
}
DONE = ok("Done at once.", result={"const": "done"})
CHANGED_OR_REQUEST = ok(
    "`result` is `done` for a change made at once; for a person's own change that needs an "
    "administrator's approval it is `request-created` (or `request-exists`) with `rtoken`.",
    result={"enum": ["done", "request-created", "request-exists"]},
    rtoken=text("The user request's token, when the change became a request."),
)
DURATION = text(
    "A duration (`30d`, `24h`, `30m`, `1y`; no unit = seconds) or a Unix time; at most 100 "
    "years (else 400 `bad expiration`)."
)
AGREEMENT: Schema = obj(
    brief=text(),
    status={"enum": ["yes", "no", "expired"]},
    mode=text(),
    token=text(),
    who=text(),
    referencecode=text(),
    lastmodifiedby=text(),
    agreementmethod=text(),
    when=INTEGER,
    starttime=INTEGER,
    endtime=INTEGER,
)
LEGAL_BASIS: Schema = obj(
    brief=text(),
    status={"enum": ["active", "deleted"]},
    module=text(),
    shortdesc=text(),
    fulldesc=text(),
    basistype=text(),
    requiredmsg=text(),
    usercontrol=BOOLEAN,
    requiredflag=BOOLEAN,
    creationtime=INTEGER,
)
REQUEST: Schema = obj(
    rtoken=text(),
    token=text(),
    action=text(),
    status=text("`open`, `approved` or `cancelled`."),
    creationtime=INTEGER,
    when=INTEGER,
    app=text(),
    brief=text(),
    reason=text(),
)
SEAL_STATE = ok(
    "The seal state: whether the vault is sealed and, for a share-protected vault, how many "
    "shares are still needed.",
    sealed=BOOLEAN,
)
REASON_BODY = obj("An optional reason, kept with the request.", reason=text())

# --- one route's description ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    description: str
    schema: Schema = field(default_factory=lambda: {"type": "string"})


OFFSET = Param("offset", "Rows to skip (default 0).", {"type": "integer", "minimum": 0})
LIMIT = Param(
    "limit",
    "Rows per page (default 10, at most 100; 0 means the default).",
    {"type": "integer", "minimum": 0},
)
PAGED = (OFFSET, LIMIT)
STATUS_FILTER = Param("status", "Only requests in this status (`open`, `approved`, `cancelled`).")


@dataclass(frozen=True, slots=True)
class RouteDoc:
    """What one method of one v1 route does, for whom, with what, answering what."""

    summary: str
    who: str
    answer: Schema = field(default_factory=lambda: ok())
    body: Schema | None = None
    query: tuple[Param, ...] = ()
    errors: tuple[int, ...] = (400, 403, 404)
    # Where the route deliberately differs from the original Databunker v1.
    differs: str = ""
    description: str = ""
    # The answer's media type when it is not JSON.
    media_type: str = "application/json"
    public: bool = False


PATH_PARAMETERS: Mapping[str, tuple[str, Schema]] = {
    "mode": (
        "How `identity` names the person.",
        {"type": "string", "enum": list(MODES)},
    ),
    "identity": (
        "The person's token, login, email, phone or custom id (normalised as stored).",
        {"type": "string"},
    ),
    "app": ("The application's name.", {"type": "string"}),
    "session": ("The session id (a UUID chosen by the client).", {"type": "string"}),
    "record": ("A shared record's token.", {"type": "string"}),
    "exptoken": ("The expiration token `exp/start` answered.", {"type": "string"}),
    "brief": ("A legal basis's short name.", {"type": "string"}),
    "activity": ("A processing activity's name.", {"type": "string"}),
    "token": ("The person's user token.", {"type": "string"}),
    "atoken": ("An audit event's token.", {"type": "string"}),
    "rtoken": ("A user request's token.", {"type": "string"}),
    "captcha": ("A captcha id from `GET /v1/captcha`.", {"type": "string"}),
    "code": (
        "`prelogin`: the captcha's answer; `login`: the code the person was sent.",
        {"type": "string"},
    ),
}

ERROR_TEXT = {
    400: "Bad input (`bad mode`, `bad uuid`, `failed to decode request body`, `empty "
    "request body`, `invalid email`, `bad expiration`, `invalid character in <field>`, ...).",
    401: "Not authenticated.",
    403: "`access denied`: no token, a wrong or expired token, or another person's token.",
    404: "`not found` (only root learns that a person does not exist).",
    409: "A duplicate identity (`duplicate index: email`) or a concurrent change.",
    413: "The body is larger than `server.max_body_bytes`.",
    429: "Too many attempts.",
    503: "The vault is sealed, or the database is unavailable.",
}
ALWAYS = (500, 503)

# --- the table ---------------------------------------------------------------------------------

USER = "/v1/user/{mode}/{identity}"
USERAPP = "/v1/userapp/{mode}/{identity}/{app}"
SESSION = "/v1/session/{session}"
AGREEMENT_PATH = "/v1/agreement/{brief}/{mode}/{identity}"
REQUEST_PATH = "/v1/request/{rtoken}"

DESCRIPTIONS: Mapping[tuple[str, str], RouteDoc] = {
    # system
    ("GET", "/v1/status"): RouteDoc(
        "Server status",
        ANYONE,
        ok(version=text()),
        errors=(),
        differs="Answers JSON (the original answered plain text); 503 when the database is down.",
        public=True,
    ),
    ("GET", "/status"): RouteDoc(
        "Server status (the original's path)", ANYONE, ok(version=text()), errors=(), public=True
    ),
    ("GET", "/v1/metrics"): RouteDoc(
        "Prometheus metrics",
        ANYONE,
        {"type": "string"},
        errors=(),
        description="Requests by method, route template and status, and their latency; "
        "no identity from a URL is ever a label.",
        media_type="text/plain",
        public=True,
    ),
    ("GET", "/v1/sys/ready"): RouteDoc(
        "Readiness, for load balancers and orchestrators",
        ANYONE,
        ok(ready={"const": True}),
        errors=(),
        description='503 `{"status":"error","message":<reason>,"ready":false}` while '
        "the vault is sealed, the database is out of reach, or its schema is older or newer "
        "than this server's. `GET /v1/status` stays the liveness check.",
        differs="Not in the original.",
        public=True,
    ),
    ("GET", "/v1/sys/uiconfiguration"): RouteDoc(
        "The portal's branding", ANYONE, ok(ui=ANY_OBJECT), errors=(), public=True
    ),
    ("GET", "/v1/sys/configuration"): RouteDoc(
        "The server's configuration",
        ROOT,
        ok(configuration=ANY_OBJECT),
        errors=(403,),
        description="Secrets are shown as `****`.",
    ),
    ("GET", "/v1/openapi.json"): RouteDoc(
        "This document",
        ANYONE,
        ANY_OBJECT,
        errors=(),
        description="The v1 API's OpenAPI 3.1 document (v2's is `GET /v2/openapi.json`; "
        "both are shown readably at `GET /docs`).",
        public=True,
    ),
    # keys and the seal (additions to v1)
    ("GET", "/v1/sys/seal"): RouteDoc(
        "Whether the vault is sealed", ANYONE, SEAL_STATE, errors=(), public=True
    ),
    ("POST", "/v1/sys/seal"): RouteDoc(
        "Seal the vault",
        ROOT,
        SEAL_STATE,
        errors=(403,),
        description="Forgets the master key in this process until it is unsealed again.",
    ),
    ("POST", "/v1/sys/unseal"): RouteDoc(
        "Give one key share",
        ANYONE,
        SEAL_STATE,
        body=obj("One Shamir share of the master key.", share=text()),
        errors=(400, 429),
        description="For a share-protected vault; attempts are rate-limited.",
        public=True,
    ),
    ("GET", "/v1/sys/keys"): RouteDoc(
        "Key versions and rotation progress",
        ROOT,
        ok(current=INTEGER, provider=text(), versions={"type": "array", "items": ANY_OBJECT}),
        errors=(403,),
    ),
    ("POST", "/v1/sys/keys/rotate"): RouteDoc(
        "Rotate the key-encryption key",
        ROOT,
        ok(),
        errors=(403,),
        description="Adds a key version, makes it current and rewraps every data key in the "
        "background.",
    ),
    ("GET", "/v1/sys/audit/head"): RouteDoc(
        "The audit chain's head",
        ROOT,
        ok(count=INTEGER, link=text("The newest link, in hex.")),
        errors=(403,),
    ),
    # user records
    ("POST", "/v1/user"): RouteDoc(
        "Create a user record",
        "Root; anyone when `generic.create_user_without_access_token` is on.",
        ok(token=text("The new person's user token.")),
        body=PROFILE,
        errors=(400, 403, 409),
        description="The body is a JSON object or a form. At least one lookup identity is needed.",
        differs="Emails and phones must be valid; a duplicate is 409.",
    ),
    ("POST", "/v1/users"): RouteDoc(
        "List user records",
        "Root, when `generic.list_users` is on.",
        rows(obj(token=text(), private=PROFILE)),
        query=PAGED,
        errors=(400, 403),
        differs="`private` is the profile object (not a string), and the listing is audited.",
    ),
    ("GET", USER): RouteDoc(
        "Get a user record",
        ROOT_OR_PERSON,
        ok(token=text(), data=PROFILE),
        differs="No user enumeration: without a valid token the answer is 403 whether or not "
        "the person exists.",
    ),
    ("PUT", USER): RouteDoc(
        "Change a user record",
        ROOT_OR_PERSON,
        CHANGED_OR_REQUEST,
        body={
            "description": "A JSON merge patch (an object), a JSON Patch (an array of RFC "
            "6902 operations) or a form.",
            "oneOf": [ANY_OBJECT, {"type": "array", "items": ANY_OBJECT}],
        },
        errors=(400, 403, 404, 409),
        description="A person's own change becomes a request unless "
        "`selfservice.user_record_change` is on.",
        differs="The schema is checked on update too; a duplicate is 409; a concurrent "
        "update is 409 instead of a lost update.",
    ),
    ("DELETE", USER): RouteDoc(
        "Erase a user record",
        ROOT_OR_PERSON,
        CHANGED_OR_REQUEST,
        description="Crypto-shredding: the data key and every ciphertext are deleted, the "
        "token and the audit metadata stay. A person's own erasure is a request unless "
        "`selfservice.forget_me` is on.",
        differs="Erasure also shreds the person's audit values and revokes their access tokens.",
    ),
    # app records
    ("POST", USERAPP): RouteDoc(
        "Create or replace an app record",
        ROOT_OR_PERSON,
        CHANGED_OR_REQUEST,
        body=ANY_OBJECT,
        differs="A person's own token changes an app record directly only for apps "
        "`selfservice.app_record_change` opens; otherwise it becomes a `change-app-data` "
        "request.",
    ),
    ("GET", USERAPP): RouteDoc(
        "Get an app record", ROOT_OR_PERSON, ok(token=text(), data=ANY_OBJECT)
    ),
    ("PUT", USERAPP): RouteDoc(
        "Change an app record",
        ROOT_OR_PERSON,
        CHANGED_OR_REQUEST,
        body={
            "description": "A JSON merge patch or a JSON Patch.",
            "oneOf": [ANY_OBJECT, {"type": "array", "items": ANY_OBJECT}],
        },
        differs="A `PUT` of a record that does not exist starts from `{}`.",
    ),
    ("DELETE", USERAPP): RouteDoc(
        "Delete an app record",
        ROOT_OR_PERSON,
        DONE,
        differs="A person's own token deletes only in apps `selfservice.app_record_change` opens.",
    ),
    ("GET", "/v1/userapp/{mode}/{identity}"): RouteDoc(
        "A person's app names",
        ROOT_OR_PERSON,
        ok(token=text(), apps={"type": "array", "items": text()}),
    ),
    ("GET", "/v1/userapps"): RouteDoc(
        "Every app name in use",
        ROOT,
        ok(apps={"type": "array", "items": text()}),
        errors=(403,),
    ),
    # sessions
    ("POST", SESSION): RouteDoc(
        "Create or replace a session",
        ROOT,
        ok(session=text()),
        body=obj(
            "The session's data; `login`, `email`, `phone`, `custom` or `token` link it to a "
            "person.",
            expiration=DURATION,
        ),
        errors=(400, 403, 404),
        description="`expiration` is capped by `policy.max_session_retention_period`.",
    ),
    ("GET", SESSION): RouteDoc(
        "Get a session",
        "Root, or the linked person's own token.",
        ok(session=text(), when=INTEGER, data=ANY_OBJECT),
        differs="An expired session answers `not found`, exactly as a missing one.",
    ),
    ("DELETE", SESSION): RouteDoc("Delete a session", ROOT, ok()),
    ("GET", "/v1/sessions/{mode}/{identity}"): RouteDoc(
        "A person's live sessions",
        ROOT_OR_PERSON,
        rows(obj(session=text(), when=INTEGER, data=ANY_OBJECT)),
        query=PAGED,
        description="Newest first.",
    ),
    # shared records
    ("POST", "/v1/sharedrecord/{mode}/{identity}"): RouteDoc(
        "Share a record with a third party",
        ROOT_OR_PERSON,
        ok(record=text("The shared record's token, for `GET /v1/get/{record}`.")),
        body=obj(
            fields=text("Comma-separated dot paths of the profile to share."),
            app=text("Share this app record instead."),
            session=text("Share this session (the person's own) instead."),
            partner=text(),
            expiration=DURATION,
        ),
        differs="The record token is stored only as a keyed hash.",
    ),
    ("GET", "/v1/get/{record}"): RouteDoc(
        "Read a shared record",
        TOKEN_IN_PATH,
        ok(app=text(), session=text(), data=ANY_OBJECT),
        errors=(400, 403),
        description="Unknown or expired: 403.",
        public=True,
    ),
    # retention
    ("POST", "/v1/exp/start/{mode}/{identity}"): RouteDoc(
        "Start a data retention",
        ROOT,
        ok(exptoken=text("Answered once: it is stored only as a keyed hash.")),
        body=obj(expiration=DURATION, status=text()),
        differs="Only root starts one (a person could otherwise erase themselves through its "
        "link).",
    ),
    ("GET", "/v1/exp/status/{mode}/{identity}"): RouteDoc(
        "A person's retention status",
        ROOT_OR_PERSON,
        ok(exptime=INTEGER, expstatus=text()),
        differs="The `exptoken` is never answered here.",
    ),
    ("DELETE", "/v1/exp/cancel/{mode}/{identity}"): RouteDoc(
        "Cancel a retention",
        ROOT_OR_PERSON,
        ok(),
        description="A person cannot cancel a retention root started.",
    ),
    ("GET", "/v1/exp/retain/{exptoken}"): RouteDoc(
        "Keep the data (a retention link)",
        TOKEN_IN_PATH,
        DONE,
        differs="Answers JSON (the original answered plain `OK`); each link works once.",
        public=True,
    ),
    ("GET", "/v1/exp/delete/{exptoken}"): RouteDoc(
        "Erase the data now (a retention link)",
        TOKEN_IN_PATH,
        DONE,
        differs="Answers JSON (the original answered plain `OK`); each link works once.",
        public=True,
    ),
    # the catalogue
    ("GET", "/v1/sys/cookiesettings"): RouteDoc(
        "What a cookie banner needs",
        ANYONE,
        ok(ui=ANY_OBJECT, scripts={"type": "array", "items": ANY_OBJECT}),
        errors=(),
        public=True,
    ),
    ("GET", "/v1/lbasis"): RouteDoc("List legal bases", ROOT, rows(LEGAL_BASIS), errors=(403,)),
    ("POST", "/v1/lbasis/{brief}"): RouteDoc(
        "Create or change a legal basis",
        ROOT,
        ok(),
        body=obj(
            brief=text("Renames the legal basis."),
            status=text(),
            module=text(),
            shortdesc=text(),
            fulldesc=text(),
            basistype=text(),
            requiredmsg=text(),
            usercontrol=BOOLEAN,
            requiredflag=BOOLEAN,
        ),
        errors=(400, 403, 404, 409),
        differs="Flags must be booleans; fields absent from an update keep their values; "
        "renaming onto an existing name is 409.",
    ),
    ("DELETE", "/v1/lbasis/{brief}"): RouteDoc(
        "Delete a legal basis",
        ROOT,
        ok(),
        differs="A legal basis in use has its agreements revoked and is kept as `deleted`.",
    ),
    ("GET", "/v1/pactivity"): RouteDoc(
        "List processing activities",
        ROOT,
        rows(obj(activity=text(), title=text(), briefs={"type": "array", "items": LEGAL_BASIS})),
        errors=(403,),
    ),
    ("POST", "/v1/pactivity/{activity}"): RouteDoc(
        "Create or change a processing activity",
        ROOT,
        ok(),
        body=obj(
            activity=text("Renames the activity."),
            title=text(),
            script=text(),
            fulldesc=text(),
            applicableto=text(),
        ),
        errors=(400, 403, 404, 409),
    ),
    ("DELETE", "/v1/pactivity/{activity}"): RouteDoc("Delete a processing activity", ROOT, ok()),
    ("POST", "/v1/pactivity/{activity}/{brief}"): RouteDoc(
        "Link a legal basis to an activity", ROOT, ok()
    ),
    ("DELETE", "/v1/pactivity/{activity}/{brief}"): RouteDoc(
        "Unlink a legal basis from an activity", ROOT, ok()
    ),
    # consent
    ("POST", AGREEMENT_PATH): RouteDoc(
        "Give consent",
        ROOT_OR_PERSON + " For `email` and `phone`, also anyone without a token (a login page).",
        ok(),
        body=obj(
            status=text("`yes` (the default) or `no`."),
            expiration=DURATION,
            starttime=DURATION,
            referencecode=text(),
            lastmodifiedby=text(),
            agreementmethod=text(),
        ),
        differs="Consent given without a token is kept under a blind index and bound to the "
        "person when their record is created; without a token an existing agreement "
        "cannot be changed.",
    ),
    ("DELETE", AGREEMENT_PATH): RouteDoc(
        "Withdraw consent",
        ROOT_OR_PERSON,
        CHANGED_OR_REQUEST,
        body=obj(lastmodifiedby=text()),
        description="A person's withdrawal of a legal basis without `usercontrol` becomes a "
        "request.",
        differs="Never anonymous (the original let anyone withdraw some consents).",
    ),
    ("GET", AGREEMENT_PATH): RouteDoc("Get one agreement", ROOT_OR_PERSON, ok(data=AGREEMENT)),
    ("GET", "/v1/agreements/{mode}/{identity}"): RouteDoc(
        "A person's agreements", ROOT_OR_PERSON, rows(AGREEMENT)
    ),
    ("DELETE", "/v1/agreement/{brief}"): RouteDoc(
        "Revoke every consent given for a legal basis", ROOT, ok()
    ),
    # user requests and export
    ("GET", "/v1/requests"): RouteDoc(
        "The queue of user requests",
        ROOT,
        rows(REQUEST),
        query=(STATUS_FILTER, *PAGED),
        errors=(400, 403),
        description="`status` defaults to `open`; newest first.",
    ),
    ("GET", "/v1/requests/{mode}/{identity}"): RouteDoc(
        "A person's requests",
        ROOT_OR_PERSON,
        rows(REQUEST),
        query=(STATUS_FILTER, *PAGED),
        description="Every status unless `status` is given; newest first.",
    ),
    ("GET", REQUEST_PATH): RouteDoc(
        "Get a user request",
        ROOT_OR_PERSON,
        ok(data=REQUEST, original=ANY_OBJECT, change=ANY_OBJECT),
        description="The request, the `original` it would change and the proposed `change`.",
    ),
    ("POST", REQUEST_PATH): RouteDoc(
        "Approve a user request",
        ROOT,
        DONE,
        body=REASON_BODY,
        errors=(400, 403, 404, 409),
        description="The change is applied.",
    ),
    ("DELETE", REQUEST_PATH): RouteDoc(
        "Cancel a user request",
        ROOT_OR_PERSON,
        ok(),
        body=REASON_BODY,
        errors=(400, 403, 404, 409),
    ),
    ("GET", "/v1/export/{mode}/{identity}"): RouteDoc(
        "Everything stored about a person",
        ROOT_OR_PERSON,
        ok(
            profile=PROFILE,
            apps=ANY_OBJECT,
            agreements={"type": "array", "items": AGREEMENT},
            sessions={"type": "array", "items": ANY_OBJECT},
            requests={"type": "array", "items": REQUEST},
        ),
        description="Decrypted, for data portability.",
        differs="An addition to v1.",
    ),
    # audit
    ("GET", "/v1/audit/list/{token}"): RouteDoc(
        "A person's audit events",
        ROOT_OR_PERSON,
        rows(ANY_OBJECT),
        query=PAGED,
        description="Newest first.",
        differs="Failed and denied attempts on a URL that names the person are filed under "
        "that person too.",
    ),
    ("GET", "/v1/audit/admin"): RouteDoc(
        "Every audit event", ROOT, rows(ANY_OBJECT), query=PAGED, errors=(400, 403)
    ),
    ("GET", "/v1/audit/get/{atoken}"): RouteDoc(
        "One audit event with its values",
        "Root, or the event's person.",
        ok(event=obj(before=ANY_OBJECT, after=ANY_OBJECT, request_metadata=ANY_OBJECT)),
    ),
    # passwordless login
    ("GET", "/v1/captcha"): RouteDoc(
        "A new captcha",
        ANYONE,
        ok(captcha=text("The captcha's id.")),
        errors=(429,),
        differs="An addition to v1.",
        public=True,
    ),
    ("GET", "/v1/captcha/{captcha}"): RouteDoc(
        "A captcha's image",
        ANYONE,
        {"type": "string", "format": "binary"},
        errors=(404,),
        description="Unknown, used or expired: 404.",
        media_type="image/png",
        public=True,
    ),
    ("GET", "/v1/prelogin/{mode}/{identity}/{code}/{captcha}"): RouteDoc(
        "Send a login code",
        ANYONE,
        DONE,
        errors=(400, 429),
        description="`mode` is `email` or `phone`; `code` is the captcha's answer. The code "
        "goes only to the address stored in the person's record.",
        differs="Always `done`, for known and unknown people alike (no user enumeration); "
        "rate-limited per identity and per address.",
        public=True,
    ),
    ("GET", "/v1/login/{mode}/{identity}/{code}"): RouteDoc(
        "Log in with the code",
        "Anyone holding the code.",
        ok(xtoken=text("The person's access token."), token=text("The person's user token.")),
        errors=(400, 403, 429),
        description="A code is spent by one login and void after five wrong ones.",
        public=True,
    ),
    ("POST", "/v1/logout"): RouteDoc(
        "Revoke the presented access token",
        "A person's own access token.",
        ok(),
        errors=(400, 403),
        differs="An addition to v1.",
    ),
}

# --- the document --------------------------------------------------------------------------------

_PARAMETER = re.compile(r"{([a-z_]+)(?::[a-z]+)?}")

DESCRIPTION = """Databunker's v1 API, compatible with the original Databunker's clients.

Every answer is JSON: `{"status":"ok",...}` or `{"status":"error","message":"..."}`. The \
credential is the `X-Bunker-Token` header: the root token, or a person's own access token \
(from the passwordless login). Bodies are JSON (a form is accepted where an object is). \
Trailing slashes are accepted directly (no redirect).

Deliberate differences from the original are named in each route's description and in \
the README ("Where this server deliberately differs from the original v1"): status codes fit \
the error (the original answered 405 for most), no user enumeration, every attempt is \
audited, text kept in clear refuses control characters, durations are bounded to 100 \
years."""


def served_routes(routes: Iterable[BaseRoute]) -> list[tuple[str, str]]:
    """The (method, path template) pairs of the v1 wire among ``routes``."""
    served: list[tuple[str, str]] = []
    for route in routes:
        if not isinstance(route, Route):
            continue
        if not (route.path.startswith("/v1/") or route.path == "/status"):
            continue
        for method in sorted((route.methods or set()) - {"HEAD"}):
            served.append((method, route.path))
    return served


def _parameters(path: str, described: RouteDoc) -> list[Schema]:
    parameters: list[Schema] = []
    for name in _PARAMETER.findall(path):
        description, schema = PATH_PARAMETERS[name]
        parameters.append(
            {
                "name": name,
                "in": "path",
                "required": True,
                "description": description,
                "schema": schema,
            }
        )
    for param in described.query:
        parameters.append(
            {
                "name": param.name,
                "in": "query",
                "required": False,
                "description": param.description,
                "schema": param.schema,
            }
        )
    return parameters


def _responses(described: RouteDoc) -> Schema:
    error_content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    responses: Schema = {
        "200": {
            "description": "Done.",
            "content": {described.media_type: {"schema": described.answer}},
        }
    }
    bounded = (413,) if described.body is not None else ()
    for code in sorted({*described.errors, *bounded, *ALWAYS}):
        if code == 500:
            text_ = "A server fault, or a stored value that does not decrypt (`record cannot "
            text_ += "be decrypted`); logged without values."
        else:
            text_ = ERROR_TEXT[code]
        responses[str(code)] = {"description": text_, "content": error_content}
    return responses


def _operation(method: str, path: str, described: RouteDoc) -> Schema:
    notes = [f"**Who**: {described.who}"]
    if described.description:
        notes.append(described.description)
    if described.differs:
        notes.append(f"**Differs from the original**: {described.differs}")
    name = _PARAMETER.sub(r"\1", path).replace("/", "_").replace(".", "_")
    operation: Schema = {
        "operationId": f"{method.lower()}{name}",
        "summary": described.summary,
        "description": "\n\n".join(notes),
        "tags": [path.split("/")[2] if path.startswith("/v1/") else "sys"],
        "parameters": _parameters(path, described),
        "responses": _responses(described),
        "security": [{}, {"BunkerToken": []}] if described.public else [{"BunkerToken": []}],
    }
    if described.body is not None:
        operation["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": described.body}},
        }
    return operation


def document(routes: Iterable[BaseRoute]) -> Schema:
    """The OpenAPI 3.1 document of the v1 routes among ``routes``."""
    paths: Schema = {}
    for method, path in served_routes(routes):
        described = DESCRIPTIONS.get((method, path))
        if described is None:
            raise UndescribedRoute(f"{method} {path} has no entry in api/v1/openapi.py")
        paths.setdefault(path, {})[method.lower()] = _operation(method, path, described)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Databunker for Python: v1 API",
            "version": __version__,
            "description": DESCRIPTION,
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["status", "message"],
                    "properties": {"status": {"const": "error"}, "message": {"type": "string"}},
                }
            },
            "securitySchemes": {
                "BunkerToken": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Bunker-Token",
                    "description": "The root token, or a person's own access token.",
                }
            },
        },
    }


def served_document(request: Request) -> bytes:
    """The document of the app serving ``request``, built once per app."""
    state = request.app.state
    cached: bytes | None = getattr(state, "v1_openapi", None)
    if cached is None:
        cached = orjson.dumps(document(request.app.router.routes))
        state.v1_openapi = cached
    return cached


async def openapi_json(request: Request) -> Response:
    return Response(served_document(request), media_type="application/json")


routes = [Route("/v1/openapi.json", openapi_json, methods=["GET"])]
