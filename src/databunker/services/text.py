"""Text the vault keeps in clear: no control characters, on every database alike.

Encrypted values (profiles, app records, session data) keep whatever JSON allows. The few
values stored as plain text (the consent catalogue's texts, an agreement's reference code and
method, a request's reason, a shared record's partner and fields) refuse the C0 control
characters U+0000-U+001F and DEL: PostgreSQL cannot hold U+0000 in a text column at all, and
a value that one database would store and another refuse is refused by all, so every database
answers the same. Free text (descriptions, scripts, reasons) may hold tabs and line breaks.

Identities named in a URL (``/v1/user/email/{address}``) match nobody when they hold one;
a message that names what a caller sent (a JSON key) writes them as escapes.
"""

from __future__ import annotations

import re

from databunker.errors import BadRequest

_CONTROL = re.compile("[\x00-\x1f\x7f]")
# Free text keeps tab, line feed and carriage return.
_CONTROL_IN_FREE_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def has_control_characters(value: str) -> bool:
    """True when ``value`` holds a C0 control character or DEL (tab and newlines included)."""
    return _CONTROL.search(value) is not None


def escape_controls(value: str) -> str:
    """``value`` with each control character written as ``\\uXXXX``, fit to keep in clear."""
    return _CONTROL.sub(lambda found: f"\\u{ord(found.group()):04x}", value)


def clean_field(**named: str) -> str:
    """``clean_text`` of one value named by its keyword: ``clean_field(status=value)``."""
    [(field, value)] = named.items()
    return clean_text(field, value)


def clean_text(field: str, value: str, *, multiline: bool = False) -> str:
    """``value`` unchanged if it may be stored in clear, else 400 ``invalid character in
    <field>`` (``field`` is the wire name). ``multiline`` allows tab, CR and LF."""
    pattern = _CONTROL_IN_FREE_TEXT if multiline else _CONTROL
    if pattern.search(value) is not None:
        raise BadRequest(f"invalid character in {field}")
    return value
