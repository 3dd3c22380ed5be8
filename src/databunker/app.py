"""Builds the ASGI application from a Vault: routes, error handlers, middleware."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.types import Message, Receive, Scope, Send

from databunker import web
from databunker.api import (
    apps,
    audit,
    audit_head,
    consent,
    export,
    login,
    requests,
    retention,
    sessions,
    sharing,
    system,
    users,
)
from databunker.api.errors import (
    on_decryption_error,
    on_domain_error,
    on_http_error,
    on_server_fault,
)
from databunker.api.middleware import EdgeMiddleware
from databunker.api.responses import error
from databunker.crypto import DecryptionError
from databunker.errors import DatabunkerError
from databunker.jobs import run_periodically
from databunker.metrics import Metrics
from databunker.notify.webhooks import WebhookDispatcher
from databunker.services.context import Vault


class Application:
    """The served ASGI app: the edge middleware around the Starlette router."""

    def __init__(self, vault: Vault, *, owns_database: bool = False) -> None:
        self.vault = vault
        self.metrics = Metrics()

        @asynccontextmanager
        async def lifespan(_app: Starlette) -> AsyncIterator[None]:
            jobs = asyncio.create_task(run_periodically(vault, vault.settings.server.jobs_interval))
            webhooks = WebhookDispatcher.for_vault(vault)
            if webhooks is not None:
                webhooks.start()
            self.starlette.state.webhooks = webhooks
            _settle_heap()
            try:
                yield
            finally:
                self.starlette.state.webhooks = None
                if webhooks is not None:
                    await webhooks.stop()
                # A round already running finishes first: its thread is not abandoned.
                jobs.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await jobs
                # The database pool belongs to whoever built the vault: here only when
                # the app was built with the vault, in a worker process.
                if owns_database:
                    vault.database.dispose()

        self.starlette = Starlette(
            routes=[
                *system.routes,
                *users.routes,
                *apps.routes,
                *sessions.routes,
                *sharing.routes,
                *retention.routes,
                *consent.routes,
                *audit.routes,
                *audit_head.routes,
                *login.routes,
                *requests.routes,
                *export.routes,
                *web.routes,
            ],
            exception_handlers={
                DatabunkerError: on_domain_error,
                DecryptionError: on_decryption_error,
                HTTPException: on_http_error,
                Exception: on_server_fault,
            },
            lifespan=lifespan,
        )
        self.starlette.router.redirect_slashes = False
        self.starlette.state.vault = vault
        self.starlette.state.metrics = self.metrics
        # The running WebhookDispatcher (see the lifespan), woken after each commit.
        self.starlette.state.webhooks = None
        self._edge = EdgeMiddleware(self.starlette, self.starlette.router, self.metrics)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self._edge(scope, receive, tracking_send)
        except Exception:
            if scope["type"] != "http":
                raise
            # Already logged by the error handler, without values; not re-raised to the
            # server, whose traceback could carry them.
            if not started:
                await error(500, "internal error")(scope, receive, send)


def _settle_heap() -> None:
    """Leave what start-up built (modules, tables, settings: some 100,000 objects) out of
    the garbage collector's full passes, which otherwise walk all of it every second or
    so under load and stall every request for tens of milliseconds."""
    gc.collect()
    gc.freeze()


def build_app(vault: Vault, *, owns_database: bool = False) -> Application:
    return Application(vault, owns_database=owns_database)
