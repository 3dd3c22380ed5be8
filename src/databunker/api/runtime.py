"""The request pipeline: one transaction per request, with its audit event.

A handler reads the request, then hands an operation to ``perform``. In a worker thread,
inside one database transaction, the caller is authenticated, the route's access level is
enforced, the operation runs, and its audit event is written; then the transaction commits.
If anything fails the transaction rolls back, and the failed or denied attempt is still
written to the audit trail in a transaction of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from databunker.api.auth import TOKEN_HEADER, Access, enforce, principal_for
from databunker.api.responses import ok
from databunker.errors import DatabunkerError
from databunker.services.audit import save_event
from databunker.services.context import AuditEvent, Vault, Work

log = logging.getLogger("databunker.audit")

Payload = dict[str, Any] | Response
Operation = Callable[[Work], Payload]
Handler = Callable[[Request], Awaitable[Response]]


def vault_of(request: Request) -> Vault:
    vault: Vault = request.app.state.vault
    return vault


async def perform(
    request: Request, access: Access, operation: Operation, *, title: str | None = None
) -> Response:
    vault = vault_of(request)
    presented = request.headers.get(TOKEN_HEADER)
    queued: list[int] = []
    payload = await run_in_threadpool(
        run_unit_of_work, vault, presented, access, operation, title, queued
    )
    if queued:
        _wake_dispatcher(request)
    return payload if isinstance(payload, Response) else ok(payload)


def _wake_dispatcher(request: Request) -> None:
    # The request queued a webhook: let this process's dispatcher look at once. Only a
    # shortcut; the dispatcher finds every queued row in the database anyway.
    webhooks = getattr(request.app.state, "webhooks", None)
    if webhooks is not None:
        webhooks.wake()


def run_unit_of_work(
    vault: Vault,
    presented: str | None,
    access: Access,
    operation: Operation,
    title: str | None = None,
    queued: list[int] | None = None,
) -> Payload:
    """Run one operation in one transaction; ``queued`` receives the outbox rows committed."""
    now = vault.clock()
    audited = title is not None and not vault.settings.generic.disable_audit
    event = AuditEvent(title=title) if audited and title is not None else None
    try:
        with vault.database.transaction() as conn:
            principal = principal_for(conn, vault, presented, now)
            if event is not None:
                event.accessor = principal.accessor
            enforce(access, principal, vault)
            work = Work(vault, conn, principal, now, event)
            result = operation(work)
            if event is not None:
                save_event(conn, event, now)
        if queued is not None and work.queued:
            queued.append(work.queued)
        return result
    except DatabunkerError as exc:
        if event is not None:
            _save_failure(vault, event, now, exc.message)
        raise
    except Exception:
        if event is not None:
            _save_failure(vault, event, now, "internal error")
        raise


def _save_failure(vault: Vault, event: AuditEvent, now: int, message: str) -> None:
    event.status = "error"
    event.msg = message
    # The change did not happen: its values are not kept.
    event.before = event.after = None
    try:
        with vault.database.transaction() as conn:
            save_event(conn, event, now)
    except Exception as exc:  # the original failure is what the caller must see
        log.error("could not record a failed request", extra={"error_type": type(exc).__name__})


def path_route(path: str, handlers: dict[str, Handler]) -> Route:
    """One route for a path with a handler per method, so 405 answers list every method."""

    async def dispatch(request: Request) -> Response:
        return await handlers[request.method if request.method != "HEAD" else "GET"](request)

    return Route(path, dispatch, methods=list(handlers))
