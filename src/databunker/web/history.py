"""The audit trail in words: the person's history told as sentences by day, and the names
the admin's lists give events.

An audit title is the API's record of what was done ("get user record by token"); a ``Deed``
says what it means. Every text is an English gettext message id (marked with ``N_``),
translated where it is shown. Nothing here holds personal data: sentences name only the kind
of thing done and who did it.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from databunker.services.audit import AuditEntry, TitleKind
from databunker.web.i18n import Speaker
from databunker.web.wording import N_


@dataclass(frozen=True, slots=True)
class Deed:
    """What an audit title means: said of the person (``yours``), said of someone else
    (``theirs``, with ``%(who)s``), as the admin's audit lists name it (``event``), and,
    for a portal page read, that page's name."""

    yours: str
    theirs: str
    event: str | None
    page: str | None = None


# By audit title; the first match wins. A title none matches is told as the last one (the
# admin's lists show such a title as it was recorded).
_YOU_USED = N_("You used your data.")
_THEY_USED = N_("%(who)s used your data.")
_DEEDS: tuple[tuple[re.Pattern[str], Deed], ...] = tuple(
    (re.compile(pattern), deed)
    for pattern, deed in (
        (
            r"^get user record by ",
            Deed(
                N_("You viewed your profile."),
                N_("%(who)s read your profile."),
                N_("Profile read"),
                N_("Profile"),
            ),
        ),
        (
            r"^get agreements? for ",
            Deed(
                N_("You viewed your consents."),
                N_("%(who)s read your consents."),
                N_("Consents read"),
                N_("Consents"),
            ),
        ),
        (
            r"^get user app",
            Deed(
                N_("You viewed the data applications keep about you."),
                N_("%(who)s read data an application keeps about you."),
                N_("Application data read"),
                N_("Apps"),
            ),
        ),
        (
            r"^get (all user )?sessions?",
            Deed(
                N_("You viewed your sessions."),
                N_("%(who)s read your sessions."),
                N_("Sessions read"),
                N_("Sessions"),
            ),
        ),
        (
            r"^get user (privacy )?requests?",
            Deed(
                N_("You viewed your requests."),
                N_("%(who)s read your requests."),
                N_("Requests read"),
                N_("Requests"),
            ),
        ),
        (
            r"^view audit events?",
            Deed(
                N_("You viewed your history."),
                N_("%(who)s read your history."),
                N_("History read"),
                N_("History"),
            ),
        ),
        (
            r"^export user data",
            Deed(
                N_("You downloaded a copy of your data."),
                N_("%(who)s exported your data."),
                N_("Data exported"),
            ),
        ),
        (
            r"^create user record",
            Deed(
                N_("Your profile was created."),
                N_("%(who)s created your profile."),
                N_("Profile created"),
            ),
        ),
        (
            r"^(change user record|user change-profile request)",
            Deed(
                N_("You changed your profile."),
                N_("%(who)s changed your profile."),
                N_("Profile changed or change asked for"),
            ),
        ),
        (
            r"^(delete user record|user forget-me request)",
            Deed(
                N_("You asked to erase your data."),
                N_("%(who)s erased your data."),
                N_("Erasure done or asked for"),
            ),
        ),
        (
            r"^(create|change) user app record",
            Deed(
                N_("You changed data an application keeps about you."),
                N_("%(who)s changed data an application keeps about you."),
                N_("Application data changed"),
            ),
        ),
        (
            r"^delete user app record",
            Deed(
                N_("Data an application kept about you was deleted."),
                N_("%(who)s deleted data an application kept about you."),
                N_("Application data deleted"),
            ),
        ),
        (
            r"^create session",
            Deed(
                N_("A session of yours was recorded."),
                N_("%(who)s recorded a session of yours."),
                N_("Session recorded"),
            ),
        ),
        (
            r"^delete session",
            Deed(
                N_("A session of yours was deleted."),
                N_("%(who)s deleted a session of yours."),
                N_("Session deleted"),
            ),
        ),
        (
            r"^create shareable record",
            Deed(
                N_("Some of your data was shared."),
                N_("%(who)s shared some of your data."),
                N_("Data shared"),
            ),
        ),
        (
            r"^accept agreement",
            Deed(
                N_("You gave a consent."),
                N_("%(who)s recorded a consent."),
                N_("Consent given"),
            ),
        ),
        (
            r"^withdraw agreement",
            Deed(
                N_("You withdrew a consent."),
                N_("%(who)s withdrew a consent."),
                N_("Consent withdrawn"),
            ),
        ),
        (
            r"^approve user request",
            Deed(
                N_("Your request was approved."),
                N_("%(who)s approved one of your requests."),
                N_("Request approved"),
            ),
        ),
        (
            r"^cancel user request",
            Deed(
                N_("You cancelled one of your requests."),
                N_("%(who)s rejected one of your requests."),
                N_("Request rejected or cancelled"),
            ),
        ),
        (
            r"^user (prelogin|login)",
            Deed(
                N_("You signed in with a one-time code."),
                N_("%(who)s signed you in."),
                N_("Sign-in with a one-time code"),
            ),
        ),
        (
            r"^user logout",
            Deed(N_("You signed out."), N_("%(who)s signed you out."), N_("Sign-out")),
        ),
        # Events about no one person: only the admin's lists show them.
        (r"^admin sign in", Deed(_YOU_USED, _THEY_USED, N_("Administrator signed in"))),
        (r"^admin sign out", Deed(_YOU_USED, _THEY_USED, N_("Administrator signed out"))),
        (r"^list user records", Deed(_YOU_USED, _THEY_USED, N_("People listed"))),
        (r"^seal vault", Deed(_YOU_USED, _THEY_USED, N_("Vault sealed"))),
        (r"^rotate keys", Deed(_YOU_USED, _THEY_USED, N_("Keys rotated"))),
        (r"", Deed(_YOU_USED, _THEY_USED, None)),
    )
)


def deed(title: str) -> Deed:
    for pattern, found in _DEEDS:
        if pattern.search(title):
            return found
    raise AssertionError("the last deed matches every title")  # pragma: no cover


def _beginnings(pattern: str) -> list[str]:
    """The title beginnings a deed's pattern stands for: its patterns are ``^`` and text,
    with ``(a|b)`` alternatives, ``(a )?`` optional groups and ``s?`` optional letters."""
    found = [""]
    rest = pattern.removeprefix("^")
    while rest:
        if rest.startswith("("):
            group, rest = rest[1:].split(")", 1)
            options = group.split("|")
        else:
            options, rest = [rest[0]], rest[1:]
        if rest.startswith("?"):
            options, rest = [*options, ""], rest[1:]
        found = [start + option for start in found for option in options]
    return found


def kinds_named(speaker: Speaker, words: str) -> tuple[TitleKind, ...]:
    """The kinds of event whose name in the admin's lists (in the page's language, or in
    English) contains ``words``, as the titles they stand for: a title is named by the
    first deed it matches, so the beginnings of the deeds before are left out."""
    wanted = words.strip().lower()
    if not wanted:
        return ()
    kinds: list[TitleKind] = []
    earlier: list[str] = []
    for compiled, found in _DEEDS:
        beginnings = _beginnings(compiled.pattern)
        phrase = found.event
        if phrase is not None and (
            wanted in phrase.lower() or wanted in speaker.gettext(phrase).lower()
        ):
            kinds.append(TitleKind(tuple(beginnings), tuple(earlier)))
        earlier += beginnings
    return tuple(kinds)


def event_phrase(speaker: Speaker, title: str) -> str:
    """An audit title as the admin's lists name it: what was done, in the page's language;
    a title no deed names, as it was recorded."""
    phrase = deed(title).event
    return speaker.gettext(phrase) if phrase is not None else title


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


def _folds_into(last: HistoryLine, who: str | None, found: Deed, failed: bool) -> bool:
    """Whether an event continues ``last``: both are the person's own page reads."""
    return (
        who is None
        and found.page is not None
        and not failed
        and last.who is None
        and not last.failed
        and all(d.page is not None for d in last.deeds)
    )


def history_lines(
    speaker: Speaker, entries: Iterable[AuditEntry]
) -> Iterator[tuple[str, HistoryLine]]:
    """Events, newest first, as the lines a person reads, each with its day; the person's
    own reads of the portal's pages that follow each other on a day are one line."""
    day, date, current = "", None, None
    for entry in entries:
        moment = datetime.datetime.fromtimestamp(max(entry.when, 0), tz=datetime.UTC)
        same_day = moment.date() == date
        found = deed(entry.title)
        who = actor(speaker, entry)
        failed = entry.status != "ok"
        if current is not None and same_day and _folds_into(current, who, found, failed):
            if found not in current.deeds:
                current.deeds.append(found)
            current.first = entry.when
            continue
        if current is not None:
            yield day, current
        if not same_day:
            date = moment.date()
            day = speaker.day(date)
        current = HistoryLine(entry.when, entry.when, who, [found], failed)
    if current is not None:
        yield day, current


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """Lines ``offset`` to ``offset + size`` of a history, by day, and how many lines the
    whole history has: a pager counts what the person reads, not the events behind it."""

    days: list[HistoryDay]
    total: int
    shown: int


def history_page(
    speaker: Speaker, entries: Iterable[AuditEntry], offset: int, size: int
) -> HistoryPage:
    days: list[HistoryDay] = []
    total = shown = 0
    for day, line in history_lines(speaker, entries):
        if offset <= total < offset + size:
            if not days or days[-1].day != day:
                days.append(HistoryDay(day))
            days[-1].lines.append(line)
            shown += 1
        total += 1
    return HistoryPage(days, total, shown)


def short_actor(entry: Any) -> str:
    """The actor for the admin's audit list: root, a person, a sign-in, or an application."""
    accessor = getattr(entry, "accessor", None)
    app = getattr(entry, "app", None)
    if accessor == "root":
        return f"root · {app}" if app else "root"
    if accessor is None:
        return N_("anonymous")
    return N_("the person")
