"""Sessions over HTTP: ``/v1/session/{session}`` and ``/v1/sessions/{mode}/{identity}``.

Includes the exchanges ``@databunker/session-store`` (an express-session store) makes: set and
touch are the same upsert, a missing or expired session is ``404 not found``, and the session
object (with its ``cookie``) comes back exactly as it was posted.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from httpx2 import Response
from starlette.testclient import TestClient

from databunker.jobs import run_jobs
from databunker.services.context import Context
from support.vaults import Clock, client_for, create_user

JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
ANN = {"login": "ann", "email": "ann@example.com", "phone": "+447700900123", "custom": "c-ann"}
BOB = {"login": "bob", "email": "bob@example.com"}
NOT_FOUND = {"status": "error", "message": "not found"}
ACCESS_DENIED = {"status": "error", "message": "access denied"}
HOUR = 3600
# What express-session posts: its cookie object plus the application's keys.
EXPRESS_SESSION = {
    "cookie": {
        "originalMaxAge": 86_400_000,
        "expires": "2027-01-16T08:00:00.000Z",
        "secure": False,
        "httpOnly": True,
        "path": "/",
        "sameSite": "lax",
    },
    "views": 3,
    "flash": {},
    "cart": [{"sku": "A-1", "qty": 2}],
    "user": None,
}


# -- helpers ---------------------------------------------------------------------------------
def new_id() -> str:
    return str(uuid.uuid4())


def put_session(client: TestClient, session: str, data: Any) -> None:
    response = client.post(f"/v1/session/{session}", json=data)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "session": session}


def get_session(client: TestClient, session: str) -> Response:
    return client.get(f"/v1/session/{session}")


def data_of(client: TestClient, session: str) -> Any:
    response = get_session(client, session)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def sessions_of(client: TestClient, path: str) -> dict[str, Any]:
    response = client.get(f"/v1/sessions/{path}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def session_ids(client: TestClient, path: str) -> list[str]:
    return [row["session"] for row in sessions_of(client, f"{path}?limit=100")["rows"]]


def assert_error(response: Response, status: int, body: dict[str, Any]) -> None:
    assert response.status_code == status, response.text
    assert response.json() == body


def bad_request(message: str) -> dict[str, str]:
    return {"status": "error", "message": message}


def admin_titles(client: TestClient) -> list[str]:
    rows = client.get("/v1/audit/admin?limit=100").json()["rows"]
    return [row["title"] for row in reversed(rows)]


@pytest.fixture
def ann(api: TestClient) -> str:
    return create_user(api, ANN)


# -- create and read -------------------------------------------------------------------------
def test_a_session_object_comes_back_verbatim(api: TestClient, clock: Clock) -> None:
    session = new_id()
    put_session(api, session, EXPRESS_SESSION)

    response = get_session(api, session)

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "session": session,
        "when": clock.now,
        "data": EXPRESS_SESSION,
    }


def test_identity_and_expiration_keys_are_kept_in_the_data(api: TestClient, ann: str) -> None:
    session = new_id()
    posted = {"expiration": "30m", "ip": "192.0.2.1", "email": "ann@example.com"}
    put_session(api, session, posted)
    assert data_of(api, session) == posted


def test_form_bodies_are_stored_as_strings(api: TestClient) -> None:
    session = new_id()
    response = api.post(f"/v1/session/{session}", content="views=3&ip=192.0.2.1", headers=FORM)
    assert response.status_code == 200, response.text
    assert data_of(api, session) == {"views": "3", "ip": "192.0.2.1"}


def test_session_ids_are_used_as_given(api: TestClient) -> None:
    upper = new_id().upper()
    put_session(api, upper, {"a": 1})
    assert data_of(api, upper) == {"a": 1}
    assert_error(get_session(api, upper.lower()), 404, NOT_FOUND)


@pytest.mark.parametrize(
    ("body", "headers", "message"),
    [
        ("", JSON, "empty body"),
        ("{}", JSON, "empty body"),
        ('{"a": ', JSON, "failed to decode request body"),
        ('[{"a": 1}]', JSON, "failed to decode request body"),
        ('{"expiration": true}', JSON, "bad expiration"),
        ('{"expiration": "soon"}', JSON, "bad expiration"),
    ],
)
def test_create_rejects_bad_bodies(
    api: TestClient, body: str, headers: dict[str, str], message: str
) -> None:
    session = new_id()
    response = api.post(f"/v1/session/{session}", content=body, headers=headers)
    assert_error(response, 400, bad_request(message))
    assert_error(get_session(api, session), 404, NOT_FOUND)


@pytest.mark.parametrize("session", ["not-a-uuid", "DEMO", "1234"])
@pytest.mark.parametrize("method", ["POST", "GET", "DELETE"])
def test_session_ids_must_be_uuids(api: TestClient, method: str, session: str) -> None:
    response = api.request(method, f"/v1/session/{session}", json={"a": 1})
    assert_error(response, 400, bad_request("bad uuid"))


def test_a_missing_session_is_not_found_for_root(api: TestClient) -> None:
    assert_error(get_session(api, new_id()), 404, NOT_FOUND)


def test_session_data_is_encrypted_at_rest(vault: Context, api: TestClient) -> None:
    put_session(api, new_id(), {"secret": "plaintext-marker-4711"})
    with vault.database.transaction() as conn:
        stored = conn.exec_driver_sql("SELECT data FROM sessions").scalar_one()
    assert b"plaintext-marker-4711" not in bytes(stored)


# -- upsert (express-session's set and touch) ------------------------------------------------
def test_posting_the_same_id_again_overwrites_the_session(api: TestClient, clock: Clock) -> None:
    session = new_id()
    put_session(api, session, {"views": 1, "old": True})
    clock.advance(60)

    put_session(api, session, {"views": 2})

    response = get_session(api, session).json()
    assert (response["when"], response["data"]) == (clock.now, {"views": 2})


def test_touching_a_session_extends_its_life(api: TestClient, clock: Clock) -> None:
    session, untouched = new_id(), new_id()
    put_session(api, session, EXPRESS_SESSION)
    put_session(api, untouched, EXPRESS_SESSION)
    clock.advance(50 * 60)

    put_session(api, session, EXPRESS_SESSION)
    clock.advance(20 * 60)

    assert data_of(api, session) == EXPRESS_SESSION
    assert_error(get_session(api, untouched), 404, NOT_FOUND)


def test_the_express_session_store_exchange(api: TestClient) -> None:
    session = new_id()
    # get: no session yet -> the store reads "not found" as "start a new one"
    assert_error(get_session(api, session), 404, NOT_FOUND)
    # set, get, touch, get
    put_session(api, session, EXPRESS_SESSION)
    assert data_of(api, session) == EXPRESS_SESSION
    touched = {**EXPRESS_SESSION, "views": 4}
    put_session(api, session, touched)
    assert data_of(api, session) == touched
    # destroy, twice: always fine
    for _ in range(2):
        response = api.delete(f"/v1/session/{session}")
        assert (response.status_code, response.json()) == (200, {"status": "ok"})
    assert_error(get_session(api, session), 404, NOT_FOUND)


# -- expiry ----------------------------------------------------------------------------------
def test_a_session_expires_after_the_policy_maximum(
    api: TestClient, clock: Clock, ann: str, user_client: Any
) -> None:
    session = new_id()
    put_session(api, session, {"login": "ann", "views": 1})
    clock.advance(HOUR - 1)
    assert data_of(api, session) == {"login": "ann", "views": 1}
    clock.advance(1)

    # Expired looks exactly like missing: to root, to the owner, and in the owner's list.
    assert_error(get_session(api, session), 404, NOT_FOUND)
    assert_error(get_session(user_client(ann), session), 403, ACCESS_DENIED)
    assert sessions_of(api, f"token/{ann}") == {"status": "ok", "total": 0, "rows": []}


def test_expired_sessions_are_purged_by_the_periodic_job(
    vault: Context, api: TestClient, clock: Clock
) -> None:
    expired, live = new_id(), new_id()
    put_session(api, expired, {"a": 1})
    clock.advance(HOUR - 10)
    put_session(api, live, {"b": 2})
    clock.advance(10)

    assert run_jobs(vault)["purge expired sessions"] == 1
    assert run_jobs(vault)["purge expired sessions"] == 0

    assert_error(get_session(api, expired), 404, NOT_FOUND)
    assert data_of(api, live) == {"b": 2}
    # The id can be used again: it is a brand-new session.
    put_session(api, expired, {"c": 3})
    response = get_session(api, expired).json()
    assert (response["when"], response["data"]) == (clock.now, {"c": 3})


@pytest.mark.parametrize(
    ("expiration", "lifetime"),
    [
        ("600", 600),
        (600, 600),
        ("10m", HOUR),  # months, capped to the policy's hour
        ("2h", HOUR),
        ("30s", 30),
        ("1800s", 1800),
        (None, HOUR),
        ("", HOUR),
    ],
)
def test_a_requested_expiration_is_capped_by_the_policy(
    make_vault: Any, clock: Clock, expiration: Any, lifetime: int
) -> None:
    vault = make_vault(policy={"max_session_retention_period": "1h"})
    with client_for(vault) as client:
        session = new_id()
        body: dict[str, Any] = {"a": 1}
        if expiration is not None:
            body["expiration"] = expiration
        put_session(client, session, body)
        clock.advance(lifetime - 1)
        assert data_of(client, session) == body
        clock.advance(1)
        assert_error(get_session(client, session), 404, NOT_FOUND)


def test_an_absolute_expiration_time_is_accepted(make_vault: Any, clock: Clock) -> None:
    vault = make_vault(policy={"max_session_retention_period": "1d"})
    with client_for(vault) as client:
        session = new_id()
        put_session(client, session, {"expiration": clock.now + 120})
        clock.advance(119)
        assert get_session(client, session).status_code == 200
        clock.advance(1)
        assert_error(get_session(client, session), 404, NOT_FOUND)


# -- the link to a person --------------------------------------------------------------------
@pytest.mark.parametrize(
    "link",
    [
        {"login": "ann"},
        {"email": "ANN@example.com"},
        {"phone": "07700 900123"},
        {"custom": "c-ann"},
        {"login": "", "email": "ann@example.com"},
        {"login": None, "custom": "c-ann", "token": "ignored"},
    ],
)
def test_a_session_is_linked_by_the_first_identity_in_its_data(
    api: TestClient, ann: str, user_client: Any, link: dict[str, Any]
) -> None:
    session = new_id()
    put_session(api, session, {**link, "views": 1})

    assert session_ids(api, f"token/{ann}") == [session]
    response = get_session(user_client(ann), session)
    assert response.status_code == 200, response.text
    assert response.json()["data"] == {**link, "views": 1}


def test_a_session_is_linked_by_token(api: TestClient, ann: str) -> None:
    session = new_id()
    put_session(api, session, {"token": ann})
    assert session_ids(api, "login/ann") == [session]


def test_only_the_first_identity_is_tried(api: TestClient, ann: str) -> None:
    bob = create_user(api, BOB)
    first_bob, unknown_first = new_id(), new_id()
    put_session(api, first_bob, {"login": "bob", "email": "ann@example.com"})
    put_session(api, unknown_first, {"login": "nobody", "email": "ann@example.com"})
    assert session_ids(api, f"token/{bob}") == [first_bob]
    assert session_ids(api, f"token/{ann}") == []


@pytest.mark.parametrize(
    "link",
    [
        {"login": "nobody"},
        {"email": "not-an-email"},
        {"phone": "call me"},
        {"token": "not-a-uuid"},
        {"token": "0b6f4ca2-7f0e-4c4e-9c55-3d7cbbd0f1a9"},
        {"login": {"nested": "ann"}},
        {"name": "ann"},
    ],
)
def test_a_failed_link_leaves_the_session_unlinked(
    api: TestClient, ann: str, user_client: Any, link: dict[str, Any]
) -> None:
    session = new_id()
    put_session(api, session, link)
    assert data_of(api, session) == link
    assert session_ids(api, f"token/{ann}") == []
    assert_error(get_session(user_client(ann), session), 403, ACCESS_DENIED)


def test_re_posting_a_session_moves_its_link(api: TestClient, ann: str) -> None:
    bob = create_user(api, BOB)
    session = new_id()
    put_session(api, session, {"login": "ann"})
    put_session(api, session, {"login": "bob"})
    assert session_ids(api, f"token/{ann}") == []
    assert session_ids(api, f"token/{bob}") == [session]
    put_session(api, session, {"anonymous": True})
    assert session_ids(api, f"token/{bob}") == []


# -- who may do what -------------------------------------------------------------------------
def test_a_person_reads_their_own_sessions_only(
    api: TestClient, ann: str, user_client: Any
) -> None:
    bob = create_user(api, BOB)
    mine, theirs = new_id(), new_id()
    put_session(api, mine, {"login": "ann", "n": 1})
    put_session(api, theirs, {"login": "bob", "n": 2})

    client = user_client(ann)
    assert client.get(f"/v1/session/{mine}").json()["data"] == {"login": "ann", "n": 1}
    assert_error(client.get(f"/v1/session/{theirs}"), 403, ACCESS_DENIED)
    # A session that does not exist looks the same as someone else's.
    assert_error(client.get(f"/v1/session/{new_id()}"), 403, ACCESS_DENIED)
    assert sessions_of(client, "login/ann")["total"] == 1
    assert_error(client.get(f"/v1/sessions/token/{bob}"), 403, ACCESS_DENIED)
    assert_error(client.get("/v1/sessions/login/nobody"), 403, ACCESS_DENIED)


def test_only_root_writes_sessions(api: TestClient, ann: str, user_client: Any) -> None:
    session = new_id()
    put_session(api, session, {"login": "ann"})
    client = user_client(ann)
    posted = client.post(f"/v1/session/{session}", json={"login": "ann", "hacked": True})
    assert_error(posted, 403, ACCESS_DENIED)
    assert_error(client.delete(f"/v1/session/{session}"), 403, ACCESS_DENIED)
    assert data_of(api, session) == {"login": "ann"}


def test_anonymous_callers_are_denied(api: TestClient, anonymous: TestClient, ann: str) -> None:
    session = new_id()
    put_session(api, session, {"login": "ann"})
    for method in ("POST", "GET", "DELETE"):
        response = anonymous.request(method, f"/v1/session/{session}", json={"a": 1})
        assert_error(response, 403, ACCESS_DENIED)
    assert_error(anonymous.get(f"/v1/sessions/token/{ann}"), 403, ACCESS_DENIED)
    assert data_of(api, session) == {"login": "ann"}


# -- a person's list -------------------------------------------------------------------------
def test_a_persons_sessions_are_listed_newest_first_and_paged(
    api: TestClient, clock: Clock, ann: str
) -> None:
    ids = []
    for number in range(5):
        session = new_id()
        put_session(api, session, {"login": "ann", "n": number})
        ids.append((clock.now, session, number))
        clock.advance(10)
    put_session(api, new_id(), {"n": "unlinked"})

    first = sessions_of(api, "email/ann@example.com?limit=2")
    rest = sessions_of(api, f"token/{ann}?offset=2&limit=10")

    expected = [
        {"when": when, "session": session, "data": {"login": "ann", "n": number}}
        for when, session, number in reversed(ids)
    ]
    assert first == {"status": "ok", "total": 5, "rows": expected[:2]}
    assert rest == {"status": "ok", "total": 5, "rows": expected[2:]}


def test_a_person_without_sessions_has_an_empty_list(api: TestClient, ann: str) -> None:
    assert sessions_of(api, f"token/{ann}") == {"status": "ok", "total": 0, "rows": []}


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("fax/ann", 400, "bad mode"),
        ("token/not-a-uuid", 400, "bad uuid"),
        ("login/nobody", 404, "not found"),
        ("token/ann?limit=x", 400, "bad limit"),
    ],
)
def test_list_errors_for_root(api: TestClient, path: str, status: int, message: str) -> None:
    assert_error(api.get(f"/v1/sessions/{path}"), status, bad_request(message))


# -- audit -----------------------------------------------------------------------------------
def test_session_operations_are_audited(api: TestClient, ann: str) -> None:
    linked, unlinked = new_id(), new_id()
    put_session(api, linked, {"login": "ann"})
    put_session(api, unlinked, {"anonymous": True})
    get_session(api, linked)
    get_session(api, unlinked)
    api.get(f"/v1/sessions/token/{ann}")
    api.delete(f"/v1/session/{linked}")
    get_session(api, linked)

    assert admin_titles(api) == [
        "create user record",
        "create session",  # the unlinked session's creation is not audited
        "get session",
        "get session",
        "get all user sessions",
        "delete session",
        "get session",
    ]
    rows = list(reversed(api.get(f"/v1/audit/list/{ann}?limit=100").json()["rows"]))
    session_rows = [r for r in rows if r.get("mode") == "session"]
    assert [(r["title"], r["status"], r["who"]) for r in session_rows] == [
        ("create session", "ok", linked),
        ("get session", "ok", linked),
        ("delete session", "ok", linked),
    ]


# -- erasure ---------------------------------------------------------------------------------
def test_erasing_the_person_deletes_their_sessions(api: TestClient, ann: str) -> None:
    mine, unlinked = new_id(), new_id()
    put_session(api, mine, EXPRESS_SESSION | {"login": "ann"})
    put_session(api, unlinked, EXPRESS_SESSION)

    assert api.delete(f"/v1/user/token/{ann}").status_code == 200

    assert_error(get_session(api, mine), 404, NOT_FOUND)
    assert sessions_of(api, f"token/{ann}") == {"status": "ok", "total": 0, "rows": []}
    assert data_of(api, unlinked) == EXPRESS_SESSION
    # An erased person can no longer be linked to.
    put_session(api, mine, {"token": ann})
    assert sessions_of(api, f"token/{ann}")["total"] == 0
