"""The admin's audit filter by an action's name finds exactly the titles the lists name so.

``kinds_named`` turns a deed's pattern into title beginnings for the database; here the
same test is made in Python for titles built from every deed's beginnings, and compared
with what ``deed`` (the lists' naming) says of each title.
"""

from __future__ import annotations

from databunker.services.audit import TitleKind
from databunker.web import history
from databunker.web.i18n import Speaker

ENGLISH = Speaker("en")


def kept(kind: TitleKind, title: str) -> bool:
    return title.startswith(kind.prefixes) and not title.startswith(kind.except_prefixes)


def test_a_name_finds_exactly_the_titles_shown_under_it() -> None:
    titles = sorted(
        {
            f"{beginning}{ending}"
            for pattern, _ in history._DEEDS
            for beginning in history._beginnings(pattern.pattern)
            for ending in ("", " token", "s for email", " by login")
        }
        | {"something else entirely", "get user records list"}
    )
    names = {found.event for _, found in history._DEEDS if found.event is not None}
    assert len(names) > 20
    for name in names:
        kinds = history.kinds_named(ENGLISH, name)
        for title in titles:
            shown = history.deed(title).event == name
            assert any(kept(kind, title) for kind in kinds) == shown, (name, title)


def test_every_beginning_is_one_its_pattern_matches() -> None:
    for pattern, _ in history._DEEDS:
        for beginning in history._beginnings(pattern.pattern):
            assert pattern.match(beginning), (pattern.pattern, beginning)
