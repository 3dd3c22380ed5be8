"""The DatabunkerPro v2 wire: ``POST /v2/<Operation>``, a thin adapter over the services.

Each area module exports ``OPERATIONS`` (see ``registry``); the route serves every
operation of the modules in ``AREAS``. An unknown operation is a 404 in v2's shape, any
method but POST a 405. ``GET /v2/openapi.json`` is the operations' OpenAPI document.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from databunker.api.v2 import (
    appdata,
    audit,
    bulk,
    consent,
    login,
    sessions,
    sharing,
    system,
    tenants,
    user_requests,
    users,
)
from databunker.api.v2.openapi import openapi_json
from databunker.api.v2.registry import index_operations
from databunker.api.v2.wire import METHOD_NOT_ALLOWED, UNKNOWN_OPERATION, error, perform

__all__ = ["AREAS", "OPERATIONS", "routes"]

AREAS = (
    users,
    user_requests,
    appdata,
    consent,
    sessions,
    sharing,
    audit,
    login,
    bulk,
    system,
    tenants,
)
OPERATIONS = index_operations(area.OPERATIONS for area in AREAS)


async def endpoint(request: Request) -> Response:
    if request.method != "POST":
        return error(405, METHOD_NOT_ALLOWED, headers={"Allow": "POST"})
    operation = OPERATIONS.get(request.path_params["operation"])
    if operation is None:
        return error(404, UNKNOWN_OPERATION)
    return await perform(request, operation)


routes = [
    # Before the operations' route, which would take ``openapi.json`` for an operation.
    Route("/v2/openapi.json", openapi_json(OPERATIONS), methods=["GET"], name="v2-openapi"),
    Route(
        "/v2/{operation:path}",
        endpoint,
        methods=["GET", "POST", "PUT", "DELETE", "PATCH"],
        name="v2",
    ),
]
