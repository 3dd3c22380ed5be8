"""The app's router: Starlette's, with each request matched only against the routes that can
match its path, found by the path's first two segments.

Starlette tries every route in order, one regular expression each, until one matches: some
hundred routes, so a v2 operation or a portal page was matched after fifty failed attempts.
Here the routes are indexed once by the literal first two segments of their templates
(``/v1/user/{mode}/{identity}`` under ``("v1", "user")``); a route whose first two segments
are not both literal (or that is not a plain ``Route``, a ``Mount`` say) is a candidate for
every path. The candidates keep the table's order, so the route chosen is always the one a
full scan in order would choose: a path's first two segments are the same whatever route
it matches, and a route indexed under other segments cannot match it.
"""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute, Match, Route, Router
from starlette.types import Receive, Scope, Send

_Key = tuple[str, ...]


def path_key(path: str) -> _Key:
    """The first two segments of a path (fewer when it has fewer)."""
    return tuple(path.split("/", 3)[1:3])


def _route_key(route: BaseRoute) -> _Key | None:
    """The key a route is indexed by; None when it may match paths of any key."""
    if not isinstance(route, Route):
        return None
    key = path_key(route.path)
    if any("{" in segment for segment in key):
        return None
    return key


class IndexedRouter(Router):
    """``Router`` for HTTP requests, trying only the routes whose key is the path's (see the
    module's docstring). Lifespan and other scopes go to Starlette's own loop. Slashes are
    never redirected (the edge middleware already treats ``/a/`` as ``/a``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.redirect_slashes = False
        self._indexed: tuple[int, dict[_Key, list[BaseRoute]], list[BaseRoute]] | None = None

    def _index(self) -> tuple[dict[_Key, list[BaseRoute]], list[BaseRoute]]:
        indexed = self._indexed
        routes = self.routes
        if indexed is None or indexed[0] != len(routes):  # built again if routes are added
            keyed = [(route, _route_key(route)) for route in routes]
            everywhere = [route for route, key in keyed if key is None]
            by_key = {
                key: [route for route, other in keyed if other is None or other == key]
                for key in {key for _, key in keyed if key is not None}
            }
            indexed = self._indexed = (len(routes), by_key, everywhere)
        return indexed[1], indexed[2]

    def candidates(self, scope: Scope) -> list[BaseRoute]:
        """The routes that may match the request's path, in the table's order (all of them
        when the app is served under a root path, which routes match the path without)."""
        if scope.get("root_path"):
            return list(self.routes)
        by_key, everywhere = self._index()
        return by_key.get(path_key(scope["path"]), everywhere)

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().app(scope, receive, send)
            return
        if "router" not in scope:
            scope["router"] = self
        partial: BaseRoute | None = None
        partial_scope: Scope = {}
        for route in self.candidates(scope):
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                scope["route"] = route
                scope.update(child_scope)
                await route.handle(scope, receive, send)
                return
            if match is Match.PARTIAL and partial is None:
                partial, partial_scope = route, child_scope
        if partial is not None:  # the path is known, the method is not: 405
            scope["route"] = partial
            scope.update(partial_scope)
            await partial.handle(scope, receive, send)
            return
        await self.default(scope, receive, send)
