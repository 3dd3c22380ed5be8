"""How units of work run: one Protocol, one implementation per database, chosen once by
``Database`` when it is built.

* SQLite: ``GroupCommit`` (``storage/group_commit.py``): the units of one event-loop turn
  share a transaction, each under a savepoint.
* PostgreSQL, MariaDB, MySQL: ``ThreadedRunner``: each unit has a transaction of its own on
  a worker thread, no more at once than the connection pool holds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Protocol, TypeVar

import anyio
import anyio.to_thread
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from databunker.storage.tenancy import EVERY_TENANT

T = TypeVar("T")
Transaction = Callable[..., AbstractContextManager[Connection]]


class UnitRunner(Protocol):
    """Runs a unit of work: committed when it returns, rolled back (alone) if it raises."""

    def run(self, unit: Callable[[Connection], T]) -> T:
        """Run now on the calling thread (jobs, commands)."""
        ...

    def run_async(self, unit: Callable[[Connection], T]) -> Awaitable[T]:
        """Run for the event loop, which does not block meanwhile."""
        ...


class _CutBeforeCommit(Exception):
    """The unit's connection was found cut before its commit: nothing of it was kept."""


class ThreadedRunner:
    """A transaction per unit, on a worker thread (PostgreSQL, MariaDB, MySQL).

    A unit whose connection turns out to be cut (the server restarted, say) before its
    commit is run once more, on a fresh connection: nothing of the first run was kept, so
    the caller sees one unit. A cut during the commit is raised, since the commit's
    outcome is then unknown."""

    def __init__(self, transaction: Transaction, *, units_at_once: int) -> None:
        self._transaction = transaction
        self._units_at_once = units_at_once
        self._limiter: anyio.CapacityLimiter | None = None

    def run(self, unit: Callable[[Connection], T]) -> T:
        try:
            return self._run_once(unit, again_if_cut=True)
        except _CutBeforeCommit:
            return self._run_once(unit, again_if_cut=False)

    def _run_once(self, unit: Callable[[Connection], T], *, again_if_cut: bool) -> T:
        committing = False
        try:
            # A unit of work names its tenant, so that its transaction sets it once.
            with self._transaction(getattr(unit, "tenant", EVERY_TENANT)) as conn:
                result = unit(conn)
                committing = True
        except sa.exc.DBAPIError as exc:
            if again_if_cut and exc.connection_invalidated and not committing:
                raise _CutBeforeCommit from exc
            raise
        return result

    async def run_async(self, unit: Callable[[Connection], T]) -> T:
        if self._limiter is None:  # made on first use: it belongs to the running loop
            self._limiter = anyio.CapacityLimiter(self._units_at_once)
        return await anyio.to_thread.run_sync(self.run, unit, limiter=self._limiter)
