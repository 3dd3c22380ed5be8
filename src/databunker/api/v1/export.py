"""Data portability: ``GET /v1/export/{mode}/{identity}`` (an addition to Databunker v1)."""

from __future__ import annotations

from typing import Any

from databunker.api.v1.audit import audit_entry_body
from databunker.api.v1.consent import agreement_body
from databunker.api.v1.requests import summary_body
from databunker.api.v1.runtime import path_route
from databunker.api.v1.users import record_route
from databunker.services import export
from databunker.services.export import PersonExport
from databunker.services.requests import RequestSummary


def _request_body(summary: RequestSummary) -> dict[str, Any]:
    body = summary_body(summary)
    if summary.change is not None:
        body["change"] = summary.change
    return body


def export_body(found: PersonExport) -> dict[str, Any]:
    return {
        "status": "ok",
        "token": found.token,
        "profile": found.profile,
        "apps": found.apps,
        "agreements": [agreement_body(a) for a in found.agreements],
        "sessions": [
            {"when": s.when, "session": s.session, "data": s.data} for s in found.sessions
        ],
        "requests": [_request_body(r) for r in found.requests],
        "audit": [audit_entry_body(entry) for entry in found.audit],
    }


routes = [
    path_route(
        "/v1/export/{mode}/{identity}",
        {
            "GET": record_route(
                "export user data by {mode}",
                lambda w, m, i, _b: export_body(export.export_user(w, m, i)),
            )
        },
    ),
]
