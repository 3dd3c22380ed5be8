"""The v2 operation registry: what each ``POST /v2/<Operation>`` is.

An area module (``users``, ``appdata``, ...) exports ``OPERATIONS``, a tuple of
``V2Operation``; ``api/v2/__init__.py`` serves the operations of every module in its
``AREAS``. An operation names its request body's model (validated only once the caller is
authenticated, so a stranger learns nothing from a body's errors), the access level it
requires, and a handler that calls the domain and returns the answer's fields (the wire adds
``"status":"ok"``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from databunker.errors import NotFound
from databunker.services.context import Work
from databunker.units import Access

__all__ = [
    "CLIENT_ADDRESS",
    "USER_NOT_FOUND",
    "Access",
    "Handler",
    "Missing",
    "Payload",
    "V2Body",
    "V2Operation",
    "index_operations",
]

Payload = dict[str, Any]
# The body is the operation's own model; typed ``Any`` so handlers may name their model.
Handler = Callable[[Work, Any], Payload]
USER_NOT_FOUND = "The user record was not found"


class V2Body(BaseModel):
    """Base of request bodies: unknown fields are ignored, values are not coerced across
    types (a number is no string), digit strings are accepted for integers."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class Missing(NotFound):
    """A record the wire itself found missing, with v2's message for it."""

    def __init__(self, v2_message: str) -> None:
        super().__init__()
        self.v2_message = v2_message


@dataclass(frozen=True, slots=True)
class V2Operation:
    """One v2 operation.

    ``title`` is the audit event's title (``{mode}`` is filled with the body's ``mode``);
    the operation's name when None. ``not_found`` is the answer when the domain says "not
    found" without saying what.
    """

    name: str
    model: type[BaseModel]
    access: Access
    handler: Handler
    title: str | None = None
    not_found: str = USER_NOT_FOUND
    # A refusal commits what the attempt spent (a captcha, a rate-limit hit, a wrong code's
    # try) instead of rolling it back (``units.UnitOfWork``'s ``keep_spent``).
    keep_spent: bool = False
    # The body's model has a ``client_address`` field that the wire fills with the caller's
    # network address (never a value from the body), for rate limits per address.
    client_address: bool = False


CLIENT_ADDRESS = "client_address"


def index_operations(areas: Iterable[Iterable[V2Operation]]) -> Mapping[str, V2Operation]:
    """Every operation by name; a name served twice is a programming error."""
    index: dict[str, V2Operation] = {}
    for operations in areas:
        for operation in operations:
            if operation.name in index:
                raise ValueError(f"v2 operation {operation.name} is defined twice")
            index[operation.name] = operation
    return index
