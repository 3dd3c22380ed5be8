"""Removal of everything personal that hangs off a user record when the person is erased."""

from __future__ import annotations

from sqlalchemy.engine import Connection

from databunker.storage import agreements, repositories, requests
from databunker.storage.tables import sessions, shared_records, user_apps
from databunker.storage.tenancy import tenant_of


def erase_personal_data(conn: Connection, user_token: str) -> None:
    """App records, sessions and shared records go; audit, request and agreement metadata
    stay (they are evidence), without their encrypted values; access tokens are revoked."""
    for table in (user_apps, sessions, shared_records):
        conn.execute(table.delete().where(table.c.user_token == user_token, tenant_of(conn, table)))
    requests.shred_changes(conn, user_token)
    agreements.forget_identities(conn, user_token)
    repositories.shred_audit_payloads(conn, user_token)
    repositories.delete_user_access_tokens(conn, user_token)
