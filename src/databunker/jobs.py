"""Periodic work: expiries and purges, run by every server instance.

Each job is one set-based statement (or a few) in its own transaction, so it is safe when
several instances run it at the same moment: a row changes state once, in whichever
transaction gets it first. Jobs take the clock from the vault, so tests move time instead of
waiting.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from databunker.notify import dispatcher
from databunker.services import (
    admin_sessions,
    agreements,
    audit,
    captcha,
    login,
    outbox,
    retention,
    sessions,
    sharing,
    unlock,
)
from databunker.services.context import Context, Principal, PrincipalKind, Work

log = logging.getLogger("databunker.jobs")

SYSTEM = Principal(PrincipalKind.ROOT, accessor="system")


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    # Does one round of the job and returns how many items it handled.
    run: Callable[[Work], int]


@dataclass(frozen=True, slots=True)
class NetworkJob:
    """A job that waits on the network (webhook delivery): it must not hold a transaction,
    and so a database lock, meanwhile, and opens its own short ones."""

    name: str
    # Does one round with the vault, the clock reading and the stop signal (checked between
    # network calls); returns how many items it handled.
    run: Callable[[Context, int, threading.Event | None], int]


def registered_jobs() -> list[Job | NetworkJob]:
    """Every periodic job of the server, in the order they run."""
    return [
        Job("purge expired shared records", sharing.purge_expired_shared_records),
        Job("expire users", retention.expire_due_users),
        Job("purge expired sessions", sessions.purge_expired_sessions),
        Job("expire agreements", agreements.expire_agreements),
        Job("purge old audit events", audit.purge_old_events),
        Job("purge delivered webhooks", outbox.purge_delivered),
        Job("purge expired captchas", captcha.purge_expired_captchas),
        Job("purge expired login codes", login.purge_expired_login_codes),
        Job("purge stale rate limits", login.purge_stale_rate_limits),
        Job("purge expired user tokens", login.purge_expired_user_tokens),
        Job("purge expired admin sessions", admin_sessions.purge_expired_sessions),
        Job("purge expired unlock ids", unlock.purge_expired_unlocks),
        # Last, so that webhooks queued by the jobs above go out in the same round.
        NetworkJob("deliver webhooks", _deliver_notifications),
    ]


def _deliver_notifications(vault: Context, now: int, stop: threading.Event | None) -> int:
    return dispatcher.deliver_due(vault, now, stop=stop)


def run_jobs(
    vault: Context,
    jobs: Sequence[Job | NetworkJob] | None = None,
    *,
    stop: threading.Event | None = None,
) -> dict[str, int]:
    """One round of every job; a failing job is logged and does not stop the others.

    Once ``stop`` is set, no further job starts, and a delivery in progress ends after the
    request in flight, giving back the rows it had leased but not attempted.
    """
    handled: dict[str, int] = {}
    for job in registered_jobs() if jobs is None else jobs:
        if stop is not None and stop.is_set():
            break
        try:
            if isinstance(job, NetworkJob):
                handled[job.name] = job.run(vault, vault.clock(), stop)
                continue
            with vault.database.transaction() as conn:
                handled[job.name] = job.run(Work(vault, conn, SYSTEM, vault.clock()))
        except Exception as exc:
            log.error("job failed", extra={"event": job.name, "error_type": type(exc).__name__})
    return handled
