"""A real local HTTP SMS gateway for tests: the webhook ``Receiver`` answering GET as well."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from support.receiver import Received, Receiver

__all__ = ["SmsGateway", "query"]


def query(received: Received) -> dict[str, list[str]]:
    """The decoded query string of a request."""
    return parse_qs(urlsplit(received.path).query)


class SmsGateway(Receiver):
    """``with SmsGateway(path="/send") as gateway: ... gateway.url ...``."""

    def __init__(self, port: int = 0, path: str = "/send") -> None:
        super().__init__(port=port, path=path)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        base = super()._handler_class()

        class Handler(base):  # type: ignore[valid-type,misc]
            def do_GET(self) -> None:  # noqa: N802
                self.do_POST()

        return Handler
