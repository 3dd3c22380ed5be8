"""Periodic work: expiries and purges, run by every server instance.

Each job is one set-based statement (or a few) in its own transaction, so it is safe when
several instances run it at the same moment: a row changes state once, in whichever
transaction gets it first. Jobs take the clock from the vault, so tests move time instead of
waiting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool

from databunker.services.context import Principal, PrincipalKind, Vault, Work

log = logging.getLogger("databunker.jobs")

SYSTEM = Principal(PrincipalKind.ROOT, accessor="system")


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    # Does one round of the job and returns how many items it handled.
    run: Callable[[Work], int]


def registered_jobs() -> list[Job]:
    """Every periodic job of the server, in the order they run."""
    return []


def run_jobs(vault: Vault, jobs: Sequence[Job] | None = None) -> dict[str, int]:
    """One round of every job; a failing job is logged and does not stop the others."""
    handled: dict[str, int] = {}
    for job in registered_jobs() if jobs is None else jobs:
        try:
            with vault.database.transaction() as conn:
                handled[job.name] = job.run(Work(vault, conn, SYSTEM, vault.clock()))
        except Exception as exc:
            log.error("job failed", extra={"event": job.name, "error_type": type(exc).__name__})
    return handled


async def run_periodically(vault: Vault, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        await run_in_threadpool(run_jobs, vault)
