"""Words a person reads instead of the API's: field labels, request kinds and statuses,
legal-basis types, and the history told as sentences.

Every text here is an English gettext message id (marked with ``N_`` for extraction); pages
translate it with the page's ``Speaker``. Nothing here holds personal data: a field label
comes from the schema or the field's name, and history sentences name only the kind of
thing done and who did it.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from databunker.services.audit import AuditEntry
from databunker.services.legal import LegalBasis
from databunker.web.i18n import Speaker


def N_(message: str) -> str:  # noqa: N802 - the name gettext tools look for
    """Mark a message for the catalogue; it is translated where it is shown."""
    return message


def humanised(key: str) -> str:
    """A field's name as a label: ``first_name`` and ``firstName`` read "First name"."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", key)
    spaced = re.sub(r"[_\-.]+", " ", spaced).strip()
    if not spaced:
        return key
    return spaced[0].upper() + spaced[1:].lower()


# Fields most records have, named for people (a schema ``title`` wins over these).
COMMON_FIELDS = {
    "email": N_("Email address"),
    "phone": N_("Phone number"),
    "name": N_("Name"),
    "fname": N_("First name"),
    "lname": N_("Last name"),
    "first_name": N_("First name"),
    "last_name": N_("Last name"),
    "login": N_("Login name"),
    "address": N_("Address"),
    "street": N_("Street"),
    "city": N_("City"),
    "zip": N_("Postcode"),
    "postcode": N_("Postcode"),
    "country": N_("Country"),
    "birthday": N_("Date of birth"),
    "language": N_("Language"),
}


def field_label(speaker: Speaker, path: Sequence[str], titles: dict[tuple[str, ...], str]) -> str:
    """The label of the field at ``path``: its schema title, a common name, or its key."""
    title = titles.get(tuple(path))
    if title:
        return title
    key = path[-1] if path else ""
    common = COMMON_FIELDS.get(key.lower())
    return speaker.gettext(common) if common else humanised(key)


# Between the parts of a nested field's label ("Address > City"), as a guillemet.
PATH_SEPARATOR = " \u203a "


def path_label(
    speaker: Speaker, path: Sequence[str], titles: dict[tuple[str, ...], str] | None = None
) -> str:
    """The label of a nested field: each level's label, outermost first."""
    known = titles or {}
    return PATH_SEPARATOR.join(field_label(speaker, path[: n + 1], known) for n in range(len(path)))


REQUEST_KINDS = {
    "forget-me": N_("Erase all my data"),
    "change-profile": N_("Change to your profile"),
    "change-app-data": N_("Change to data an application keeps"),
    "agreement-withdraw": N_("Withdrawal of a consent"),
}
ADMIN_REQUEST_KINDS = {
    "forget-me": N_("Erase the person"),
    "change-profile": N_("Profile change"),
    "change-app-data": N_("Application data change"),
    "agreement-withdraw": N_("Consent withdrawal"),
}
REQUEST_STATUSES = {
    "open": N_("Waiting for approval"),
    "approved": N_("Approved"),
    "canceled": N_("Rejected or cancelled"),
}
BASIS_TYPES = {
    "consent": N_("Your consent"),
    "contract": N_("Needed for our contract with you"),
    "legal-requirement": N_("Required by law"),
    "legal-obligation": N_("Required by law"),
    "vital-interest": N_("To protect someone's life"),
    "public-interest": N_("A task in the public interest"),
    "legitimate-interest": N_("Our legitimate interest"),
}
# Bases a person cannot withdraw: they rest on something other than consent.
FIXED_BASIS_TYPES = frozenset({"contract", "legal-requirement", "legal-obligation"})
AGREEMENT_STATUSES = {
    "yes": N_("Given"),
    "no": N_("Withdrawn"),
    "revoked": N_("Ended"),
    "expired": N_("Expired"),
}


@dataclass(frozen=True, slots=True)
class BasisTexts:
    shortdesc: str
    fulldesc: str
    requiredmsg: str


# The seeded login bases' texts (``services.legal.SEEDED_BASES``), for the catalogues.
SEEDED_TEXTS = (
    N_("Send email on login"),
    N_("Send SMS on login"),
    N_("Confirm to allow sending access code using 3rd party email gateway"),
    N_("Confirm to allow sending access code using 3rd party SMS gateway"),
    N_("This consent is required to give you our service."),
)


def legal_texts(basis: LegalBasis, speaker: Speaker) -> BasisTexts:
    """A legal basis's texts in the page's language: those given for the language through
    the API's ``translations``, else the built-in bases' texts from the catalogues, else
    the texts as the administrator wrote them."""
    given = basis.translations.get(speaker.language, {})

    def text(name: str, original: str) -> str:
        translated = given.get(name)
        if translated:
            return translated
        return speaker.gettext(original) if original else ""

    return BasisTexts(
        shortdesc=text("shortdesc", basis.shortdesc),
        fulldesc=text("fulldesc", basis.fulldesc),
        requiredmsg=text("requiredmsg", basis.requiredmsg),
    )


def request_kind(speaker: Speaker, action: str, *, admin: bool = False) -> str:
    kinds = ADMIN_REQUEST_KINDS if admin else REQUEST_KINDS
    known = kinds.get(action)
    return speaker.gettext(known) if known else humanised(action)


def request_status(speaker: Speaker, status: str) -> str:
    known = REQUEST_STATUSES.get(status)
    return speaker.gettext(known) if known else humanised(status)


def basis_type(speaker: Speaker, value: str) -> str:
    known = BASIS_TYPES.get(value or "consent")
    return speaker.gettext(known) if known else humanised(value)


# --- history -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Deed:
    """What an audit title means: said of the person (``yours``), said of someone else
    (``theirs``, with ``%(who)s``), and, for a portal page read, that page's name."""

    yours: str
    theirs: str
    page: str | None = None


# By audit title; the first match wins. A title none matches is told as the last one.
_DEEDS: tuple[tuple[re.Pattern[str], Deed], ...] = tuple(
    (re.compile(pattern), deed)
    for pattern, deed in (
        (
            r"^get user record by ",
            Deed(N_("You viewed your profile."), N_("%(who)s read your profile."), N_("Profile")),
        ),
        (
            r"^get agreements? for ",
            Deed(
                N_("You viewed your consents."),
                N_("%(who)s read your consents."),
                N_("Consents"),
            ),
        ),
        (
            r"^get user app",
            Deed(
                N_("You viewed the data applications keep about you."),
                N_("%(who)s read data an application keeps about you."),
                N_("Apps"),
            ),
        ),
        (
            r"^get (all user )?sessions?",
            Deed(
                N_("You viewed your sessions."),
                N_("%(who)s read your sessions."),
                N_("Sessions"),
            ),
        ),
        (
            r"^get user (privacy )?requests?",
            Deed(
                N_("You viewed your requests."),
                N_("%(who)s read your requests."),
                N_("Requests"),
            ),
        ),
        (
            r"^view audit events?",
            Deed(N_("You viewed your history."), N_("%(who)s read your history."), N_("History")),
        ),
        (
            r"^export user data",
            Deed(N_("You downloaded a copy of your data."), N_("%(who)s exported your data.")),
        ),
        (
            r"^create user record",
            Deed(N_("Your profile was created."), N_("%(who)s created your profile.")),
        ),
        (
            r"^(change user record|user change-profile request)",
            Deed(N_("You changed your profile."), N_("%(who)s changed your profile.")),
        ),
        (
            r"^(delete user record|user forget-me request)",
            Deed(N_("You asked to erase your data."), N_("%(who)s erased your data.")),
        ),
        (
            r"^accept agreement",
            Deed(N_("You gave a consent."), N_("%(who)s recorded a consent.")),
        ),
        (
            r"^withdraw agreement",
            Deed(N_("You withdrew a consent."), N_("%(who)s withdrew a consent.")),
        ),
        (
            r"^approve user request",
            Deed(N_("Your request was approved."), N_("%(who)s approved one of your requests.")),
        ),
        (
            r"^cancel user request",
            Deed(
                N_("You cancelled one of your requests."),
                N_("%(who)s rejected one of your requests."),
            ),
        ),
        (
            r"^user (prelogin|login)",
            Deed(N_("You signed in with a one-time code."), N_("%(who)s signed you in.")),
        ),
        (r"^user logout", Deed(N_("You signed out."), N_("%(who)s signed you out."))),
        (r"", Deed(N_("You used your data."), N_("%(who)s used your data."))),
    )
)


def deed(title: str) -> Deed:
    for pattern, found in _DEEDS:
        if pattern.search(title):
            return found
    raise AssertionError("the last deed matches every title")  # pragma: no cover


def actor(speaker: Speaker, entry: AuditEntry) -> str | None:
    """Who acted, as a person reads it; None: the person themselves."""
    if entry.accessor == "root":
        if entry.app:
            return speaker.gettext("The application %(app)s") % {"app": entry.app}
        return speaker.gettext("Our service")
    return None


@dataclass(slots=True)
class HistoryLine:
    """One sentence of the history; a run of the person's own page reads is one line."""

    when: int
    first: int
    who: str | None
    deeds: list[Deed]
    failed: bool

    def sentence(self, speaker: Speaker) -> str:
        pages = [d.page for d in self.deeds if d.page is not None]
        if self.who is None and len(self.deeds) > 1 and len(pages) == len(self.deeds):
            names = [speaker.gettext(name) for name in pages]
            text = speaker.gettext("You viewed these pages: %(pages)s.") % {
                "pages": ", ".join(names)
            }
        elif self.who is None:
            text = speaker.gettext(self.deeds[0].yours)
        else:
            text = speaker.gettext(self.deeds[0].theirs) % {"who": self.who}
        if self.failed:
            text += " " + speaker.gettext("This did not succeed.")
        return text


@dataclass(slots=True)
class HistoryDay:
    day: str
    lines: list[HistoryLine] = field(default_factory=list)


def history(speaker: Speaker, entries: Iterable[AuditEntry]) -> list[HistoryDay]:
    """Events, newest first, as days of sentences; the person's own reads of the portal's
    pages that follow each other are one line."""
    days: list[HistoryDay] = []
    for entry in entries:
        moment = datetime.datetime.fromtimestamp(max(entry.when, 0), tz=datetime.UTC)
        label = speaker.day(moment.date())
        if not days or days[-1].day != label:
            days.append(HistoryDay(label))
        lines = days[-1].lines
        found = deed(entry.title)
        who = actor(speaker, entry)
        failed = entry.status != "ok"
        last = lines[-1] if lines else None
        if (
            who is None
            and found.page is not None
            and not failed
            and last is not None
            and last.who is None
            and not last.failed
            and all(d.page is not None for d in last.deeds)
        ):
            if found not in last.deeds:
                last.deeds.append(found)
            last.first = entry.when
            continue
        lines.append(HistoryLine(entry.when, entry.when, who, [found], failed))
    return days


def short_actor(entry: Any) -> str:
    """The actor for the admin's audit list: root, a person, a sign-in, or an application."""
    accessor = getattr(entry, "accessor", None)
    app = getattr(entry, "app", None)
    if accessor == "root":
        return f"root · {app}" if app else "root"
    if accessor is None:
        return N_("anonymous")
    return N_("the person")


# Domain errors the portals' pages meet most, for the catalogues (``pages.error_page`` and
# the admin's error page translate a domain message when the catalogue has it).
DOMAIN_MESSAGES = (
    N_("access denied"),
    N_("not found"),
    N_("too many requests"),
    N_("bad offset"),
    N_("user record not found"),
    N_("give a reason for rejecting the request"),
    N_("give the day as YYYY-MM-DD"),
)
