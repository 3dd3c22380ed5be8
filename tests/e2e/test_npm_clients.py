"""The published npm clients against a started server, as a Node.js application uses them.

``@databunker/store`` (users, legal bases and agreements, app records) and
``@databunker/session-store`` (sessions of an express app) are installed from the npm registry
at the exact versions locked in ``tests/e2e/npm/`` into a scratch folder, once per test
session. The Node scripts there run against ``databunker serve`` on a fresh database (SQLite
and PostgreSQL) with the root token that ``init`` printed. The tests assert on what the
client returned and, where the client cannot see it, on the server's own answers.

npm failing to install is a test failure with npm's output, never a skip: these clients are
the compatibility promise of the v1 API.
"""

from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from support.node import NodeApp, NodeError, NodeProject, install_npm_project
from support.postgres import TemporaryPostgres
from support.server import ServerProcess, run_cli

pytestmark = pytest.mark.e2e

NPM_SOURCE = Path(__file__).parent / "npm"
UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SEEDED_BRIEFS = ("core-send-email-on-login", "core-send-sms-on-login")
NOT_FOUND = {"status": "error", "message": "not found"}
ACCESS_DENIED = {"status": "error", "message": "access denied"}
SESSION_RETENTION_SECONDS = 2


# --- npm, the server and the app ------------------------------------------------------------


@pytest.fixture(scope="session")
def npm_project(tmp_path_factory: pytest.TempPathFactory) -> NodeProject:
    """The npm packages, installed once per test session; npm's failure fails the tests."""
    try:
        return install_npm_project(NPM_SOURCE, tmp_path_factory.mktemp("npm") / "project")
    except NodeError as exc:
        pytest.fail(f"cannot install the npm clients:\n{exc}", pytrace=False)


@dataclass
class RunningVault:
    """A started server on an initialised database, its root token and a root HTTP client."""

    server: ServerProcess
    root_token: str
    root: httpx.Client

    @property
    def node_env(self) -> dict[str, str]:
        return {"DATABUNKER_URL": self.server.url, "DATABUNKER_TOKEN": self.root_token}

    def log(self) -> str:
        lines = self.server.stderr.rstrip().splitlines()[-40:]
        return "--- server stderr (last lines) ---\n" + "\n".join(lines)


def _printed(output: str, name: str) -> str:
    found = [line for line in output.splitlines() if line.startswith(f"{name}=")]
    assert len(found) == 1, output
    return found[0].partition("=")[2].strip()


@contextmanager
def started_vault(
    folder: Path, url: str | None = None, env: dict[str, str] | None = None
) -> Iterator[RunningVault]:
    """``init`` a fresh database (SQLite in ``folder`` unless ``url`` is given), then ``serve``
    it in ``folder`` with ``env`` added to its environment."""
    folder.mkdir(parents=True, exist_ok=True)
    url = url or f"sqlite:///{folder / 'vault.db'}"
    result = run_cli(["init", "--db", url], cwd=folder)
    assert result.returncode == 0, result.stderr
    master_key = _printed(result.stdout, "DATABUNKER_MASTERKEY")
    root_token = _printed(result.stdout, "DATABUNKER_ROOTTOKEN")
    server_env = {"DATABUNKER_MASTERKEY": master_key, **(env or {})}
    with (
        ServerProcess(["serve", "--db", url], server_env, cwd=folder) as server,
        httpx.Client(
            base_url=server.url, headers={"X-Bunker-Token": root_token}, timeout=10.0
        ) as root,
    ):
        yield RunningVault(server, root_token, root)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def bunker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningVault]:
    """One server per database kind for this module's tests; each uses identities of its own."""
    folder = tmp_path_factory.mktemp(f"npm-clients-{request.param}")
    if request.param == "sqlite":
        with started_vault(folder) as running:
            yield running
        return
    postgres: TemporaryPostgres = request.getfixturevalue("postgres_server")
    name = f"npm_{uuid.uuid4().hex[:16]}"
    url = postgres.create_database(name)
    try:
        with started_vault(folder, url) as running:
            yield running
    finally:
        postgres.drop_database(name)


def run_store(project: NodeProject, vault: RunningVault, scenario: str, **data: Any) -> Any:
    """Run one scenario of store.js; the client's answers by step name."""
    try:
        return project.run_json("store.js", [scenario, json.dumps(data)], vault.node_env)
    except NodeError as exc:
        pytest.fail(f"{exc}\n{vault.log()}", pytrace=False)


def explain(found: Any, vault: RunningVault) -> str:
    """The whole result of a Node script and the server's recent log, for a failed assertion."""
    return f"store.js returned:\n{json.dumps(found, indent=2)}\n{vault.log()}"


@contextmanager
def session_app(project: NodeProject, vault: RunningVault) -> Iterator[Browser]:
    """The express app on its own port, and a cookie-keeping HTTP client in front of it."""
    env = {**vault.node_env, "SESSION_SECRET": secrets.token_hex(16)}
    app = project.app("session_app.js", env)
    try:
        app.start()
    except NodeError as exc:
        pytest.fail(f"{exc}\n{vault.log()}", pytrace=False)
    try:
        with httpx.Client(base_url=app.url, timeout=10.0) as client:
            yield Browser(client, app, vault)
    finally:
        app.stop()


@dataclass
class Browser:
    """A visitor of the express app; every failure message carries both processes' output."""

    client: httpx.Client
    app: NodeApp
    vault: RunningVault

    def visit(self, path: str) -> dict[str, Any]:
        try:
            response = self.client.get(path)
        except httpx.TransportError as exc:
            pytest.fail(f"GET {path}: {exc!r}\n{self.explain()}", pytrace=False)
        assert response.status_code == 200, f"GET {path}: {response.text}\n{self.explain()}"
        body: dict[str, Any] = response.json()
        return body

    def stored_session(self, sid: str) -> httpx.Response:
        """The server's answer to root's ``GET /v1/session/<sid>``."""
        return self.vault.root.get(f"/v1/session/{sid}")

    def explain(self) -> str:
        return f"{self.app.report()}\n{self.vault.log()}"


def identity() -> str:
    return uuid.uuid4().hex[:10]


# --- @databunker/store ----------------------------------------------------------------------


def test_store_creates_reads_changes_and_refuses_a_duplicate_user(
    npm_project: NodeProject, bunker: RunningVault
) -> None:
    tag = identity()
    login, email = f"ann{tag}", f"Ann.{tag}@Example.com"
    found = run_store(
        npm_project,
        bunker,
        "users",
        login=login,
        email=email,
        name="Ann Smith",
        city="Leeds",
        absentEmail=f"nobody.{tag}@example.com",
    )
    why = explain(found, bunker)

    # POST /v1/user/ (trailing slash, JSON with a charset parameter) creates the record.
    created = found["created"]
    assert created.get("status") == "ok", why
    token = created.get("token", "")
    assert UUID_TEXT.fullmatch(token), why
    assert created == {"status": "ok", "token": token}, why
    profile = {"login": login, "email": email, "name": "Ann Smith"}
    for step in ("byToken", "byEmail", "byLogin"):
        assert found[step] == {"status": "ok", "token": token, "data": profile}, f"{step}\n{why}"

    # users.set is a JSON merge patch: null removes a key, a new key is added.
    assert found["changed"] == {"status": "ok", "token": token}, why
    changed = {"login": login, "email": email, "city": "Leeds"}
    assert found["afterChange"] == {"status": "ok", "token": token, "data": changed}, why

    assert found["duplicate"] == {"status": "error", "message": "duplicate index: email"}, why
    assert found["missing"] == NOT_FOUND, why


def test_store_with_an_unknown_token_is_refused(
    npm_project: NodeProject, bunker: RunningVault
) -> None:
    found = run_store(
        npm_project,
        bunker,
        "denied",
        email=f"eve.{identity()}@example.com",
        user=str(uuid.uuid4()),
    )
    why = explain(found, bunker)

    assert found == {"create": ACCESS_DENIED, "get": ACCESS_DENIED, "lbasis": ACCESS_DENIED}, why


def test_store_lists_legal_bases_and_accepts_and_withdraws_agreements(
    npm_project: NodeProject, bunker: RunningVault
) -> None:
    tag = identity()
    newsletter = f"newsletter-{tag}"
    defined = bunker.root.post(
        f"/v1/lbasis/{newsletter}",
        json={
            "module": "signup-page",
            "basistype": "consent",
            "shortdesc": "Monthly newsletter",
            "usercontrol": True,
            "requiredflag": False,
        },
    )
    assert defined.status_code == 200, f"{defined.text}\n{bunker.log()}"
    email = f"bob.{tag}@example.com"

    found = run_store(
        npm_project,
        bunker,
        "agreements",
        email=email,
        kept=newsletter,
        withdrawn="core-send-email-on-login",
        referencecode=f"signup-form-{tag}",
    )
    why = explain(found, bunker)

    assert found["created"].get("status") == "ok", why
    user = found["user"]
    listed = found["lbasis"]
    assert listed.get("status") == "ok", why
    rows = {row["brief"]: row for row in listed["rows"]}
    assert listed["total"] == len(listed["rows"]), why
    for brief in SEEDED_BRIEFS:
        assert brief in rows, why
        assert rows[brief]["module"] == "login", why
        assert rows[brief]["basistype"] == "consent", why
        assert rows[brief]["status"] == "active", why
        assert rows[brief]["usercontrol"] is True, why
        assert rows[brief]["requiredflag"] is True, why
    # The client's README picks the sign-up consents this way.
    assert newsletter in found["signupConsents"], why
    assert not set(SEEDED_BRIEFS) & set(found["signupConsents"]), why

    assert found["accepted"] == {"status": "ok"}, why
    assert found["acceptedLogin"] == {"status": "ok"}, why
    assert found["withdrawn"] == {"status": "ok"}, why

    # What the server now holds for the person.
    response = bunker.root.get(f"/v1/agreements/token/{user}")
    assert response.status_code == 200, f"{response.text}\n{bunker.log()}"
    agreements = {row["brief"]: row for row in response.json()["rows"]}
    assert set(agreements) == {newsletter, "core-send-email-on-login"}, response.text
    assert agreements[newsletter]["status"] == "yes", response.text
    assert agreements[newsletter]["referencecode"] == f"signup-form-{tag}", response.text
    assert agreements[newsletter]["lastmodifiedby"] == "shop", response.text
    assert agreements["core-send-email-on-login"]["status"] == "no", response.text


def test_store_collection_is_written_overwritten_and_read(
    npm_project: NodeProject, bunker: RunningVault
) -> None:
    email = f"cat.{identity()}@example.com"
    first = {"cart": ["book", "lamp"], "total": 12.5, "gift": {"wrap": True}}
    second = {"cart": ["pen"]}

    found = run_store(npm_project, bunker, "collections", email=email, first=first, second=second)
    why = explain(found, bunker)

    assert found["created"].get("status") == "ok", why
    user = found["user"]
    assert found["firstSet"] == {"status": "ok", "token": user}, why
    assert found["firstGet"] == {"status": "ok", "token": user, "data": first}, why
    # POST creates or overwrites the whole record: nothing of the first one is kept.
    assert found["secondSet"] == {"status": "ok", "token": user}, why
    assert found["secondGet"] == {"status": "ok", "token": user, "data": second}, why
    assert found["missing"] == NOT_FOUND, why

    response = bunker.root.get(f"/v1/userapp/token/{user}")
    assert response.status_code == 200, f"{response.text}\n{bunker.log()}"
    assert response.json() == {"status": "ok", "token": user, "apps": ["shop"]}


# --- @databunker/session-store --------------------------------------------------------------


def test_session_store_keeps_the_session_until_logout(
    npm_project: NodeProject, bunker: RunningVault
) -> None:
    with session_app(npm_project, bunker) as browser:
        login = browser.visit("/login")
        sid = login["sid"]
        assert UUID_TEXT.fullmatch(sid), login
        assert (login["user"], login["views"]) == ("ann", 1), login
        assert "connect.sid" in browser.client.cookies, browser.explain()

        # The session is held by the server, exactly as the app posted it.
        stored = browser.stored_session(sid)
        assert stored.status_code == 200, f"{stored.text}\n{browser.explain()}"
        body = stored.json()
        assert body["status"] == "ok", stored.text
        assert body["session"] == sid, stored.text
        assert body["data"] == login["session"], stored.text
        assert body["data"]["cookie"]["path"] == "/", stored.text

        # Later requests find it again, and what they change is kept.
        for views in (2, 3):
            me = browser.visit("/me")
            assert (me["sid"], me["user"], me["views"]) == (sid, "ann", views), me
        stored = browser.stored_session(sid)
        assert stored.status_code == 200, f"{stored.text}\n{browser.explain()}"
        assert stored.json()["data"] == me["session"], stored.text

        assert browser.visit("/logout") == {"destroyed": sid}
        gone = browser.stored_session(sid)
        assert (gone.status_code, gone.json()) == (404, NOT_FOUND), gone.text

        # The browser still sends the old cookie: the store answers "no session".
        after = browser.visit("/me")
        assert (after["user"], after["views"]) == (None, 0), after
        assert after["sid"] != sid, after


def test_session_store_treats_an_expired_session_as_no_session(
    npm_project: NodeProject, tmp_path: Path
) -> None:
    retention = {"POLICY_MAX_SESSION_RETENTION_PERIOD": str(SESSION_RETENTION_SECONDS)}
    with (
        started_vault(tmp_path / "vault", env=retention) as short_lived,
        session_app(npm_project, short_lived) as browser,
    ):
        login = browser.visit("/login")
        expires = time.monotonic() + SESSION_RETENTION_SECONDS
        sid = login["sid"]
        assert (login["user"], login["views"]) == ("ann", 1), login
        stored = browser.stored_session(sid)
        assert stored.status_code == 200, f"{stored.text}\n{browser.explain()}"

        # Past the retention period, with a margin for expiry times kept in whole seconds.
        time.sleep(max(0.0, expires + 1.2 - time.monotonic()))

        # The next request of the same browser starts afresh instead of failing.
        after = browser.visit("/me")
        assert (after["user"], after["views"]) == (None, 0), after
        assert after["sid"] != sid, after
        expired = browser.stored_session(sid)
        assert (expired.status_code, expired.json()) == (404, NOT_FOUND), expired.text

        again = browser.visit("/login")
        assert (again["user"], again["views"]) == ("ann", 1), again
        assert again["sid"] not in (sid, after["sid"]), again
