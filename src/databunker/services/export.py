"""Data portability: everything the vault stores about one person, decrypted, as one document.

An addition to Databunker v1 (``GET /v1/export/{mode}/{identity}``), for root or the
person's own token: the profile, every app record, agreements, live sessions, requests (with
their proposed changes) and the person's audit trail as ``/v1/audit/list`` shows it.
"""

from __future__ import annotations

from typing import Any

from databunker.services import agreements, apps, audit, sessions
from databunker.services import requests as user_requests
from databunker.services.context import Work
from databunker.services.users import resolve_user
from databunker.storage import agreements as agreement_repo
from databunker.storage import apps as app_repo
from databunker.storage import repositories as repo
from databunker.storage import sessions as session_repo

JSONObject = dict[str, Any]


def _trail_row(entry: audit.AuditEntry) -> JSONObject:
    """An event as ``/v1/audit/list`` shows it (``api/v1/audit.audit_entry_body``)."""
    row: JSONObject = {"atoken": entry.atoken, "when": entry.when}
    optional = {
        "who": entry.who,
        "mode": entry.mode or None,
        "identity": entry.accessor or None,
        "record": entry.user_token or None,
        "app": entry.app or None,
    }
    row.update((name, value) for name, value in optional.items() if value is not None)
    row.update(title=entry.title, status=entry.status)
    if entry.msg:
        row["msg"] = entry.msg
    row["more"] = entry.has_values
    return row


def export_user(work: Work, mode: str, identity: str) -> JSONObject:
    person, key, profile = resolve_user(work, mode, identity)
    token = person.token
    records: JSONObject = {}
    session_rows: list[JSONObject] = []
    if key is not None:
        for name in app_repo.user_app_names(work.conn, token):
            found = app_repo.get_app_record(work.conn, token, name)
            if found is not None:
                records[name] = apps.open_app_record(key, found)
        live = session_repo.count_live_user_sessions(work.conn, token, work.now)
        for row in session_repo.live_user_sessions(
            work.conn, token, work.now, offset=0, limit=live
        ):
            session_rows.append(
                {
                    "when": row.updated,
                    "session": row.session,
                    "data": sessions.open_session_data(work, row),
                }
            )
    consent = [
        agreements.payload(work, row, key) for row in agreement_repo.of_user(work.conn, token)
    ]
    trail = audit.list_user_events(work, token, 0, repo.count_audit(work.conn, user_token=token))
    work.audit.record(mode=mode)  # reading the trail filed the event by token
    return {
        "status": "ok",
        "token": token,
        "profile": profile,
        "apps": records,
        "agreements": consent,
        "sessions": session_rows,
        "requests": user_requests.all_of_user(work, token, key),
        "audit": [_trail_row(entry) for entry in trail.rows],
    }
