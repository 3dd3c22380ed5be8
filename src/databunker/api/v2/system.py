"""v2 system (spec §2.14): ``SystemGetSystemStats``, ``SystemGetUserReport``,
``SystemGetUserHTMLReport``.

The report is v1's data export (``/v1/export``): everything stored about one person,
decrypted, for root or the person's own token; the HTML report is the same document as a
self-contained page (every value escaped). The statistics count the caller's tenant (the
default tenant's root: every tenant); there are no format-preserving tokens and no licence
(``licensemaxrecords`` and ``licensefinalexpiration`` are 0: no limit).
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from databunker.api.v2.audit import event_row
from databunker.api.v2.consent import agreement_row
from databunker.api.v2.fields import Identified
from databunker.api.v2.registry import Access, Payload, V2Body, V2Operation
from databunker.api.v2.user_requests import summary
from databunker.services import export, stats
from databunker.services.context import Work
from databunker.services.export import PersonExport

__all__ = ["OPERATIONS", "render_report"]


def system_stats(work: Work, _body: V2Body) -> Payload:
    counted = stats.system_stats(work)
    licence = {"totalnumrecords": counted.records, "licensemaxrecords": 0}
    return {
        "stats": {
            "numusers": counted.users,
            "numtenants": counted.tenants,
            "numtokens": counted.tokens,
            "numsessions": counted.sessions,
            **licence,
            "licensefinalexpiration": 0,
        },
        **licence,
        "licensefinalexpiration": 0,
    }


def report_of(found: PersonExport) -> Payload:
    return {
        "token": found.token,
        "profile": found.profile,
        "apps": found.apps,
        "agreements": [agreement_row(view) for view in found.agreements],
        "groups": [],
        "sessions": [
            {"sessionuuid": s.session, "sessiondata": s.data, "when": s.when}
            for s in found.sessions
        ],
        "files": [],
        "requests": [summary(row) for row in found.requests],
        "audit": [event_row(entry) for entry in found.audit],
    }


def user_report(work: Work, body: Identified) -> Payload:
    return {"report": report_of(export.export_user(work, body.mode, body.identity))}


def _section(title: str, value: Any) -> str:
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
    return f"<h2>{escape(title)}</h2>\n<pre>{escape(text)}</pre>\n"


def render_report(report: Payload) -> str:
    """The report as one HTML page: each section as indented JSON, escaped."""
    sections = "".join(
        _section(title, report[key])
        for title, key in (
            ("Profile", "profile"),
            ("Application records", "apps"),
            ("Agreements", "agreements"),
            ("Sessions", "sessions"),
            ("Requests", "requests"),
            ("Audit trail", "audit"),
        )
    )
    token = escape(str(report["token"]))
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>Personal data report {token}</title>\n</head>\n<body>\n"
        f"<h1>Personal data report</h1>\n<p>Record token: <code>{token}</code></p>\n"
        f"{sections}</body>\n</html>\n"
    )


def user_html_report(work: Work, body: Identified) -> Payload:
    report = report_of(export.export_user(work, body.mode, body.identity))
    return {"html": render_report(report)}


OPERATIONS = (
    V2Operation("SystemGetSystemStats", V2Body, Access.ROOT, system_stats),
    V2Operation(
        "SystemGetUserReport",
        Identified,
        Access.AUTHENTICATED,
        user_report,
        title="export user data by {mode}",
    ),
    V2Operation(
        "SystemGetUserHTMLReport",
        Identified,
        Access.AUTHENTICATED,
        user_html_report,
        title="export user data by {mode}",
    ),
)
