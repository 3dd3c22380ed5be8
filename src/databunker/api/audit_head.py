"""``GET /v1/sys/audit/head`` (root): the audit chain's head, for an operator to anchor.

``count`` is the number of events linked since the chain began and ``link`` (hex) the
link of the newest; ``databunker audit verify --anchor COUNT:LINK`` checks later that the
event at that position still carries that link.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from databunker.api.auth import Access
from databunker.api.runtime import perform
from databunker.services.audit_head import chain_head
from databunker.services.context import Work


async def audit_head(request: Request) -> Response:
    def operation(work: Work) -> dict[str, Any]:
        head = chain_head(work)
        return {"status": "ok", "count": head.position, "link": head.link.hex()}

    return await perform(request, Access.ROOT, operation)


routes = [Route("/v1/sys/audit/head", audit_head, methods=["GET"])]
