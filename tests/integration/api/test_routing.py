"""The indexed router chooses, for every request, the route a full scan in order chooses.

For each route of the app's table, requests with each of its methods (and one it does not
answer) to a path filled from its template, and paths that match nothing or only almost:
the route the indexed router finds is compared with a plain scan of the whole table, the
way Starlette's router goes through it.
"""

from __future__ import annotations

import re
import uuid

import pytest
from starlette.routing import BaseRoute, Match, Route
from starlette.testclient import TestClient

from databunker.api.routing import IndexedRouter
from databunker.app import build_app
from databunker.services.context import Context

SAMPLES = {"int": "7", "path": "a/b", "uuid": str(uuid.uuid4()), "str": "sample"}
ODD_PATHS = [
    "/",
    "/v1",
    "/v1/user/token",
    "/v1//user",
    "/v1/user//x",
    "/V1/STATUS",
    "/v2",
    "/v2/UserGet/extra",
    "/status",
    "/nothing/at/all",
    "/v1/sys",
    "/site/nothing",
]


def filled(template: str) -> str:
    def sample(match: re.Match[str]) -> str:
        return SAMPLES[match.group(2) or "str"]

    return re.sub(r"\{(\w+)(?::(\w+))?\}", sample, template)


def scanned(routes: list[BaseRoute], scope: dict[str, object]) -> BaseRoute | None:
    """What a scan of the whole table in order chooses: the first full match, else the
    first partial one (the path is known, the method is not)."""
    partial = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route
        if match is Match.PARTIAL and partial is None:
            partial = route
    return partial


def requests_to_try(routes: list[BaseRoute]) -> list[tuple[str, str]]:
    tried = []
    for route in routes:
        if not isinstance(route, Route):
            continue
        path = filled(route.path)
        for method in sorted(route.methods or {"GET"}):
            tried.append((method, path))
        tried.append(("PATCH", path))
    tried += [(method, path) for path in ODD_PATHS for method in ("GET", "POST")]
    return tried


def test_every_request_reaches_the_route_a_full_scan_chooses(vault: Context) -> None:
    router = build_app(vault).starlette.router
    assert isinstance(router, IndexedRouter)
    routes = list(router.routes)
    tried = requests_to_try(routes)
    assert len(tried) > 2 * len(routes)
    for method, path in tried:
        # Also served under a root path, where a route matches the path without it.
        for root in ("", "/vault"):
            scope = {"type": "http", "method": method, "path": root + path, "root_path": root}
            expected = scanned(routes, scope)
            assert scanned(router.candidates(scope), scope) is expected, (method, path, root)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v1/status", 200),
        ("GET", "/status", 200),
        ("POST", "/v1/status", 405),
        ("GET", "/v1/nothing", 404),
        ("GET", "/v1//status", 404),
        ("POST", "/v2/NoSuchOperation", 404),
    ],
)
def test_answers_keep_their_meaning(api: TestClient, method: str, path: str, status: int) -> None:
    assert api.request(method, path).status_code == status
