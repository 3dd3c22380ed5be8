"""Repository of user app records: one JSON document per person and application.

``data`` arrives here only as ciphertext under the person's data key. Changes are
compare-and-set on ``version`` so a writer that read a stale record cannot overwrite a newer
one unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from databunker.errors import Conflict
from databunker.storage.tables import user_apps
from databunker.storage.tenancy import data_columns, owner, tenant_of


@dataclass(frozen=True, slots=True)
class AppRecordRow:
    user_token: str
    app: str
    data: bytes
    version: int
    created: int
    updated: int


def _row(row: Any) -> AppRecordRow:
    return AppRecordRow(**row._mapping)


def get_app_record(
    conn: Connection, user_token: str, app: str, *, for_update: bool = False
) -> AppRecordRow | None:
    query = sa.select(*data_columns(user_apps)).where(
        user_apps.c.user_token == user_token, user_apps.c.app == app, tenant_of(conn, user_apps)
    )
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).one_or_none()
    return _row(row) if row else None


def insert_app_record(
    conn: Connection, *, user_token: str, app: str, data: bytes, now: int
) -> None:
    """A new record (version 1); a concurrent insert of the same record is 409."""
    try:
        conn.execute(
            user_apps.insert().values(
                user_token=user_token,
                app=app,
                data=data,
                version=1,
                created=now,
                updated=now,
                tenant_id=owner(conn),
            )
        )
    except sa.exc.IntegrityError as exc:
        raise Conflict("the record was changed at the same time; try again") from exc


def update_app_record(
    conn: Connection,
    *,
    user_token: str,
    app: str,
    expected_version: int,
    data: bytes,
    now: int,
) -> bool:
    """Compare-and-set on ``version``; False when another writer changed or removed it first."""
    result = conn.execute(
        user_apps.update()
        .where(
            user_apps.c.user_token == user_token,
            user_apps.c.app == app,
            user_apps.c.version == expected_version,
            tenant_of(conn, user_apps),
        )
        .values(data=data, version=expected_version + 1, updated=now)
    )
    return result.rowcount == 1


def delete_app_record(conn: Connection, user_token: str, app: str) -> bool:
    result = conn.execute(
        user_apps.delete().where(
            user_apps.c.user_token == user_token,
            user_apps.c.app == app,
            tenant_of(conn, user_apps),
        )
    )
    return result.rowcount > 0


def user_app_names(conn: Connection, user_token: str) -> list[str]:
    """The applications holding a record of the person, in descending order (as v1 lists them)."""
    query = (
        sa.select(user_apps.c.app)
        .where(user_apps.c.user_token == user_token, tenant_of(conn, user_apps))
        .order_by(user_apps.c.app.desc())
    )
    return [str(name) for name in conn.execute(query).scalars()]


def all_app_names(conn: Connection) -> list[str]:
    """Every application holding at least one record, in ascending order."""
    query = (
        sa.select(user_apps.c.app)
        .where(tenant_of(conn, user_apps))
        .distinct()
        .order_by(user_apps.c.app)
    )
    return [str(name) for name in conn.execute(query).scalars()]
