"""Running service operations directly, as one unit of work each, the way an adapter does."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from databunker.services.access import Credential
from databunker.services.context import Context, Work
from databunker.units import Access, UnitOfWork
from support.vaults import ROOT_TOKEN

T = TypeVar("T")


def perform(
    vault: Context,
    operation: Callable[[Work], T],
    *,
    token: str | None = ROOT_TOKEN,
    access: Access = Access.AUTHENTICATED,
    title: str | None = "test operation",
) -> T:
    """Run ``operation`` in one unit of work with ``token`` as the credential, on this
    thread (a test's API clients may be serving from their own event loop meanwhile)."""
    unit = UnitOfWork(vault, Credential(token), access, operation, title=title)
    return vault.database.run(unit)  # type: ignore[return-value]
