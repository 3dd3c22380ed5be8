"""Units of work: what every API route and portal page runs an operation through.

One unit is one transaction. Inside it, in this order: the presented credential becomes a
``Principal``, the access level the route or page declared is enforced, the operation runs,
and the audit event the operation noted (``Work.audit``) is written once. Then it commits,
and the outbox dispatcher is woken if the unit queued a notification.

If anything fails, the transaction rolls back and the failed or denied attempt is still
written to the audit trail, in a unit of its own, under the person the caller named. With
``keep_spent``, a refusal (a domain error) commits instead, so what the attempt spent (a
rate-limit hit, a wrong code's try, a captcha) stays spent; the refusal is raised after
the commit.

This module knows no wire format: each adapter (the v1 API, the portals) turns the
operation's typed result, or the raised domain error, into its own answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum
from typing import Generic, TypeVar

from sqlalchemy.engine import Connection

from databunker.errors import AccessDenied, DatabunkerError
from databunker.services.access import Credential, authenticate
from databunker.services.audit import (
    attribute_failure,
    save_event,
    save_event_apart,
    save_events,
)
from databunker.services.context import AuditEvent, Context, Principal, Work, fold_notes
from databunker.services.tenants import resolve as resolve_tenant
from databunker.storage import tenancy
from databunker.storage.tenancy import DEFAULT_TENANT

log = logging.getLogger("databunker.audit")

T = TypeVar("T")


class Access(Enum):
    """What a route or page requires of its caller, declared where it is defined."""

    PUBLIC = "public"
    ROOT = "root"
    # Root, or a user's token: the service then limits it to the owner's records.
    AUTHENTICATED = "authenticated"
    # Root, unless ``generic.create_user_without_access_token`` opens it to everyone.
    CREATE_USER = "create-user"


def enforce(access: Access, principal: Principal, context: Context) -> None:
    """The route-level access decision (record-level rules are in ``services.access``)."""
    if access is Access.PUBLIC:
        return
    if access is Access.CREATE_USER:
        if context.settings.generic.create_user_without_access_token or principal.is_root:
            return
        raise AccessDenied()
    if access is Access.ROOT and not principal.is_root:
        raise AccessDenied()
    if access is Access.AUTHENTICATED and not (principal.is_root or principal.is_user):
        raise AccessDenied()


@dataclass(frozen=True, slots=True)
class _Refused:
    error: DatabunkerError


class UnitOfWork(Generic[T]):
    """One operation with its caller, access level and audit event (see the module
    docstring). ``subject`` is the (mode, identity) the request names, under which a failed
    attempt is filed."""

    def __init__(
        self,
        context: Context,
        credential: Credential,
        access: Access,
        operation: Callable[[Work], T],
        *,
        title: str | None = None,
        subject: tuple[str, str] | None = None,
        keep_spent: bool = False,
        request_metadata: bytes | None = None,
        tenant: int = DEFAULT_TENANT,
        tenant_name: str | None = None,
        tenant_required: bool = True,
    ) -> None:
        self.context = context
        # The tenant the caller acts in; the runner reads it to set up the transaction.
        # A tenant named by the request (``tenant_name``) is resolved inside the unit.
        self.tenant = tenant
        self.tenant_name = tenant_name
        # A name that may name no tenant (a host's first label) leaves the default one.
        self.tenant_required = tenant_required
        self.request_metadata = request_metadata
        self.credential = credential
        self.access = access
        self.operation = operation
        self.subject = subject
        self.keep_spent = keep_spent
        self.now = context.clock()
        audited = title is not None and not context.settings.generic.disable_audit
        self._title = title if audited else None
        self._work: Work | None = None
        self._accessor: str | None = None
        self.queued = 0

    def _event(self) -> AuditEvent | None:
        if self._title is None:
            return None
        event = AuditEvent(
            title=self._title, accessor=self._accessor, request_metadata=self.request_metadata
        )
        if self._work is None:
            return event
        return fold_notes(event, self._work.audit.notes)

    def __call__(self, conn: Connection) -> T | _Refused:
        context = self.context
        tenancy.enter(conn, self.tenant)
        unknown_tenant = False
        if self.tenant_name is not None:
            resolved = resolve_tenant(conn, self.tenant_name)
            if resolved is None and self.tenant_required:
                # Nobody acts in a tenant that does not exist; the refusal is filed under
                # no person (the identity named is of no tenant here).
                unknown_tenant, self.subject = True, None
            elif resolved is not None:
                self.tenant = resolved
                tenancy.enter(conn, resolved)
        principal = authenticate(conn, context.keyring, self.credential, self.now, self.tenant)
        self._accessor = principal.accessor
        work = Work(
            context,
            conn,
            principal,
            self.now,
            audited=self._title is not None,
            tenant=self.tenant,
        )
        self._work = work
        enforce(self.access, principal, context)
        if unknown_tenant:
            raise AccessDenied()
        result: T | _Refused
        try:
            result = self.operation(work)
        except DatabunkerError as exc:
            if not self.keep_spent:
                raise
            work.audit.refused(exc.message)
            result = _Refused(exc)
        event = self._event()
        if event is not None:
            save_event(conn, event, self.now)
        if not context.settings.generic.disable_audit:
            extras = work.audit.extra_events
            if self.request_metadata is not None:
                extras = [
                    replace(extra, request_metadata=self.request_metadata)
                    if extra.request_metadata is None
                    else extra
                    for extra in extras
                ]
            save_events(conn, extras, self.now)
        self.queued = work.queued
        return result

    async def run_async(self) -> T:
        try:
            outcome = await self.context.database.run_async(self)
        except Exception as exc:
            await self.context.database.run_async(self._failure(exc))
            raise
        if isinstance(outcome, _Refused):
            raise outcome.error
        return outcome

    def _failure(self, exc: Exception) -> Callable[[Connection], None]:
        """The unit that records this attempt as failed (a no-op when it is not audited),
        in the tenant the caller acted in."""
        event, now, tenant = self._event(), self.now, self.tenant
        if event is None:
            return lambda _conn: None
        message = exc.message if isinstance(exc, DatabunkerError) else "internal error"
        # The change did not happen: its values are not kept.
        failed = replace(event, status="error", msg=message, before=None, after=None)
        context, subject = self.context, self.subject

        def record(conn: Connection) -> None:
            tenancy.enter(conn, tenant)
            filed = failed
            try:
                if subject is not None:
                    filed = attribute_failure(conn, context, failed, *subject)
            except Exception as error:  # filed without a person, then
                log.error(
                    "could not attribute a failed request",
                    extra={"error_type": type(error).__name__},
                )
            try:
                save_event_apart(conn, filed, now)
            except Exception as error:  # the original failure is what the caller must see
                log.error(
                    "could not record a failed request",
                    extra={"error_type": type(error).__name__},
                )

        record.tenant = tenant  # type: ignore[attr-defined]
        return record


async def run_unit(
    context: Context,
    credential: Credential,
    access: Access,
    operation: Callable[[Work], T],
    *,
    title: str | None = None,
    subject: tuple[str, str] | None = None,
    keep_spent: bool = False,
    wake: Callable[[], None] | None = None,
    request_metadata: bytes | None = None,
    tenant: int = DEFAULT_TENANT,
    tenant_name: str | None = None,
    tenant_required: bool = True,
) -> T:
    """Run ``operation`` as one unit of work; ``wake`` is called after commit if the unit
    queued a notification (it wakes this process's outbox dispatcher). ``request_metadata``
    (the caller's context, JSON) is kept with the unit's audit event, success or failure."""
    unit = UnitOfWork(
        context,
        credential,
        access,
        operation,
        title=title,
        subject=subject,
        keep_spent=keep_spent,
        request_metadata=request_metadata,
        tenant=tenant,
        tenant_name=tenant_name,
        tenant_required=tenant_required,
    )
    try:
        return await unit.run_async()
    finally:
        if unit.queued and wake is not None:
            wake()
