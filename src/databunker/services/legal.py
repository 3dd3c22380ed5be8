"""The consent catalogue: legal bases and processing activities, and the cookie banner's view.

Root manages both; neither is personal data. A legal basis in use by agreements is never
deleted: its agreements are revoked and it is marked ``deleted``, keeping the evidence.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.engine import Connection

from databunker.errors import BadRequest, Conflict, NotFound
from databunker.services.context import Work
from databunker.services.text import clean_text
from databunker.storage import agreements as agreement_repo
from databunker.storage import legal as repo
from databunker.storage.legal import ActivityRow, LegalBasisRow

BRIEF_PATTERN = re.compile(r"^[a-z][a-z0-9\-]{1,64}$")
COOKIE_MODULE = "cookie-popup"
# Texts that may run over several lines (the others are one line, like names).
FREE_TEXTS = frozenset({"shortdesc", "fulldesc", "requiredmsg", "script"})
ACTIVE, DISABLED, DELETED = "active", "disabled", "deleted"

SEEDED_BASES = tuple(
    LegalBasisRow(
        brief=f"core-send-{channel}-on-login",
        status=ACTIVE,
        module="login",
        shortdesc=f"Send {label} on login",
        fulldesc=f"Confirm to allow sending access code using 3rd party {label} gateway",
        basistype="consent",
        requiredmsg="This consent is required to give you our service.",
        usercontrol=True,
        requiredflag=True,
        created=0,
    )
    for channel, label in (("email", "email"), ("sms", "SMS"))
)


def parse_brief(value: str, message: str = "bad brief format") -> str:
    brief = value.lower()
    if not BRIEF_PATTERN.fullmatch(brief):
        raise BadRequest(message)
    return brief


def _flag(body: dict[str, Any], name: str, current: bool) -> bool:
    """A boolean field: a JSON boolean, or ``true``/``false`` text from a form."""
    if name not in body:
        return current
    value = body[name]
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise BadRequest(f"{name} must be true or false")


def _text(body: dict[str, Any], name: str, current: str) -> str:
    if name not in body or body[name] is None:
        return current
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BadRequest(f"{name} must be text")
    return clean_text(name, str(value), multiline=name in FREE_TEXTS)


def seed(conn: Connection, now: int) -> None:
    """The legal bases every installation starts with: consent to send login codes."""
    for basis in SEEDED_BASES:
        if repo.get_basis(conn, basis.brief) is None:
            repo.insert_basis(conn, LegalBasisRow(**{**_as_dict(basis), "created": now}))


def _as_dict(row: LegalBasisRow | ActivityRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in row.__slots__}


def basis_payload(row: LegalBasisRow) -> dict[str, Any]:
    return {
        "brief": row.brief,
        "status": row.status,
        "module": row.module,
        "shortdesc": row.shortdesc,
        "fulldesc": row.fulldesc,
        "basistype": row.basistype,
        "requiredmsg": row.requiredmsg,
        "usercontrol": row.usercontrol,
        "requiredflag": row.requiredflag,
        "creationtime": row.created,
    }


def save_basis(work: Work, brief: str, body: dict[str, Any]) -> dict[str, Any]:
    brief = parse_brief(brief)
    current = repo.get_basis(work.conn, brief, for_update=True)
    base = current or LegalBasisRow(brief, ACTIVE, "", "", "", "", "", False, False, work.now)
    new_brief = parse_brief(_text(body, "brief", brief)) if body.get("brief") else brief
    status = _text(body, "status", base.status)
    requiredflag = _flag(body, "requiredflag", base.requiredflag)
    requiredmsg = _text(body, "requiredmsg", base.requiredmsg)
    row = LegalBasisRow(
        brief=new_brief,
        status=DISABLED if status == DISABLED else ACTIVE,
        module=_text(body, "module", base.module),
        shortdesc=_text(body, "shortdesc", base.shortdesc),
        fulldesc=_text(body, "fulldesc", base.fulldesc),
        basistype=_text(body, "basistype", base.basistype),
        requiredmsg=requiredmsg if requiredflag else "",
        usercontrol=_flag(body, "usercontrol", base.usercontrol),
        requiredflag=requiredflag,
        created=base.created,
    )
    if new_brief != brief and repo.get_basis(work.conn, new_brief) is not None:
        raise Conflict("a legal basis with this brief exists already")
    if current is None:
        if new_brief != brief:
            raise NotFound("not found")
        repo.insert_basis(work.conn, row)
    else:
        repo.update_basis(work.conn, brief, row)
        if new_brief != brief:
            repo.rename_links(work.conn, brief, new_brief)
            agreement_repo.rename_brief(work.conn, brief, new_brief)
    return {"status": "ok"}


def delete_basis(work: Work, brief: str) -> dict[str, Any]:
    brief = parse_brief(brief)
    if repo.get_basis(work.conn, brief, for_update=True) is None:
        raise NotFound("not found")
    repo.unlink_brief_everywhere(work.conn, brief)
    if agreement_repo.count_for_brief(work.conn, brief) == 0:
        repo.delete_basis(work.conn, brief)
    else:
        agreement_repo.revoke_brief(work.conn, brief, work.now)
        repo.set_basis_status(work.conn, brief, DELETED)
    return {"status": "ok"}


def list_bases(work: Work) -> dict[str, Any]:
    rows = [basis_payload(row) for row in repo.list_bases(work.conn)]
    return {"status": "ok", "total": len(rows), "rows": rows}


def known_basis(work: Work, brief: str) -> LegalBasisRow | None:
    """Any legal basis, deleted ones included: their agreements remain readable evidence."""
    return repo.get_basis(work.conn, brief)


def usable_basis(work: Work, brief: str) -> LegalBasisRow:
    """The legal basis an agreement refers to; a deleted one is gone for new agreements."""
    basis = repo.get_basis(work.conn, brief)
    if basis is None or basis.status == DELETED:
        raise NotFound("not found")
    return basis


# -- processing activities -----------------------------------------------------------------
def parse_activity(value: str) -> str:
    return parse_brief(value, "bad activity format")


def save_activity(work: Work, activity: str, body: dict[str, Any]) -> dict[str, Any]:
    activity = parse_activity(activity)
    current = repo.get_activity(work.conn, activity)
    base = current or ActivityRow(activity, activity, "", "", "", work.now)
    new_name = (
        parse_activity(_text(body, "activity", activity)) if body.get("activity") else activity
    )
    row = ActivityRow(
        activity=new_name,
        title=_text(body, "title", base.title) or new_name,
        script=_text(body, "script", base.script),
        fulldesc=_text(body, "fulldesc", base.fulldesc),
        applicableto=_text(body, "applicableto", base.applicableto),
        created=base.created,
    )
    if new_name != activity and repo.get_activity(work.conn, new_name) is not None:
        raise Conflict("a processing activity with this name exists already")
    if current is None:
        repo.insert_activity(work.conn, row)
    else:
        repo.update_activity(work.conn, activity, row)
    return {"status": "ok"}


def delete_activity(work: Work, activity: str) -> dict[str, Any]:
    activity = parse_activity(activity)
    if repo.get_activity(work.conn, activity) is None:
        raise NotFound("not found")
    repo.delete_activity(work.conn, activity)
    return {"status": "ok"}


def link_activity(work: Work, activity: str, brief: str, *, linked: bool) -> dict[str, Any]:
    activity = parse_activity(activity)
    brief = parse_brief(brief)
    if repo.get_activity(work.conn, activity) is None:
        raise NotFound("not found")
    if linked:
        if repo.get_basis(work.conn, brief) is None:
            raise NotFound("not found")
        repo.link(work.conn, activity, brief)
    else:
        repo.unlink(work.conn, activity, brief)
    return {"status": "ok"}


def list_activities(work: Work) -> dict[str, Any]:
    links = repo.linked_briefs(work.conn)
    bases = {row.brief: row for row in repo.list_bases(work.conn)}
    rows = []
    for activity in repo.list_activities(work.conn):
        briefs = links.get(activity.activity, [])
        rows.append(
            {
                "activity": activity.activity,
                "title": activity.title,
                "script": activity.script,
                "fulldesc": activity.fulldesc,
                "legalbasis": ",".join(briefs),
                "applicableto": activity.applicableto,
                "creationtime": activity.created,
                "briefs": [basis_payload(bases[b]) for b in briefs if b in bases],
            }
        )
    return {"status": "ok", "total": len(rows), "rows": rows}


def cookie_settings(work: Work) -> dict[str, Any]:
    """What a cookie banner needs: the active cookie legal bases and their scripts."""
    bases = repo.list_bases(work.conn, status=ACTIVE, module=COOKIE_MODULE)
    cookie_briefs = {row.brief for row in bases}
    links = repo.linked_briefs(work.conn)
    scripts = []
    for activity in repo.list_activities(work.conn):
        briefs = [b for b in links.get(activity.activity, []) if b in cookie_briefs]
        if activity.script and briefs:
            scripts.append({"script": activity.script, "briefs": briefs})
    return {
        "status": "ok",
        "ui": work.settings.ui_configuration(),
        "rows": [basis_payload(row) for row in bases],
        "scripts": scripts,
    }
