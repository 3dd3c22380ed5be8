"""Repository of legal bases and processing activities (the consent catalogue)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from databunker.storage.tables import activity_legal_bases, legal_bases, processing_activities
from databunker.storage.tenancy import data_columns, owner, tenant_of


@dataclass(slots=True)
class LegalBasisRow:
    brief: str
    status: str
    module: str
    shortdesc: str
    fulldesc: str
    basistype: str
    requiredmsg: str
    usercontrol: bool
    requiredflag: bool
    created: int
    translations: str = ""  # JSON text, see ``tables.legal_bases``


@dataclass(slots=True)
class ActivityRow:
    activity: str
    title: str
    script: str
    fulldesc: str
    applicableto: str
    created: int


def _basis(row: Any) -> LegalBasisRow:
    values = dict(row._mapping)
    values["usercontrol"] = bool(values["usercontrol"])
    values["requiredflag"] = bool(values["requiredflag"])
    return LegalBasisRow(**values)


def get_basis(conn: Connection, brief: str, *, for_update: bool = False) -> LegalBasisRow | None:
    query = sa.select(*data_columns(legal_bases)).where(
        legal_bases.c.brief == brief, tenant_of(conn, legal_bases)
    )
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).one_or_none()
    return _basis(row) if row else None


def list_bases(
    conn: Connection, *, status: str | None = None, module: str | None = None
) -> list[LegalBasisRow]:
    query = sa.select(*data_columns(legal_bases)).where(tenant_of(conn, legal_bases))
    if status is not None:
        query = query.where(legal_bases.c.status == status)
    if module is not None:
        query = query.where(legal_bases.c.module == module)
        query = query.order_by(legal_bases.c.requiredflag.desc(), legal_bases.c.brief)
    else:
        query = query.order_by(legal_bases.c.created, legal_bases.c.brief)
    return [_basis(row) for row in conn.execute(query)]


def insert_basis(conn: Connection, row: LegalBasisRow) -> None:
    conn.execute(legal_bases.insert().values(**asdict(row), tenant_id=owner(conn)))


def update_basis(conn: Connection, brief: str, row: LegalBasisRow) -> None:
    mine = (legal_bases.c.brief == brief, tenant_of(conn, legal_bases))
    conn.execute(legal_bases.update().where(*mine).values(**asdict(row)))


def delete_basis(conn: Connection, brief: str) -> None:
    conn.execute(
        legal_bases.delete().where(legal_bases.c.brief == brief, tenant_of(conn, legal_bases))
    )


def set_basis_status(conn: Connection, brief: str, status: str) -> None:
    mine = (legal_bases.c.brief == brief, tenant_of(conn, legal_bases))
    conn.execute(legal_bases.update().where(*mine).values(status=status))


def rename_links(conn: Connection, old: str, new: str) -> None:
    links = activity_legal_bases
    mine = (links.c.brief == old, tenant_of(conn, links))
    conn.execute(links.update().where(*mine).values(brief=new))


def unlink_brief_everywhere(conn: Connection, brief: str) -> None:
    links = activity_legal_bases
    conn.execute(links.delete().where(links.c.brief == brief, tenant_of(conn, links)))


# -- processing activities -----------------------------------------------------------------
def get_activity(conn: Connection, activity: str) -> ActivityRow | None:
    table = processing_activities
    query = sa.select(*data_columns(table)).where(
        table.c.activity == activity, tenant_of(conn, table)
    )
    row = conn.execute(query).one_or_none()
    return ActivityRow(**row._mapping) if row else None


def list_activities(conn: Connection) -> list[ActivityRow]:
    table = processing_activities
    query = (
        sa.select(*data_columns(table))
        .where(tenant_of(conn, table))
        .order_by(table.c.created, table.c.activity)
    )
    return [ActivityRow(**row._mapping) for row in conn.execute(query)]


def insert_activity(conn: Connection, row: ActivityRow) -> None:
    conn.execute(processing_activities.insert().values(**asdict(row), tenant_id=owner(conn)))


def update_activity(conn: Connection, activity: str, row: ActivityRow) -> None:
    table = processing_activities
    mine = (table.c.activity == activity, tenant_of(conn, table))
    conn.execute(table.update().where(*mine).values(**asdict(row)))
    if row.activity != activity:
        links = activity_legal_bases
        linked = (links.c.activity == activity, tenant_of(conn, links))
        conn.execute(links.update().where(*linked).values(activity=row.activity))


def delete_activity(conn: Connection, activity: str) -> None:
    table = processing_activities
    conn.execute(table.delete().where(table.c.activity == activity, tenant_of(conn, table)))
    links = activity_legal_bases
    conn.execute(links.delete().where(links.c.activity == activity, tenant_of(conn, links)))


def linked_briefs(conn: Connection) -> dict[str, list[str]]:
    """Each activity's legal bases, in the order they were linked."""
    links = activity_legal_bases
    query = (
        sa.select(links.c.activity, links.c.brief)
        .where(tenant_of(conn, links))
        .order_by(links.c.activity, links.c.position, links.c.brief)
    )
    result: dict[str, list[str]] = {}
    for activity, brief in conn.execute(query):
        result.setdefault(activity, []).append(brief)
    return result


def link(conn: Connection, activity: str, brief: str) -> None:
    links = activity_legal_bases
    exists = conn.execute(
        sa.select(sa.func.count())
        .select_from(links)
        .where(links.c.activity == activity, links.c.brief == brief, tenant_of(conn, links))
    ).scalar_one()
    if exists:
        return
    position = conn.execute(
        sa.select(sa.func.coalesce(sa.func.max(links.c.position), 0)).where(
            links.c.activity == activity, tenant_of(conn, links)
        )
    ).scalar_one()
    conn.execute(
        links.insert().values(
            activity=activity, brief=brief, position=position + 1, tenant_id=owner(conn)
        )
    )


def unlink(conn: Connection, activity: str, brief: str) -> None:
    links = activity_legal_bases
    linked = (links.c.activity == activity, links.c.brief == brief, tenant_of(conn, links))
    conn.execute(links.delete().where(*linked))
