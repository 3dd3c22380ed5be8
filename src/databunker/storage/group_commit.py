"""Group commit for SQLite: the units of work of one event-loop turn share a transaction.

SQLite has one writer at a time, and every request writes (its audit row at least). Giving
each request a transaction of its own spends most of its time in ``BEGIN IMMEDIATE`` and
``COMMIT``, and handing the work to threads adds their turns at the GIL and the write lock.
Here the event loop runs the units itself: the units submitted while it handles one turn of
network events are run together, each under a savepoint of one transaction, then committed.
A unit is a short run of Python and SQLite calls (no network), so the loop is busy with it
no longer than with any other request work. The loop never waits for the writer lock: if
another thread (a job) or process holds it, the batch is handed to one worker thread, which
waits for the lock instead; the units of the turns that follow join that waiting batch, so
a busy lock makes batches larger rather than spawning a transaction per turn. Their callers
are answered back on the loop.

What each caller sees does not change:

* a unit that raises is rolled back to its savepoint, alone, and its caller gets the error;
* a caller's result is handed over only after the transaction holding it is committed, so
  an answer never reports a change that could still be lost;
* if the commit itself fails, every caller of that batch gets the error (nothing of it stands);
* units run one after another, so each sees the effects of the units before it, as if each
  had its own transaction.

Callers outside the event loop (periodic jobs, commands) run their unit at once, in a
transaction of their own, on their own thread.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

from sqlalchemy.engine import Connection

from databunker.storage.prepared import savepoint

log = logging.getLogger("databunker.storage")

T = TypeVar("T")
Unit = Callable[[Connection], Any]
# Called once with (result, None) or (None, error), after the unit's transaction ended.
Deliver = Callable[[Any, BaseException | None], None]
Transaction = Callable[[], AbstractContextManager[Connection]]
Outcome = tuple[Deliver, Any, BaseException | None]


class Lock(Protocol):
    """The writer lock the transaction takes (``storage.database.WriterLock``)."""

    def try_acquire(self) -> bool: ...

    def release(self) -> None: ...

    def __enter__(self) -> None: ...

    def __exit__(self, *_exc: object) -> None: ...


class GroupCommit:
    """Runs units of work in shared transactions (see the module docstring)."""

    def __init__(self, transaction: Transaction, writer: Lock) -> None:
        self._transaction = transaction
        self._writer = writer
        # Units waiting for the next flush, per event loop (each loop flushes its own).
        self._pending: dict[asyncio.AbstractEventLoop, list[tuple[Unit, Deliver]]] = {}
        # Per loop, the batch a worker thread is waiting to run once it has the writer lock;
        # the loop adds to it until the thread takes it (under ``_handoff``).
        self._waiting: dict[asyncio.AbstractEventLoop, list[tuple[Unit, Deliver]]] = {}
        self._handoff = threading.Lock()
        self._running = threading.local()

    def run_async(self, unit: Callable[[Connection], T]) -> asyncio.Future[T]:
        """Queue ``unit`` for this turn's batch; the future resolves once it is committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def deliver(value: Any, error: BaseException | None) -> None:
            if future.cancelled():
                return
            if error is None:
                future.set_result(value)
            else:
                future.set_exception(error)

        waiting = self._pending.get(loop)
        if waiting is None:
            waiting = self._pending[loop] = []
            loop.call_soon(self._flush, loop)
        # The unit runs in its caller's context (the request id its log lines carry).
        context = contextvars.copy_context()

        def in_context(conn: Connection) -> T:
            return context.run(unit, conn)

        waiting.append((in_context, deliver))
        return future

    def run(self, unit: Callable[[Connection], T]) -> T:
        """Run ``unit`` now, in a transaction of its own, on the calling thread."""
        outcome: list[Any] = []
        batch: list[tuple[Unit, Deliver]] = [
            (unit, lambda value, error: outcome.extend((value, error)))
        ]
        _deliver(self._run_batch(batch))
        value, error = outcome
        if error is not None:
            raise error
        result: T = value
        return result

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        batch = self._pending.pop(loop, [])
        if not batch:
            return
        with self._handoff:
            waiting = self._waiting.get(loop)
            if waiting is not None:  # a thread waits for the lock: join its batch
                waiting.extend(batch)
                return
        if self._writer.try_acquire():
            try:
                outcomes = self._run_batch(batch)
            finally:
                self._writer.release()
            _deliver(outcomes)
            return
        # The writer lock is taken (a job's thread, another process): wait for it on a
        # worker thread, not on the loop, and answer the callers back on the loop.
        with self._handoff:
            self._waiting[loop] = batch

        def in_thread() -> None:
            taken: list[tuple[Unit, Deliver]] | None = None
            outcomes: list[Outcome] | None = None
            try:
                with self._writer:
                    taken = self._take_waiting(loop)
                    outcomes = self._run_batch(taken)
            except Exception as exc:
                if outcomes is None:  # nothing of the batch was committed: say so to each
                    log.error(
                        "a batch waiting for the writer lock failed",
                        extra={"error_type": type(exc).__name__},
                    )
                    if taken is None:
                        taken = self._take_waiting(loop)
                    outcomes = [(deliver, None, exc) for _unit, deliver in taken]
            loop.call_soon_threadsafe(_deliver, outcomes)

        loop.run_in_executor(None, in_thread)

    def _take_waiting(self, loop: asyncio.AbstractEventLoop) -> list[tuple[Unit, Deliver]]:
        """The batch waiting for the lock (``[]`` once taken): later turns start their own."""
        with self._handoff:
            return self._waiting.pop(loop, [])

    def _run_batch(self, batch: list[tuple[Unit, Deliver]]) -> list[Outcome]:
        """Run the batch in one transaction; what each caller is to be told."""
        if getattr(self._running, "batch", False):
            raise RuntimeError("a unit of work cannot wait for another one")
        outcomes: list[Outcome] = []
        self._running.batch = True
        try:
            with self._transaction() as conn:
                for unit, deliver in batch:
                    try:
                        with savepoint(conn):
                            value = unit(conn)
                    except Exception as exc:  # the unit's own failure: its caller gets it
                        outcomes.append((deliver, None, exc))
                    else:
                        outcomes.append((deliver, value, None))
        except Exception as exc:  # BEGIN or COMMIT failed: no unit of the batch stands
            log.error("a group commit failed", extra={"error_type": type(exc).__name__})
            return [(deliver, None, exc) for _unit, deliver in batch]
        finally:
            self._running.batch = False
        return outcomes


def _deliver(outcomes: list[Outcome]) -> None:
    for deliver, value, error in outcomes:
        deliver(value, error)
