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

from sqlalchemy.engine import Connection
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from databunker.api.auth import TOKEN_HEADER, Access, enforce, principal_for
from databunker.api.responses import ok
from databunker.errors import DatabunkerError
from databunker.services.audit import attribute_failure, save_event, save_event_apart
from databunker.services.context import AuditEvent, Vault, Work

log = logging.getLogger("databunker.audit")

Payload = dict[str, Any] | Response
Operation = Callable[[Work], Payload]
Handler = Callable[[Request], Awaitable[Response]]


def vault_of(request: Request) -> Vault:
    vault: Vault = request.app.state.vault
    return vault


async def perform(
    request: Request,
    access: Access,
    operation: Operation,
    *,
    title: str | None = None,
    subject: tuple[str, str] | None = None,
) -> Response:
    """Run ``operation`` as one unit of work. ``subject`` is the (mode, identity) the URL
    names: a failed or denied attempt is filed under that person's audit trail."""
    vault = vault_of(request)
    presented = request.headers.get(TOKEN_HEADER)
    unit = UnitOfWork(vault, presented, access, operation, title, subject=subject)
    payload = await unit.run_async()
    if unit.queued:
        _wake_dispatcher(request)
    return payload if isinstance(payload, Response) else ok(payload)


def keeping_what_was_spent(
    operation: Operation, answer: Callable[[DatabunkerError], Payload]
) -> Operation:
    """Turn a refusal into ``answer(refusal)`` inside the transaction, which then commits:
    what the attempt spent (a rate-limit hit, a wrong code's try) is kept, where raising
    would roll it back. The audit event records the refusal as an error."""

    def committed(work: Work) -> Payload:
        try:
            return operation(work)
        except DatabunkerError as exc:
            if work.event is not None:
                work.event.status = "error"
                work.event.msg = exc.message
            return answer(exc)

    return committed


def _wake_dispatcher(request: Request) -> None:
    # The request queued a webhook: let this process's dispatcher look at once. Only a
    # shortcut; the dispatcher finds every queued row in the database anyway.
    webhooks = getattr(request.app.state, "webhooks", None)
    if webhooks is not None:
        webhooks.wake()


class UnitOfWork:
    """One operation with its caller, access level and audit event, run in one transaction
    (``Database.run_async``); a failed attempt is audited afterwards in a unit of its own.

    ``admin_session`` says ``presented`` came from the admin portal's cookie (see
    ``services.access.authenticate``)."""

    def __init__(
        self,
        vault: Vault,
        presented: str | None,
        access: Access,
        operation: Operation,
        title: str | None,
        *,
        admin_session: bool = False,
        subject: tuple[str, str] | None = None,
    ) -> None:
        self.vault = vault
        self.subject = subject
        self.admin_session = admin_session
        self.presented = presented
        self.access = access
        self.operation = operation
        self.now = vault.clock()
        audited = title is not None and not vault.settings.generic.disable_audit
        self.event = AuditEvent(title=title) if audited and title is not None else None
        self.queued = 0

    def __call__(self, conn: Connection) -> Payload:
        vault, event = self.vault, self.event
        principal = principal_for(
            conn, vault, self.presented, self.now, admin_session=self.admin_session
        )
        if event is not None:
            event.accessor = principal.accessor
        enforce(self.access, principal, vault)
        work = Work(vault, conn, principal, self.now, event)
        result = self.operation(work)
        if event is not None:
            save_event(conn, event, self.now)
        self.queued = work.queued
        return result

    async def run_async(self) -> Payload:
        try:
            return await self.vault.database.run_async(self)
        except Exception as exc:
            await self.vault.database.run_async(self._failure(exc))
            raise

    def _failure(self, exc: Exception) -> Callable[[Connection], None]:
        """The unit that records this attempt as failed (a no-op when it is not audited)."""
        event, now = self.event, self.now
        if event is None:
            return lambda _conn: None
        event.status = "error"
        event.msg = exc.message if isinstance(exc, DatabunkerError) else "internal error"
        # The change did not happen: its values are not kept.
        event.before = event.after = None

        vault, subject = self.vault, self.subject

        def record(conn: Connection) -> None:
            try:
                if subject is not None:
                    attribute_failure(conn, vault, event, *subject)
            except Exception as error:  # filed without a person, then
                log.error(
                    "could not attribute a failed request",
                    extra={"error_type": type(error).__name__},
                )
            try:
                save_event_apart(conn, event, now)
            except Exception as error:  # the original failure is what the caller must see
                log.error(
                    "could not record a failed request",
                    extra={"error_type": type(error).__name__},
                )

        return record


def path_route(path: str, handlers: dict[str, Handler]) -> Route:
    """One route for a path with a handler per method, so 405 answers list every method."""

    async def dispatch(request: Request) -> Response:
        return await handlers[request.method if request.method != "HEAD" else "GET"](request)

    return Route(path, dispatch, methods=list(handlers))
