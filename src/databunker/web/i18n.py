"""The portals' languages: which one a page speaks, its translations, dates and numbers.

A page speaks the language chosen, in this order, by ``?lang=`` (the switcher's links), the
``databunker_lang`` cookie (set when ``?lang=`` is used) and the browser's
``Accept-Language``; English otherwise. Catalogues are gettext ``.po`` files under
``web/locale/<lang>/LC_MESSAGES/messages.po``, shipped as package data and compiled in
memory when first used, so neither an editable install nor a wheel needs a build step.
A message missing from a catalogue shows in English.
"""

from __future__ import annotations

import datetime
import functools
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations
from jinja2 import pass_context
from jinja2.runtime import Context as TemplateContext
from starlette.requests import Request
from starlette.responses import Response

LOCALE_DIR = Path(__file__).parent / "locale"
DEFAULT = "en"
# Each language named in itself, as the switcher shows it.
LANGUAGES: dict[str, str] = {
    "en": "English",
    "de": "Deutsch",
    "fr": "Français",
    "es": "Español",
    "it": "Italiano",
}
COOKIE = "databunker_lang"
COOKIE_SECONDS = 365 * 24 * 3600


@functools.cache
def translations(language: str) -> NullTranslations:
    """The compiled catalogue of ``language`` (English: the messages as written)."""
    source = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    if language == DEFAULT or not source.is_file():
        return NullTranslations()
    with source.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


def _accepted(header: str) -> list[str]:
    """The languages of an ``Accept-Language`` header, most wanted first."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            ranked.append((-quality, position, tag.strip().lower()))
    return [tag for _q, _p, tag in sorted(ranked)]


def choose(request: Request) -> str:
    """The language this request's page speaks (see the module docstring)."""
    asked = request.query_params.get("lang", "").lower()
    if asked in LANGUAGES:
        return asked
    kept = request.cookies.get(COOKIE, "").lower()
    if kept in LANGUAGES:
        return kept
    for tag in _accepted(request.headers.get("accept-language", "")):
        primary = tag.split("-")[0]
        if primary in LANGUAGES:
            return primary
    return DEFAULT


def remember(request: Request, response: Response) -> None:
    """Keep a language picked with ``?lang=`` in a cookie for the next pages."""
    asked = request.query_params.get("lang", "").lower()
    if asked in LANGUAGES and request.cookies.get(COOKIE) != asked:
        response.set_cookie(
            COOKIE,
            asked,
            max_age=COOKIE_SECONDS,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
            path="/",
        )


@dataclass(frozen=True, slots=True)
class Speaker:
    """One language's words, dates and numbers, for a page or a message built in Python."""

    language: str

    @property
    def _catalogue(self) -> NullTranslations:
        return translations(self.language)

    def gettext(self, message: str) -> str:
        return self._catalogue.gettext(message)

    def ngettext(self, singular: str, plural: str, count: int) -> str:
        return self._catalogue.ngettext(singular, plural, count)

    def moment(self, value: Any) -> str:
        """A Unix time as the language writes a date and time (in UTC, and says so)."""
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            return ""
        at = datetime.datetime.fromtimestamp(value, tz=datetime.UTC)
        shown = format_datetime(at, "medium", tzinfo=datetime.UTC, locale=self.language)
        return shown.replace("\u202f", " ") + " UTC"

    def day(self, value: datetime.date) -> str:
        return format_date(value, "full", locale=self.language)

    def number(self, value: int | float) -> str:
        return format_decimal(value, locale=self.language)

    def language_name(self, code: str) -> str:
        return Locale.parse(code).get_display_name(self.language) or code


def speaker(request: Request) -> Speaker:
    return Speaker(choose(request))


# Template callables: the page's ``speaker`` travels in the template context.


def _speaker_of(context: TemplateContext) -> Speaker:
    found = context.get("speaker")
    return found if isinstance(found, Speaker) else Speaker(DEFAULT)


@pass_context
def template_gettext(context: TemplateContext, message: str) -> str:
    return _speaker_of(context).gettext(message)


@pass_context
def template_ngettext(context: TemplateContext, singular: str, plural: str, count: int) -> str:
    return _speaker_of(context).ngettext(singular, plural, count)


@pass_context
def template_moment(context: TemplateContext, value: Any) -> str:
    return _speaker_of(context).moment(value)


@pass_context
def template_number(context: TemplateContext, value: int | float) -> str:
    return _speaker_of(context).number(value)
