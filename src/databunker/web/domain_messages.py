"""The domain's error messages in the page's language.

A ``DatabunkerError`` carries an English message that is safe to show (no personal data, no
secrets) and is part of the API's wire format, so the domain keeps it as it is. A page shows
it translated: a message is either one of ``MESSAGES`` as raised, or fits one of ``SHAPES``,
a message with a variable part (a field's name, a status, the schema's own words) that is
shown as raised inside the translated sentence. A message neither knows is shown in English.

``tests/unit/test_domain_messages.py`` reads every message the domain can raise and
fails while one of them is neither here nor in every catalogue.
"""

from __future__ import annotations

import re

from databunker.web.i18n import Speaker
from databunker.web.wording import N_

MESSAGES = frozenset(
    {
        # errors.py's defaults
        N_("access denied"),
        N_("not found"),
        N_("request body too large"),
        N_("too many requests"),
        # people and their records
        N_("user record not found"),
        N_("failed to create user, all user lookup fields are missing"),
        N_("the record was changed at the same time; try again"),
        N_("invalid email"),
        N_("invalid phone"),
        N_("invalid login"),
        N_("duplicate index"),
        N_("duplicate index: email"),
        N_("duplicate index: phone"),
        N_("duplicate index: login"),
        N_("duplicate index: custom"),
        N_("bad mode"),
        N_("bad uuid"),
        N_("bad status"),
        N_("bad expiration"),
        N_("failed to apply JSON patch"),
        N_("bad JSON patch"),
        N_("failed to decode request body"),
        N_("the patched record must stay a JSON object"),
        # signing in
        N_("invalid code"),
        N_("only a user token can log out"),
        # requests
        N_("reason must be text"),
        N_("wrong status: approved"),
        N_("wrong status: canceled"),
        N_("the request holds no change"),
        # legal bases, processing activities, agreements
        N_("bad brief format"),
        N_("incorrect brief format"),
        N_("bad activity format"),
        N_("a legal basis with this brief exists already"),
        N_("a processing activity with this name exists already"),
        N_("translations must be an object of languages"),
        N_("translations: a language must be a tag such as de or pt-BR"),
        # applications, sharing, retention, unlocking
        N_("bad appname"),
        N_("app not found"),
        N_("unknown app name"),
        N_("too many fields"),
        N_("this app record can be deleted only by an administrator"),
        N_("the session does not belong to this user"),
        N_("a retention started by an administrator can only be cancelled by an administrator"),
        N_("The unlockuuid value was not found or is not valid"),
        # tenants (the v2 API's)
        N_("only the main tenant admin can create tenants"),
        N_("only the main tenant admin can list tenants"),
        N_("only the main tenant admin can delete tenants"),
        N_("only the main tenant admin can read another tenant"),
        N_("only the main tenant admin can change another tenant"),
        N_("the tenantorg parameter is too long"),
        N_("duplicate tenant name"),
        N_("tenant record not found"),
        N_("the default tenant keeps its name"),
        N_("the default tenant cannot be deleted"),
        # the portals' own
        N_("bad offset"),
        N_("give a reason for rejecting the request"),
        N_("give the day as YYYY-MM-DD"),
    }
)

# Messages with a variable part, by the shape the domain raises them in; the first that fits
# wins, so a narrower shape comes before a wider one.
SHAPES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.DOTALL), message)
    for pattern, message in (
        (r"invalid character in (?P<field>.+)", N_("invalid character in %(field)s")),
        (
            r"schema validation error: User schema check error\. "
            r"Locked value changed: (?P<field>.*)",
            N_("schema validation error: User schema check error. Locked value changed: %(field)s"),
        ),
        (r"schema validation error: (?P<problem>.*)", N_("schema validation error: %(problem)s")),
        (r"user schema error: (?P<problem>.*)", N_("user schema error: %(problem)s")),
        (
            r"translations\.(?P<language>[^.:]+)\.(?P<field>\w+) must be text",
            N_("translations.%(language)s.%(field)s must be text"),
        ),
        (
            r"translations\.(?P<language>[^.:]+): unknown field (?P<field>.*)",
            N_("translations.%(language)s: unknown field %(field)s"),
        ),
        (
            r"translations\.(?P<language>[^.:]+) must be an object",
            N_("translations.%(language)s must be an object"),
        ),
        (
            r"The (?P<field>.+) parameter has an incorrect format",
            N_("The %(field)s parameter has an incorrect format"),
        ),
        (r"duplicate index: (?P<field>.+)", N_("duplicate index: %(field)s")),
        (r"wrong status: (?P<status>.*)", N_("wrong status: %(status)s")),
        (r"(?P<field>\S+) must be text", N_("%(field)s must be text")),
        (r"invalid (?P<field>\S+)", N_("invalid %(field)s")),
        (r"bad (?P<field>\S+)", N_("bad %(field)s")),
    )
)


def shown(speaker: Speaker, message: str) -> str:
    """A domain error's message as the page's language says it (see the module docstring)."""
    if message in MESSAGES:
        return speaker.gettext(message)
    for pattern, shape in SHAPES:
        found = pattern.fullmatch(message)
        if found is not None:
            return speaker.gettext(shape) % found.groupdict()
    return message
