"""Builds the ASGI application from a Vault: routes, error handlers, middleware, and the
``KeyKeeper`` that unseals, seals and refreshes the vault's keyring while it runs."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from databunker import web
from databunker.api import (
    apps,
    audit,
    consent,
    export,
    login,
    requests,
    retention,
    seal,
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
from databunker.api.sealed import SEALED_MESSAGE, SealedGate
from databunker.crypto import DecryptionError, Keyring, KeyringSealed, MasterKey
from databunker.errors import DatabunkerError
from databunker.jobs import run_jobs
from databunker.metrics import Metrics
from databunker.notify.webhooks import WebhookDispatcher
from databunker.services import keys
from databunker.services.context import Vault
from databunker.unsealing import POLL_SECONDS, LocalUnsealer, SealStatus, Unsealer

log = logging.getLogger("databunker.keys")


class KeyKeeper:
    """Keeps the vault's keyring in step with its unsealer and the database: loads it when
    the unsealer has the master key (a share given here or to another worker), forgets it
    when sealed, reloads it when another process rotated, and runs a rotation on request."""

    def __init__(self, vault: Vault, unsealer: Unsealer) -> None:
        self.vault = vault
        self.unsealer = unsealer
        self.watcher = keys.KeyringWatcher(vault.database, vault.keyring)
        self._lock = threading.Lock()
        self._rotation: threading.Thread | None = None
        self._stopping = threading.Event()
        self._refreshed = 0.0

    @property
    def keyring(self) -> Keyring:
        return self.vault.keyring

    def _unseal_with(self, master: MasterKey) -> None:
        from databunker.services.system import open_vault

        opened = Keyring(master)
        open_vault(self.vault.database, opened, self.vault.settings.sms.default_country)
        self.keyring.load(master, opened.keys)
        self.watcher.loaded(-1)
        log.info("unsealed", extra={"event": "unseal"})

    def sync(self) -> SealStatus:
        """Bring this process's keyring in line with the unsealer; its status."""
        with self._lock:
            status = self.unsealer.status()
            if status.sealed and not self.keyring.sealed:
                self.keyring.seal()
                log.info("sealed", extra={"event": "seal"})
            elif not status.sealed and self.keyring.sealed:
                master = self.unsealer.master_key()
                if master is not None:
                    self._unseal_with(master)
            return status

    def status(self) -> SealStatus:
        return self.sync()

    def submit(self, share: str) -> SealStatus:
        self.unsealer.submit(share)
        return self.sync()

    def seal(self) -> None:
        self.unsealer.seal()
        self.sync()

    def refresh(self) -> None:
        """Reload the keyring if another process changed it (every REFRESH_SECONDS)."""
        now = time.monotonic()
        if now - self._refreshed < keys.REFRESH_SECONDS:
            return
        self._refreshed = now
        with contextlib.suppress(KeyringSealed):
            self.watcher.refresh()

    def start_rotation(self) -> bool:
        """Start a KEK rotation in the background; False when one is running here."""
        with self._lock:
            if self._rotation is not None and self._rotation.is_alive():
                return False

            def run() -> None:
                try:
                    keys.rotate(
                        self.vault.database,
                        self.keyring,
                        self.vault.clock,
                        sleep=self._sleep_unless_stopping,
                        progress=lambda _done, _total: self._unless_stopping(),
                    )
                except _Stopping:
                    log.info("rotation paused by shutdown; it resumes when started again")
                except Exception as exc:
                    log.error("rotation failed", extra={"error_type": type(exc).__name__})

            self._rotation = threading.Thread(target=run, name="databunker-rotate", daemon=True)
            self._rotation.start()
            return True

    def rotation_running(self) -> bool:
        return self._rotation is not None and self._rotation.is_alive()

    def _unless_stopping(self) -> None:
        if self._stopping.is_set():
            raise _Stopping

    def _sleep_unless_stopping(self, seconds: float) -> None:
        self._stopping.wait(seconds)
        self._unless_stopping()

    def stop(self) -> None:
        """At shutdown: a running rotation stops after its current batch (it is resumable)."""
        self._stopping.set()
        rotation = self._rotation
        if rotation is not None:
            rotation.join(timeout=30)


class _Stopping(Exception):
    pass


def fixed_unsealer(vault: Vault) -> LocalUnsealer:
    """The unsealer of a vault unsealed at start (its key from the environment or KMS)."""
    master = None if vault.keyring.sealed else vault.keyring.master
    return LocalUnsealer(0, lambda _key: False, master)


class Application:
    """The served ASGI app: the edge middleware around the Starlette router."""

    def __init__(
        self, vault: Vault, *, owns_database: bool = False, unsealer: Unsealer | None = None
    ) -> None:
        self.vault = vault
        self.metrics = Metrics()
        self.keeper = KeyKeeper(vault, unsealer or fixed_unsealer(vault))

        @asynccontextmanager
        async def lifespan(_app: Starlette) -> AsyncIterator[None]:
            jobs = asyncio.create_task(self._run_jobs(vault.settings.server.jobs_interval))
            keeping = asyncio.create_task(self._keep_keys())
            _settle_heap()
            try:
                yield
            finally:
                keeping.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keeping
                await run_in_threadpool(self.keeper.stop)
                await self._stop_webhooks()
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
                *seal.routes,
                *users.routes,
                *apps.routes,
                *sessions.routes,
                *sharing.routes,
                *retention.routes,
                *consent.routes,
                *audit.routes,
                *login.routes,
                *requests.routes,
                *export.routes,
                *web.routes,
            ],
            exception_handlers={
                DatabunkerError: on_domain_error,
                DecryptionError: on_decryption_error,
                KeyringSealed: on_sealed,
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
        self.starlette.state.keeper = self.keeper
        gate = SealedGate(self.starlette, vault.keyring)
        self._edge = EdgeMiddleware(gate, self.starlette.router, self.metrics)

    async def _run_jobs(self, interval: float) -> None:
        # Periodic jobs wait while the vault is sealed.
        while True:
            await asyncio.sleep(interval)
            if not self.vault.keyring.sealed:
                await run_in_threadpool(run_jobs, self.vault)

    async def _keep_keys(self) -> None:
        """Follow the unsealer and the stored keyring; run the outbox dispatcher only while
        unsealed (it needs the outbox key)."""
        while True:
            if self.vault.keyring.sealed:
                await self._stop_webhooks()
            elif self.starlette.state.webhooks is None:
                webhooks = WebhookDispatcher.for_vault(self.vault)
                if webhooks is not None:
                    webhooks.start()
                self.starlette.state.webhooks = webhooks
            await asyncio.sleep(POLL_SECONDS)
            try:
                await run_in_threadpool(self.keeper.sync)
                await run_in_threadpool(self.keeper.refresh)
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
    vault: Vault, *, owns_database: bool = False, unsealer: Unsealer | None = None
) -> Application:
    return Application(vault, owns_database=owns_database, unsealer=unsealer)
