"""Durations and times a request gives are bounded: at most 100 years, on every database.

An agreement's ``expiration`` and ``starttime``, a session's, a shared record's and a
retention's ``expiration``: beyond 100 years (or an absolute time more than 100 years from
now) each is 400 ``bad expiration`` and nothing is stored, where a huge value was a server
error (an integer overflow on SQLite, a data error on PostgreSQL). Exactly 100 years is
accepted. Numbers in query strings and headers cannot overflow either.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from httpx2 import Response
from starlette.testclient import TestClient

from conftest import VaultFactory
from databunker.services.context import Context
from databunker.storage.tables import sessions, shared_records
from support.stored import stored_state
from support.vaults import ROOT_TOKEN, Clock, client_for, create_user, issue_user_token

YEAR = 366 * 86400
CENTURY = 100 * YEAR
BAD_EXPIRATION = {"status": "error", "message": "bad expiration"}
# Policies that let a request reach the bound itself.
LONG_POLICY = {
    "max_user_retention_period": "36600d",
    "max_session_retention_period": "36600d",
    "max_shareable_record_retention_period": "36600d",
}


def too_far(now: int) -> list[Any]:
    """Requested values beyond 100 years: durations, JSON numbers, floats, negatives, and
    absolute times too far ahead."""
    return [
        "99999999999999999999d",
        "9" * 5000,
        10**30,
        1e300,
        -1,
        "-5",
        now + 200 * YEAR,
        str(now + 200 * YEAR),
        now + CENTURY + 1,
    ]


@dataclass
class Scene:
    vault: Context
    clock: Clock
    root: TestClient
    anonymous: TestClient
    ann_client: TestClient
    ann: str


@pytest.fixture
def scene(make_vault: VaultFactory, clock: Clock) -> Iterator[Scene]:
    vault = make_vault(policy=LONG_POLICY)
    with client_for(vault) as root, client_for(vault, None) as anonymous:
        ann = create_user(root, {"email": "ann@example.com", "name": "Ann"})
        assert root.post("/v1/lbasis/news", json={"usercontrol": True}).is_success
        with client_for(vault, issue_user_token(vault, ann)) as ann_client:
            yield Scene(vault, clock, root, anonymous, ann_client, ann)


def assert_bad_expiration(response: Response) -> None:
    assert response.status_code == 400, response.text
    assert response.json() == BAD_EXPIRATION


# Each route taking a duration: the request for a value, and who may send it.
Send = Callable[[Scene, TestClient, Any], Response]


def _agreement(field: str) -> Send:
    def send(scene: Scene, client: TestClient, value: Any) -> Response:
        path = (
            "/v1/agreement/news/email/bob@example.com"
            if client is scene.anonymous
            else f"/v1/agreement/news/token/{scene.ann}"
        )
        return client.post(path, json={"status": "yes", field: value})

    return send


def _session(scene: Scene, client: TestClient, value: Any) -> Response:
    return client.post(
        f"/v1/session/{uuid.uuid4()}", json={"token": scene.ann, "expiration": value}
    )


def _share(scene: Scene, client: TestClient, value: Any) -> Response:
    return client.post(f"/v1/sharedrecord/token/{scene.ann}", json={"expiration": value})


def _retain(scene: Scene, client: TestClient, value: Any) -> Response:
    return client.post(f"/v1/exp/start/token/{scene.ann}", json={"expiration": value})


ROUTES: dict[str, tuple[Send, tuple[str, ...]]] = {
    "agreement expiration": (_agreement("expiration"), ("root", "ann", "anonymous")),
    "agreement starttime": (_agreement("starttime"), ("root", "ann", "anonymous")),
    "session expiration": (_session, ("root",)),
    "shared record expiration": (_share, ("root", "ann")),
    "retention expiration": (_retain, ("root",)),
}


@pytest.mark.parametrize("route", list(ROUTES))
def test_beyond_a_hundred_years_is_a_bad_expiration_and_nothing_is_stored(
    scene: Scene, route: str
) -> None:
    send, callers = ROUTES[route]
    clients = {"root": scene.root, "ann": scene.ann_client, "anonymous": scene.anonymous}
    before = stored_state(scene.vault)
    for value in too_far(scene.clock()):
        for name in callers:
            response = send(scene, clients[name], value)
            assert response.status_code == 400, (value, name, response.text)
            assert response.json() == BAD_EXPIRATION, (value, name)
            assert stored_state(scene.vault) == before, (value, name)


def test_the_reported_case(scene: Scene) -> None:
    assert scene.root.post("/v1/lbasis/b1").is_success
    before = stored_state(scene.vault)
    response = scene.root.post(
        f"/v1/agreement/b1/token/{scene.ann}",
        json={"status": "yes", "expiration": "99999999999999999999d"},
    )
    assert_bad_expiration(response)
    assert stored_state(scene.vault) == before


def test_an_agreement_may_run_for_exactly_a_hundred_years(scene: Scene) -> None:
    now = scene.clock()
    path = f"/v1/agreement/news/token/{scene.ann}"
    body = {"status": "yes", "starttime": now + CENTURY, "expiration": now + CENTURY}
    assert scene.root.post(path, json=body).is_success
    data = scene.root.get(path).json()["data"]
    assert (data["starttime"], data["endtime"]) == (now + CENTURY, now + CENTURY)
    # as text, an absolute time too
    assert scene.root.post(path, json={"expiration": str(now + CENTURY)}).is_success
    assert scene.root.get(path).json()["data"]["endtime"] == now + CENTURY
    assert scene.root.post(path, json={"expiration": "36600d"}).is_success


def _expiry_of(vault: Context, table: sa.Table) -> list[int]:
    with vault.database.transaction() as conn:
        return [row.expires for row in conn.execute(sa.select(table.c.expires))]


def test_sessions_shared_records_and_retentions_may_last_a_hundred_years(scene: Scene) -> None:
    now = scene.clock()
    assert _session(scene, scene.root, now + CENTURY).is_success
    assert _expiry_of(scene.vault, sessions) == [now + CENTURY]
    assert _share(scene, scene.root, now + CENTURY).is_success
    assert _expiry_of(scene.vault, shared_records) == [now + CENTURY]
    assert _retain(scene, scene.root, now + CENTURY).is_success
    status = scene.root.get(f"/v1/exp/status/token/{scene.ann}").json()
    assert status["exptime"] == now + CENTURY
    for send in (_session, _share, _retain):
        assert send(scene, scene.root, "36600d").is_success


# --- numbers in query strings and headers --------------------------------------------------


@pytest.mark.parametrize(
    "query", ["offset=" + "9" * 5000, "limit=" + "9" * 5000, "offset=99999999999999999999"]
)
def test_huge_offsets_and_limits_are_bad_requests(scene: Scene, query: str) -> None:
    name = query.split("=")[0]
    for method, path in (
        ("POST", "/v1/users"),
        ("GET", "/v1/audit/admin"),
        ("GET", f"/v1/audit/list/{scene.ann}"),
        ("GET", "/v1/requests"),
        ("GET", f"/v1/sessions/token/{scene.ann}"),
    ):
        response = scene.root.request(method, f"{path}?{query}")
        assert response.status_code == 400, (path, response.text)
        assert response.json() == {"status": "error", "message": f"bad {name}"}


def test_a_huge_content_length_is_too_large(scene: Scene) -> None:
    headers = {"Content-Type": "application/json", "Content-Length": "9" * 5000}
    response = scene.root.post("/v1/lbasis/other", content=b'{"module":"m"}', headers=headers)
    assert response.status_code == 413, response.text
    assert response.json() == {"status": "error", "message": "request body too large"}
    assert "other" not in {r["brief"] for r in scene.root.get("/v1/lbasis").json()["rows"]}


@pytest.mark.parametrize("number", ["²", "٣", "9" * 5000, "99999999999999999999", "0", "-1"])
def test_an_admin_page_number_that_is_not_one_shows_the_first_page(
    scene: Scene, number: str
) -> None:
    with client_for(scene.vault, None) as dpo:
        dpo.follow_redirects = False
        start = dpo.get("/admin").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', start)
        assert csrf is not None
        dpo.post("/admin/signin", data={"csrf": csrf.group(1), "token": ROOT_TOKEN})
        for page in ("/admin/audit", "/admin/requests"):
            response = dpo.get(f"{page}?page={number}")
            assert response.status_code == 200, response.text
            assert response.text == dpo.get(f"{page}?page=1").text
