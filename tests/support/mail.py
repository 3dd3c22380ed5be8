"""A real SMTP server on 127.0.0.1 (aiosmtpd), for integration and end-to-end tests.

``MailServer`` accepts every message (plain SMTP, no TLS, no authentication) and records the
envelope and the parsed message; it can refuse the next messages with an SMTP error
(``fail_next``). Tests wait for messages with ``wait_for`` (a condition variable, not a sleep).
"""

from __future__ import annotations

import logging
import socket
import threading
from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller

__all__ = ["MailServer", "ReceivedMail"]

# aiosmtpd logs every SMTP command (addresses included) at INFO: keep test logs to ours.
logging.getLogger("mail.log").setLevel(logging.WARNING)


@dataclass(frozen=True)
class ReceivedMail:
    envelope_from: str
    envelope_to: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        message = message_from_bytes(self.raw, policy=default_policy)
        assert isinstance(message, EmailMessage)
        return message

    @property
    def text(self) -> str:
        body = self.message.get_body(("plain",))
        assert isinstance(body, EmailMessage)
        return str(body.get_content()).replace("\r\n", "\n")


class MailServer:
    """``with MailServer() as mail: ... mail.port ...``."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._received: list[ReceivedMail] = []
        self._failures = 0
        # aiosmtpd checks that it is up by connecting to the port given: it cannot be 0.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            self.port: int = sock.getsockname()[1]
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)
        self.attempts = 0

    @property
    def messages(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self._received)

    def fail_next(self, count: int) -> None:
        """Refuse the next ``count`` messages with ``451`` (a temporary failure)."""
        with self._lock:
            self._failures = count

    def wait_for(self, count: int, *, timeout: float = 10.0) -> list[ReceivedMail]:
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._received) >= count, timeout=timeout):
                raise AssertionError(
                    f"expected {count} messages within {timeout:g} s, got {len(self._received)}"
                )
            return list(self._received)

    def _accept(self, envelope: Any) -> str:
        with self._lock:
            self.attempts += 1
            if self._failures:
                self._failures -= 1
                return "451 try again later"
            raw = envelope.original_content or envelope.content
            self._received.append(
                ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), bytes(raw))
            )
            self._lock.notify_all()
            return "250 OK"

    def start(self) -> MailServer:
        self._controller.start()
        return self

    def close(self) -> None:
        self._controller.stop()

    def __enter__(self) -> MailServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _Handler:
    def __init__(self, server: MailServer) -> None:
        self._server = server

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        return self._server._accept(envelope)
