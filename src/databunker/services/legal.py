"""The consent catalogue: legal bases and processing activities, and the cookie banner's view.

Root manages both; neither is personal data. A legal basis in use by agreements is never
deleted: its agreements are revoked and it is marked ``deleted``, keeping the evidence.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields
from dataclasses import field as dataclass_field
from typing import Any

from sqlalchemy.engine import Connection

from databunker.errors import BadRequest, Conflict, NotFound
from databunker.services.context import Work
from databunker.services.documents import JSONObject
from databunker.services.results import Page
from databunker.services.text import clean_text
from databunker.storage import agreements as agreement_rows
from databunker.storage import legal as catalogue_rows
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


@dataclass(frozen=True, slots=True)
class LegalBasis:
    """One legal basis of the catalogue, as root and the person's portal see it."""

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
    # The texts in other languages, by language code (only the texts given for it).
    translations: dict[str, dict[str, str]] = dataclass_field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProcessingActivity:
    """A processing activity and the legal bases it is linked to (``linked_briefs`` in link
    order; ``bases`` those of them that still exist)."""

    activity: str
    title: str
    script: str
    fulldesc: str
    applicableto: str
    created: int
    linked_briefs: tuple[str, ...]
    bases: tuple[LegalBasis, ...]


@dataclass(frozen=True, slots=True)
class CookieScript:
    """A processing activity's script, and the cookie legal bases that allow it."""

    script: str
    briefs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CookieSettings:
    """What a cookie banner needs: the UI settings, the active cookie legal bases and the
    scripts they allow."""

    ui: JSONObject
    bases: tuple[LegalBasis, ...]
    scripts: tuple[CookieScript, ...]


def _check_texts(change: BasisChange | ActivityChange) -> None:
    """Every text a change brings is kept in clear: none may hold a control character
    (the free texts may hold tabs and line breaks). Errors name the field."""
    for field in fields(change):
        value = getattr(change, field.name)
        if isinstance(value, str):
            clean_text(field.name, value, multiline=field.name in FREE_TEXTS)


@dataclass(frozen=True, slots=True)
class BasisChange:
    """What saving a legal basis sets; ``None`` keeps the current value (a new basis's
    default). ``brief`` renames the basis."""

    brief: str | None = None
    status: str | None = None
    requiredflag: bool | None = None
    requiredmsg: str | None = None
    module: str | None = None
    shortdesc: str | None = None
    fulldesc: str | None = None
    basistype: str | None = None
    usercontrol: bool | None = None
    # Replaces the texts in other languages ({} removes them); None keeps them.
    translations: dict[str, dict[str, str]] | None = None

    def __post_init__(self) -> None:
        _check_texts(self)
        if self.translations is not None:
            check_translations(self.translations)


LANGUAGE_TAG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
TRANSLATED_TEXTS = ("shortdesc", "fulldesc", "requiredmsg")


def check_translations(value: Any) -> dict[str, dict[str, str]]:
    """Per-language texts of a legal basis: an object of language tags (``de``, ``pt-BR``),
    each an object of some of ``shortdesc``, ``fulldesc`` and ``requiredmsg`` as text."""
    if not isinstance(value, dict):
        raise BadRequest("translations must be an object of languages")
    for language, texts in value.items():
        if not isinstance(language, str) or not LANGUAGE_TAG.fullmatch(language):
            raise BadRequest("translations: a language must be a tag such as de or pt-BR")
        if not isinstance(texts, dict):
            raise BadRequest(f"translations.{language} must be an object")
        for name, text in texts.items():
            if name not in TRANSLATED_TEXTS:
                raise BadRequest(f"translations.{language}: unknown field {name[:40]}")
            if not isinstance(text, str):
                raise BadRequest(f"translations.{language}.{name} must be text")
            clean_text(f"translations.{language}.{name}", text, multiline=True)
    return value


def _stored_translations(text: str) -> dict[str, dict[str, str]]:
    if not text:
        return {}
    found = json.loads(text)
    return found if isinstance(found, dict) else {}


@dataclass(frozen=True, slots=True)
class ActivityChange:
    """What saving a processing activity sets; ``None`` keeps the current value.
    ``activity`` renames it."""

    activity: str | None = None
    title: str | None = None
    script: str | None = None
    fulldesc: str | None = None
    applicableto: str | None = None

    def __post_init__(self) -> None:
        _check_texts(self)


def _kept(value: str | bool | None, current: Any) -> Any:
    return current if value is None else value


def parse_brief(value: str, message: str = "bad brief format") -> str:
    brief = value.lower()
    if not BRIEF_PATTERN.fullmatch(brief):
        raise BadRequest(message)
    return brief


def _check_existing(found: bool, wanted: bool | None, taken: str) -> None:
    if wanted is True and not found:
        raise NotFound("not found")
    if wanted is False and found:
        raise Conflict(taken)


def seed(conn: Connection, now: int) -> None:
    """The legal bases every installation starts with: consent to send login codes."""
    for basis in SEEDED_BASES:
        if catalogue_rows.get_basis(conn, basis.brief) is None:
            catalogue_rows.insert_basis(conn, LegalBasisRow(**{**_as_dict(basis), "created": now}))


def _as_dict(row: LegalBasisRow | ActivityRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in row.__slots__}


def _basis(row: LegalBasisRow) -> LegalBasis:
    return LegalBasis(
        brief=row.brief,
        status=row.status,
        module=row.module,
        shortdesc=row.shortdesc,
        fulldesc=row.fulldesc,
        basistype=row.basistype,
        requiredmsg=row.requiredmsg,
        usercontrol=row.usercontrol,
        requiredflag=row.requiredflag,
        created=row.created,
        translations=_stored_translations(row.translations),
    )


def save_basis(
    work: Work, brief: str, change: BasisChange, *, existing: bool | None = None
) -> None:
    """Create or change a legal basis; ``existing`` True only changes one (404 if there is
    none), False only creates one (409 if the brief is taken), None does either (v1)."""
    brief = parse_brief(brief)
    current = catalogue_rows.get_basis(work.conn, brief, for_update=True)
    _check_existing(current is not None, existing, "a legal basis with this brief exists already")
    base = current or LegalBasisRow(brief, ACTIVE, "", "", "", "", "", False, False, work.now)
    new_brief = parse_brief(change.brief) if change.brief else brief
    requiredflag: bool = _kept(change.requiredflag, base.requiredflag)
    row = LegalBasisRow(
        brief=new_brief,
        status=DISABLED if _kept(change.status, base.status) == DISABLED else ACTIVE,
        module=_kept(change.module, base.module),
        shortdesc=_kept(change.shortdesc, base.shortdesc),
        fulldesc=_kept(change.fulldesc, base.fulldesc),
        basistype=_kept(change.basistype, base.basistype),
        requiredmsg=_kept(change.requiredmsg, base.requiredmsg) if requiredflag else "",
        usercontrol=_kept(change.usercontrol, base.usercontrol),
        requiredflag=requiredflag,
        created=base.created,
        translations=(
            base.translations
            if change.translations is None
            else json.dumps(change.translations, ensure_ascii=False, sort_keys=True)
            if change.translations
            else ""
        ),
    )
    if new_brief != brief and catalogue_rows.get_basis(work.conn, new_brief) is not None:
        raise Conflict("a legal basis with this brief exists already")
    if current is None:
        if new_brief != brief:
            raise NotFound("not found")
        catalogue_rows.insert_basis(work.conn, row)
    else:
        catalogue_rows.update_basis(work.conn, brief, row)
        if new_brief != brief:
            catalogue_rows.rename_links(work.conn, brief, new_brief)
            agreement_rows.rename_brief(work.conn, brief, new_brief)


def delete_basis(work: Work, brief: str) -> None:
    brief = parse_brief(brief)
    if catalogue_rows.get_basis(work.conn, brief, for_update=True) is None:
        raise NotFound("not found")
    catalogue_rows.unlink_brief_everywhere(work.conn, brief)
    if agreement_rows.count_for_brief(work.conn, brief) == 0:
        catalogue_rows.delete_basis(work.conn, brief)
    else:
        agreement_rows.revoke_brief(work.conn, brief, work.now)
        catalogue_rows.set_basis_status(work.conn, brief, DELETED)


def list_bases(work: Work) -> Page[LegalBasis]:
    rows = [_basis(row) for row in catalogue_rows.list_bases(work.conn)]
    return Page(total=len(rows), rows=rows)


def known_basis(work: Work, brief: str) -> LegalBasisRow | None:
    """Any legal basis, deleted ones included: their agreements remain readable evidence."""
    return catalogue_rows.get_basis(work.conn, brief)


def usable_basis(work: Work, brief: str) -> LegalBasisRow:
    """The legal basis an agreement refers to; a deleted one is gone for new agreements."""
    basis = catalogue_rows.get_basis(work.conn, brief)
    if basis is None or basis.status == DELETED:
        raise NotFound("not found")
    return basis


# -- processing activities -----------------------------------------------------------------
def parse_activity(value: str) -> str:
    return parse_brief(value, "bad activity format")


def save_activity(
    work: Work, activity: str, change: ActivityChange, *, existing: bool | None = None
) -> None:
    """Create or change a processing activity; ``existing`` as for ``save_basis``."""
    activity = parse_activity(activity)
    current = catalogue_rows.get_activity(work.conn, activity)
    _check_existing(
        current is not None, existing, "a processing activity with this name exists already"
    )
    base = current or ActivityRow(activity, activity, "", "", "", work.now)
    new_name = parse_activity(change.activity) if change.activity else activity
    row = ActivityRow(
        activity=new_name,
        title=_kept(change.title, base.title) or new_name,
        script=_kept(change.script, base.script),
        fulldesc=_kept(change.fulldesc, base.fulldesc),
        applicableto=_kept(change.applicableto, base.applicableto),
        created=base.created,
    )
    if new_name != activity and catalogue_rows.get_activity(work.conn, new_name) is not None:
        raise Conflict("a processing activity with this name exists already")
    if current is None:
        catalogue_rows.insert_activity(work.conn, row)
    else:
        catalogue_rows.update_activity(work.conn, activity, row)


def delete_activity(work: Work, activity: str) -> None:
    activity = parse_activity(activity)
    if catalogue_rows.get_activity(work.conn, activity) is None:
        raise NotFound("not found")
    catalogue_rows.delete_activity(work.conn, activity)


def link_activity(work: Work, activity: str, brief: str, *, linked: bool) -> None:
    activity = parse_activity(activity)
    brief = parse_brief(brief)
    if catalogue_rows.get_activity(work.conn, activity) is None:
        raise NotFound("not found")
    if linked:
        if catalogue_rows.get_basis(work.conn, brief) is None:
            raise NotFound("not found")
        catalogue_rows.link(work.conn, activity, brief)
    else:
        catalogue_rows.unlink(work.conn, activity, brief)


def list_activities(work: Work) -> Page[ProcessingActivity]:
    links = catalogue_rows.linked_briefs(work.conn)
    bases = {row.brief: _basis(row) for row in catalogue_rows.list_bases(work.conn)}
    rows = []
    for activity in catalogue_rows.list_activities(work.conn):
        briefs = tuple(links.get(activity.activity, []))
        rows.append(
            ProcessingActivity(
                activity=activity.activity,
                title=activity.title,
                script=activity.script,
                fulldesc=activity.fulldesc,
                applicableto=activity.applicableto,
                created=activity.created,
                linked_briefs=briefs,
                bases=tuple(bases[b] for b in briefs if b in bases),
            )
        )
    return Page(total=len(rows), rows=rows)


def cookie_settings(work: Work) -> CookieSettings:
    """What a cookie banner needs: the active cookie legal bases and their scripts."""
    bases = catalogue_rows.list_bases(work.conn, status=ACTIVE, module=COOKIE_MODULE)
    cookie_briefs = {row.brief for row in bases}
    links = catalogue_rows.linked_briefs(work.conn)
    scripts = []
    for activity in catalogue_rows.list_activities(work.conn):
        briefs = tuple(b for b in links.get(activity.activity, []) if b in cookie_briefs)
        if activity.script and briefs:
            scripts.append(CookieScript(activity.script, briefs))
    return CookieSettings(
        ui=work.settings.ui_configuration(),
        bases=tuple(_basis(row) for row in bases),
        scripts=tuple(scripts),
    )
