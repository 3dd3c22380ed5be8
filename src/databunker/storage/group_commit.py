"""Group commit for SQLite: the units of work of one process share write transactions.

SQLite has one writer at a time, and every request writes (its audit row at least). Running
each request in a transaction of its own spends most of its time in ``BEGIN IMMEDIATE`` and
``COMMIT`` and in threads taking turns at the write lock. Here one thread runs the units of
work instead: it takes every unit waiting, runs each under a savepoint of one transaction and
commits them together.

What each caller sees does not change:

* a unit that raises is rolled back to its savepoint, alone, and its caller gets the error;
* a caller's result is handed over only after the transaction holding it is committed, so
  an answer never reports a change that could still be lost;
* if the commit itself fails, every caller of that batch gets the error (nothing of it stands);
* units run one after another, so each sees the effects of the units before it, as if each
  had its own transaction.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from sqlalchemy.engine import Connection

from databunker.storage.prepared import driver_sql

log = logging.getLogger("databunker.storage")

T = TypeVar("T")
Unit = Callable[[Connection], Any]
# Called once with (result, None) or (None, error), after the unit's batch ended.
Deliver = Callable[[Any, BaseException | None], None]
Transaction = Callable[[], AbstractContextManager[Connection]]

# Enough to amortise a commit; small enough that a batch's first caller does not wait long.
MAX_BATCH = 64
_STOP = object()


class GroupCommit:
    """A thread that runs submitted units of work in shared transactions."""

    def __init__(self, transaction: Transaction, *, max_batch: int = MAX_BATCH) -> None:
        self._transaction = transaction
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._started = threading.Lock()

    def submit(self, unit: Callable[[Connection], T]) -> Future[T]:
        """Queue ``unit``; the future resolves once its batch is committed."""
        future: Future[T] = Future()
        future.set_running_or_notify_cancel()
        self._put(unit, _resolver(future))
        return future

    def submit_async(self, unit: Callable[[Connection], T]) -> asyncio.Future[T]:
        """``submit`` for the running event loop (no thread waits for the result)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def deliver(value: Any, error: BaseException | None) -> None:
            loop.call_soon_threadsafe(_settle, future, value, error)

        self._put(unit, deliver)
        return future

    def run(self, unit: Callable[[Connection], T]) -> T:
        if threading.current_thread() is self._thread:
            raise RuntimeError("a unit of work cannot wait for another one")
        return self.submit(unit).result()

    def _put(self, unit: Unit, deliver: Deliver) -> None:
        self._ensure_thread()
        self._queue.put((unit, deliver))

    def stop(self) -> None:
        with self._started:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join()

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._started:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name="databunker-group-commit", daemon=True
                )
                self._thread.start()

    def _serve(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first, *self._waiting()]
            stop = _STOP in batch
            self._run_batch([item for item in batch if item is not _STOP])
            if stop:
                return

    def _waiting(self) -> Iterator[Any]:
        for _ in range(self._max_batch - 1):
            try:
                yield self._queue.get_nowait()
            except queue.Empty:
                return

    def _run_batch(self, batch: list[tuple[Unit, Deliver]]) -> None:
        outcomes: list[tuple[Deliver, Any, BaseException | None]] = []
        try:
            with self._transaction() as conn:
                for unit, deliver in batch:
                    # On the driver: SQLAlchemy's own savepoints cost more than most units.
                    driver_sql(conn, "SAVEPOINT unit")
                    try:
                        value = unit(conn)
                    except Exception as exc:  # the unit's own failure: its caller gets it
                        driver_sql(conn, "ROLLBACK TO SAVEPOINT unit")
                        driver_sql(conn, "RELEASE SAVEPOINT unit")
                        outcomes.append((deliver, None, exc))
                    else:
                        driver_sql(conn, "RELEASE SAVEPOINT unit")
                        outcomes.append((deliver, value, None))
        except Exception as exc:  # BEGIN or COMMIT failed: no unit of the batch stands
            log.error("a group commit failed", extra={"error_type": type(exc).__name__})
            for _unit, deliver in batch:
                deliver(None, exc)
            return
        for deliver, value, error in outcomes:
            deliver(value, error)


def _resolver(future: Future[Any]) -> Deliver:
    def deliver(value: Any, error: BaseException | None) -> None:
        if error is None:
            future.set_result(value)
        else:
            future.set_exception(error)

    return deliver


def _settle(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is None:
        future.set_result(value)
    else:
        future.set_exception(error)
