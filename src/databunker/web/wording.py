"""Words a person reads instead of the API's: field labels, request kinds and statuses,
legal-basis types (the history's sentences are in ``history``).

Every text here is an English gettext message id (marked with ``N_`` for extraction); pages
translate it with the page's ``Speaker``. Nothing here holds personal data: a field label
comes from the schema or the field's name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

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
# The same types, and a basis's module and status, as the admin's catalogue names them.
ADMIN_BASIS_TYPES = {
    "consent": N_("Consent"),
    "contract": N_("Contract"),
    "legal-requirement": N_("Legal requirement"),
    "legal-obligation": N_("Legal obligation"),
    "legitimate-interest": N_("Legitimate interest"),
    "public-interest": N_("Public interest"),
    "vital-interest": N_("Vital interest"),
}
BASIS_MODULES = {
    "login": N_("Sign-in with a one-time code"),
    "signup-page": N_("Sign-up page"),
    "checkout-page": N_("Checkout page"),
    "cookie-popup": N_("Cookie banner"),
    "login-page": N_("Login page"),
    "other": N_("Other"),
}
BASIS_STATUSES = {
    "active": N_("Active"),
    "disabled": N_("Disabled"),
    "deleted": N_("Deleted"),
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


def label(speaker: Speaker, labels: dict[str, str], value: str) -> str:
    """A stored value by its label in ``labels``, translated; another value humanised."""
    known = labels.get(value)
    return speaker.gettext(known) if known else humanised(value)


def basis_type(speaker: Speaker, value: str) -> str:
    known = BASIS_TYPES.get(value or "consent")
    return speaker.gettext(known) if known else humanised(value)
