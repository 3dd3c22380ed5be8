"""Data portability: ``GET /v1/export/{mode}/{identity}`` (an addition to Databunker v1)."""

from __future__ import annotations

from databunker.api.v1.runtime import path_route
from databunker.api.v1.users import record_route
from databunker.services import export

routes = [
    path_route(
        "/v1/export/{mode}/{identity}",
        {
            "GET": record_route(
                "export user data by {mode}",
                lambda w, m, i, _b: export.export_user(w, m, i),
            )
        },
    ),
]
