"""The key keeper: keeps a running server's keyring in step with its unsealer and with the
keyring stored in the database, and runs key rotations in the background."""

from __future__ import annotations

import contextlib
import logging
import threading
import time

from databunker.crypto import Keyring, KeyringSealed, MasterKey
from databunker.services import keys
from databunker.services.context import Context
from databunker.services.system import open_vault
from databunker.unsealing import LocalUnsealer, SealStatus, Unsealer

log = logging.getLogger("databunker.keys")


class KeyKeeper:
    """Keeps the vault's keyring in step with its unsealer and the database: loads it when
    the unsealer has the master key (a share given here or to another worker), forgets it
    when sealed, reloads it when another process rotated, and runs a rotation on request."""

    def __init__(self, vault: Context, unsealer: Unsealer) -> None:
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


def fixed_unsealer(vault: Context) -> LocalUnsealer:
    """The unsealer of a vault unsealed at start (its key from the environment or KMS)."""
    master = None if vault.keyring.sealed else vault.keyring.master
    return LocalUnsealer(0, lambda _key: False, master)
