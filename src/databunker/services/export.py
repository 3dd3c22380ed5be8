"""Data portability: everything the vault stores about one person, decrypted, as one document.

An addition to Databunker v1 (``GET /v1/export/{mode}/{identity}``), for root or the
person's own token: the profile, every app record, agreements, live sessions, requests (with
their proposed changes) and the person's audit trail as ``/v1/audit/list`` shows it.
"""

from __future__ import annotations

from dataclasses import dataclass

from databunker.services import agreements, apps, audit, sessions
from databunker.services import requests as user_requests
from databunker.services.agreements import AgreementView
from databunker.services.apps import JSONObject
from databunker.services.context import Work
from databunker.services.records import Profile, resolve_user
from databunker.services.requests import RequestSummary
from databunker.storage import agreements as agreement_rows
from databunker.storage import apps as app_rows
from databunker.storage import repositories as user_rows
from databunker.storage import sessions as session_rows


@dataclass(frozen=True, slots=True)
class ExportedSession:
    """One live session of the person: when it last changed, its token and its data."""

    when: int
    session: str
    data: JSONObject


@dataclass(frozen=True, slots=True)
class PersonExport:
    """Everything stored about one person. ``audit`` holds the person's trail as the audit
    list shows it."""

    token: str
    profile: Profile
    apps: dict[str, JSONObject]
    agreements: list[AgreementView]
    sessions: list[ExportedSession]
    requests: list[RequestSummary]
    audit: list[audit.AuditEntry]


def export_user(work: Work, mode: str, identity: str) -> PersonExport:
    person, key, profile = resolve_user(work, mode, identity)
    token = person.token
    records: dict[str, JSONObject] = {}
    live_sessions: list[ExportedSession] = []
    if key is not None:
        for name in app_rows.user_app_names(work.conn, token):
            found = app_rows.get_app_record(work.conn, token, name)
            if found is not None:
                records[name] = apps.open_app_record(key, found)
        live = session_rows.count_live_user_sessions(work.conn, token, work.now)
        for row in session_rows.live_user_sessions(
            work.conn, token, work.now, offset=0, limit=live
        ):
            live_sessions.append(
                ExportedSession(row.updated, row.session, sessions.open_session_data(work, row))
            )
    consent = [
        agreements.agreement_view(work, row, key)
        for row in agreement_rows.of_user(work.conn, token)
    ]
    trail = audit.list_user_events(
        work, token, 0, user_rows.count_audit(work.conn, user_token=token)
    )
    work.audit.record(mode=mode)  # reading the trail filed the event by token
    return PersonExport(
        token=token,
        profile=profile,
        apps=records,
        agreements=consent,
        sessions=live_sessions,
        requests=user_requests.all_of_user(work, token, key),
        audit=list(trail.rows),
    )
