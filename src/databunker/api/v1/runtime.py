"""How a v1 route runs its operation: as a unit of work (``databunker.units``), answered in
v1's JSON.

A handler reads the request, then hands an operation to ``perform`` with the access level
the route requires. The operation returns the route's v1 answer (a dict, or a ready
response); a domain error it raises becomes v1's error answer in ``api/v1/errors.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from databunker.api.v1.responses import ok
from databunker.services.access import Credential, Source
from databunker.services.context import Context, Work
from databunker.units import Access, run_unit

__all__ = [
    "TOKEN_HEADER",
    "Access",
    "Handler",
    "Operation",
    "Payload",
    "authenticated_unless_anonymous",
    "context_of",
    "path_route",
    "perform",
    "wake_dispatcher",
]

TOKEN_HEADER = "x-bunker-token"  # noqa: S105 - a header name, not a secret

Payload = dict[str, Any] | Response
Operation = Callable[[Work], Payload]
Handler = Callable[[Request], Awaitable[Response]]


def context_of(request: Request) -> Context:
    context: Context = request.app.state.vault
    return context


def header_credential(request: Request) -> Credential:
    return Credential(request.headers.get(TOKEN_HEADER), Source.HEADER)


def authenticated_unless_anonymous(request: Request) -> Access:
    """Routes open to callers with no token at all (consent on a login page): a caller who
    sends a token must send a valid one."""
    return Access.AUTHENTICATED if request.headers.get(TOKEN_HEADER) else Access.PUBLIC


def wake_dispatcher(request: Request) -> Callable[[], None]:
    """Lets this process's outbox dispatcher look at once after a unit queued something.
    Only a shortcut: the dispatcher finds every queued row in the database anyway."""

    def wake() -> None:
        dispatcher = getattr(request.app.state, "webhooks", None)
        if dispatcher is not None:
            dispatcher.wake()

    return wake


async def perform(
    request: Request,
    access: Access,
    operation: Operation,
    *,
    title: str | None = None,
    subject: tuple[str, str] | None = None,
    keep_spent: bool = False,
) -> Response:
    """Run ``operation`` as one unit of work. ``subject`` is the (mode, identity) the URL
    names: a failed or denied attempt is filed under that person's audit trail."""
    payload = await run_unit(
        context_of(request),
        header_credential(request),
        access,
        operation,
        title=title,
        subject=subject,
        keep_spent=keep_spent,
        wake=wake_dispatcher(request),
    )
    return payload if isinstance(payload, Response) else ok(payload)


def path_route(path: str, handlers: dict[str, Handler]) -> Route:
    """One route for a path with a handler per method, so 405 answers list every method."""

    async def dispatch(request: Request) -> Response:
        return await handlers[request.method if request.method != "HEAD" else "GET"](request)

    return Route(path, dispatch, methods=list(handlers))
