"""A real HTTP receiver of webhooks on 127.0.0.1, for integration and end-to-end tests.

``Receiver`` is a threading ``http.server`` that records every request (method, path, headers
and the raw body) and answers 200, unless told to fail the next requests with an error status
(``fail_next``) or to hang without answering (``hang_next``) until it is released or closed.
Tests wait for requests with ``wait_for`` (a condition variable, not a sleep).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import orjson

__all__ = ["Received", "Receiver"]

HANG_LIMIT = 60.0  # seconds a hung request is held at most, should nobody release it


@dataclass(frozen=True)
class Received:
    """One request as it arrived, and the status it was answered with (None: hung)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int | None = field(default=None)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        return orjson.loads(self.body)

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Receiver:
    """``with Receiver() as hook: ... hook.url ...``; ``port=`` reuses a port of an earlier one."""

    def __init__(self, port: int = 0, path: str = "/hook") -> None:
        self._lock = threading.Condition()
        self._received: list[Received] = []
        self._failures: list[int] = []
        self._hangs = 0
        self._release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.port: int = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}{path}"

    # -- behaviour ---------------------------------------------------------
    def fail_next(self, count: int, status: int = 500) -> None:
        """Answer the next ``count`` requests with ``status`` (replaces earlier orders)."""
        with self._lock:
            self._failures = [status] * count

    def hang_next(self, count: int) -> None:
        """Hold the next ``count`` requests without answering, until ``release()`` or close."""
        with self._lock:
            self._hangs = count
            self._release.clear()

    def release(self) -> None:
        """Let hung requests go: their connections close without an answer."""
        self._release.set()

    # -- observation -------------------------------------------------------
    @property
    def requests(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    @property
    def acknowledged(self) -> list[Received]:
        """The requests answered 2xx."""
        return [r for r in self.requests if r.acknowledged]

    def wait_for(
        self, count: int, *, timeout: float = 10.0, acknowledged: bool = False
    ) -> list[Received]:
        """Wait until ``count`` requests (or 2xx-answered ones) arrived; return them all."""

        def enough() -> bool:
            found = [r for r in self._received if r.acknowledged or not acknowledged]
            return len(found) >= count

        with self._lock:
            if not self._lock.wait_for(enough, timeout=timeout):
                kind = "acknowledged " if acknowledged else ""
                raise AssertionError(
                    f"expected {count} {kind}requests within {timeout:g} s, got "
                    f"{[(r.status, r.body) for r in self._received]}"
                )
            return list(self._received)

    # -- life cycle --------------------------------------------------------
    def start(self) -> Receiver:
        self._thread.start()
        return self

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the handler -------------------------------------------------------
    def _next_answer(self) -> int | None:
        """The status for the next request, or None to hang it."""
        with self._lock:
            if self._hangs:
                self._hangs -= 1
                return None
            if self._failures:
                return self._failures.pop(0)
            return 200

    def _record(self, received: Received) -> None:
        with self._lock:
            self._received.append(received)
            self._lock.notify_all()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {name.lower(): value for name, value in self.headers.items()}
                status = receiver._next_answer()
                # Recorded before the answer leaves, so a sender that has its answer finds
                # its request recorded.
                receiver._record(Received(self.command, self.path, headers, body, status))
                if status is None:
                    receiver._release.wait(HANG_LIMIT)
                    return  # the connection closes without an answer
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        return Handler
