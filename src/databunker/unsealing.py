"""Who holds a server's unseal state: its shares so far and, once unsealed, the master key.

A server of one process holds it itself (``LocalUnsealer``). ``serve --workers N`` keeps it
in the supervising process (``UnsealAgent``), which the workers reach over a Unix socket in
a private (0700) temporary folder (``SocketUnsealer``): a share given to any worker counts
for all of them, and one unseal unseals every worker, each of which asks for the key within
``POLL_SECONDS``. Shares and the key pass only through memory and that socket; neither is
ever written to a file or a log.

``accept`` checks a rebuilt master key against the vault (its stored key check): shares of
another vault are refused and the progress starts again from 0.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import socketserver
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from databunker.crypto import MasterKey
from databunker.crypto.providers import KeyProviderError, ShareCollector

POLL_SECONDS = 1.0
_MAX_MESSAGE = 64 * 1024


@dataclass(frozen=True, slots=True)
class SealStatus:
    sealed: bool
    threshold: int
    progress: int


class ShareRefused(Exception):
    """A share was malformed, or the shares given rebuild another vault's key."""


class Unsealer(Protocol):
    def status(self) -> SealStatus: ...

    def submit(self, share: str) -> SealStatus:
        """Count one share; ``ShareRefused`` for a malformed one or a wrong combination."""
        ...

    def seal(self) -> None: ...

    def master_key(self) -> MasterKey | None:
        """The master key while unsealed."""
        ...


class LocalUnsealer:
    """Unseal state held in this process. ``threshold`` 0: a vault whose key came from the
    environment or KMS, unsealed from the start; once sealed it stays so until restarted."""

    def __init__(
        self,
        threshold: int,
        accept: Callable[[MasterKey], bool],
        master: MasterKey | None = None,
    ) -> None:
        self.threshold = threshold
        self._accept = accept
        self._collector = ShareCollector(threshold) if threshold else None
        self._master = master
        self._lock = threading.Lock()

    def status(self) -> SealStatus:
        with self._lock:
            progress = 0 if self._collector is None else self._collector.progress
            return SealStatus(self._master is None, self.threshold, progress)

    def submit(self, share: str) -> SealStatus:
        with self._lock:
            if self._master is not None:
                return SealStatus(False, self.threshold, 0)
            if self._collector is None:
                raise ShareRefused("this vault is not protected by shares")
            try:
                master = self._collector.add(share)
            except KeyProviderError as exc:
                raise ShareRefused(str(exc)) from exc
            if master is None:
                return SealStatus(True, self.threshold, self._collector.progress)
            if not self._accept(master):
                raise ShareRefused("shares do not match this vault")
            self._master = master
            return SealStatus(False, self.threshold, 0)

    def seal(self) -> None:
        with self._lock:
            self._master = None
            if self._collector is not None:
                self._collector.reset()

    def master_key(self) -> MasterKey | None:
        return self._master


class UnsealAgent:
    """Serves a ``LocalUnsealer`` on a Unix socket to the worker processes of one server."""

    def __init__(self, unsealer: LocalUnsealer, path: str) -> None:
        self.unsealer = unsealer
        self.path = path
        agent = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                line = self.rfile.readline(_MAX_MESSAGE)
                try:
                    answer = agent._answer(json.loads(line))
                except (ValueError, KeyError, TypeError):
                    answer = {"error": "bad request"}
                self.wfile.write(json.dumps(answer).encode() + b"\n")

        old_umask = os.umask(0o077)
        try:
            self._server = socketserver.ThreadingUnixStreamServer(path, Handler)
        finally:
            os.umask(old_umask)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def _answer(self, request: dict[str, Any]) -> dict[str, Any]:
        operation = request["op"]
        if operation == "submit":
            try:
                status = self.unsealer.submit(str(request["share"]))
            except ShareRefused as exc:
                return {"refused": str(exc), **_status(self.unsealer.status())}
            return _status(status)
        if operation == "seal":
            self.unsealer.seal()
        if operation == "key":
            master = self.unsealer.master_key()
            return {"key": None if master is None else master.hex()}
        return _status(self.unsealer.status())


def _status(status: SealStatus) -> dict[str, Any]:
    return {"sealed": status.sealed, "threshold": status.threshold, "progress": status.progress}


class SocketUnsealer:
    """A worker's view of its server's ``UnsealAgent``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(10)
            connection.connect(self.path)
            connection.sendall(json.dumps(request).encode() + b"\n")
            with connection.makefile("rb") as answer:
                found: dict[str, Any] = json.loads(answer.readline(_MAX_MESSAGE))
        return found

    @staticmethod
    def _parse(answer: dict[str, Any]) -> SealStatus:
        return SealStatus(bool(answer["sealed"]), int(answer["threshold"]), int(answer["progress"]))

    def status(self) -> SealStatus:
        return self._parse(self._ask({"op": "status"}))

    def submit(self, share: str) -> SealStatus:
        answer = self._ask({"op": "submit", "share": share})
        if "refused" in answer:
            raise ShareRefused(str(answer["refused"]))
        return self._parse(answer)

    def seal(self) -> None:
        self._ask({"op": "seal"})

    def master_key(self) -> MasterKey | None:
        found = self._ask({"op": "key"}).get("key")
        return None if found is None else MasterKey.from_hex(str(found))
