"""Builds the ASGI application from a Context: routes, error handlers, middleware, and the
``KeyKeeper`` that unseals, seals and refreshes the vault's keyring while it runs."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from databunker import web
from databunker.api import reference, v2
from databunker.api.middleware import EdgeMiddleware
from databunker.api.routing import IndexedRouter
from databunker.api.sealed import SEALED_MESSAGE, SealedGate
from databunker.api.v1 import (
    apps,
    audit,
    audit_head,
    consent,
    export,
    legal,
    login,
    openapi,
    requests,
    retention,
    seal,
    sessions,
    sharing,
    system,
    users,
)
from databunker.api.v1.errors import (
    on_decryption_error,
    on_domain_error,
    on_http_error,
    on_server_fault,
)
from databunker.api.v1.responses import error
from databunker.crypto import DecryptionError, KeyringSealed
from databunker.errors import DatabunkerError
from databunker.jobs import run_jobs
from databunker.key_keeper import KeyKeeper, fixed_unsealer
from databunker.metrics import Metrics
from databunker.notify.dispatcher import OutboxDispatcher
from databunker.services.context import Context
from databunker.tracing import Tracing
from databunker.unsealing import POLL_SECONDS, Unsealer

log = logging.getLogger("databunker.keys")


class Application:
    """The served ASGI app: the edge middleware around the Starlette router."""

    def __init__(
        self, vault: Context, *, owns_database: bool = False, unsealer: Unsealer | None = None
    ) -> None:
        self.vault = vault
        self.metrics = Metrics()
        self.keeper = KeyKeeper(vault, unsealer or fixed_unsealer(vault))

        @asynccontextmanager
        async def lifespan(_app: Starlette) -> AsyncIterator[None]:
            stopping = asyncio.Event()
            # Seen by a round of jobs on its thread: a delivery stops between requests.
            halting = threading.Event()
            jobs = asyncio.create_task(
                self._run_jobs(vault.settings.server.jobs_interval, stopping, halting)
            )
            keeping = asyncio.create_task(self._keep_keys(stopping))
            _settle_heap()
            try:
                yield
            finally:
                # Not cancels: a task's thread would run on after the pool and the process
                # are gone, and leave what it had claimed (a webhook's lease) unfinished.
                halting.set()
                stopping.set()
                await keeping
                await anyio.to_thread.run_sync(self.keeper.stop)
                await self._stop_webhooks()
                await jobs
                # The database pool belongs to whoever built the vault: here only when
                # the app was built with the vault, in a worker process.
                if owns_database:
                    vault.database.dispose()
                await anyio.to_thread.run_sync(self.tracing.shutdown)

        routes = [
            *system.routes,
            *seal.routes,
            *users.routes,
            *apps.routes,
            *sessions.routes,
            *sharing.routes,
            *retention.routes,
            *legal.routes,
            *consent.routes,
            *audit.routes,
            *audit_head.routes,
            *login.routes,
            *requests.routes,
            *export.routes,
            *openapi.routes,
            *reference.routes,
            *v2.routes,
            *web.routes,
        ]
        self.starlette = Starlette(
            exception_handlers={
                DatabunkerError: on_domain_error,
                DecryptionError: on_decryption_error,
                KeyringSealed: on_sealed,
                HTTPException: on_http_error,
                Exception: on_server_fault,
            },
            lifespan=lifespan,
        )
        self.starlette.router = IndexedRouter(routes=routes, lifespan=lifespan)
        self.starlette.state.vault = vault
        self.starlette.state.metrics = self.metrics
        # The running OutboxDispatcher (see the lifespan), woken after each commit.
        self.starlette.state.webhooks = None
        self.starlette.state.keeper = self.keeper
        gate = SealedGate(self.starlette, vault.keyring)
        tracing_settings = vault.settings.tracing
        self.tracing = (
            Tracing.otlp(tracing_settings.endpoint, tracing_settings.service_name)
            if tracing_settings.enabled
            else Tracing()
        )
        self._edge = EdgeMiddleware(gate, self.starlette.router, self.metrics, self.tracing)

    async def _run_jobs(
        self, interval: float, stopping: asyncio.Event, halting: threading.Event
    ) -> None:
        """Every ``interval`` seconds a round of the periodic jobs, skipped while sealed.
        Returns once ``stopping`` is set, after the round in progress has ended."""
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), interval)
            if stopping.is_set():
                return
            if not self.vault.keyring.sealed:
                await anyio.to_thread.run_sync(
                    functools.partial(run_jobs, self.vault, stop=halting)
                )

    async def _keep_keys(self, stopping: asyncio.Event) -> None:
        """Follow the unsealer and the stored keyring; run the outbox dispatcher only while
        unsealed (it needs the outbox key). Returns once ``stopping`` is set, never with a
        check still running on a thread."""
        while not stopping.is_set():
            if self.vault.keyring.sealed:
                await self._stop_webhooks()
            elif self.starlette.state.webhooks is None:
                webhooks = OutboxDispatcher.for_deployment(self.vault)
                if webhooks is not None:
                    webhooks.start()
                self.starlette.state.webhooks = webhooks
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), POLL_SECONDS)
            if stopping.is_set():
                return
            try:
                await anyio.to_thread.run_sync(self.keeper.sync)
                await anyio.to_thread.run_sync(self.keeper.refresh)
            except Exception as exc:  # the database or the agent went away: try again
                log.error("keyring check failed", extra={"error_type": type(exc).__name__})

    async def _stop_webhooks(self) -> None:
        webhooks = self.starlette.state.webhooks
        self.starlette.state.webhooks = None
        if webhooks is not None:
            await webhooks.stop()

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


async def on_sealed(_request: Any, _exc: Exception) -> Response:
    # Sealed while the request ran: the same answer the gate gives.
    return error(503, SEALED_MESSAGE)


def build_app(
    vault: Context, *, owns_database: bool = False, unsealer: Unsealer | None = None
) -> Application:
    return Application(vault, owns_database=owns_database, unsealer=unsealer)
