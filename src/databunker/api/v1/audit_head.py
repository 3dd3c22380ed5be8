"""``GET /v1/sys/audit/head`` (root): the audit chain's head, for an operator to anchor.

``count`` is the number of events linked since the chain began and ``link`` (hex) a keyed
digest of every lane's newest link followed by the lanes' positions;
``databunker audit verify --anchor COUNT:LINK`` checks later that the chain still holds
those events with those links.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from databunker.api.v1.runtime import Access, perform
from databunker.services.audit_head import chain_head
from databunker.services.context import Work


async def audit_head(request: Request) -> Response:
    def operation(work: Work) -> dict[str, Any]:
        head = chain_head(work)
        return {"status": "ok", "count": head.count, "link": head.link_hex()}

    return await perform(request, Access.ROOT, operation)


routes = [Route("/v1/sys/audit/head", audit_head, methods=["GET"])]
