"""Typed results the services share: the adapters (the v1 API, the portals) turn them into
their own answers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list, and how many items the whole list holds."""

    total: int
    rows: Sequence[T]


@dataclass(frozen=True, slots=True)
class RequestOpened:
    """A change that waits for an administrator's approval instead of being applied:
    ``rtoken`` names the request; ``existed`` says an open one for the same thing was
    already queued (and no new one was created)."""

    rtoken: str
    existed: bool = False
