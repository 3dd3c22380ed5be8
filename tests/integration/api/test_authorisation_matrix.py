"""The authorisation matrix: every route of the app against every kind of caller.

``MATRIX`` states, for each route (and each setting that changes who may call it), the
request to make with person A's identifiers and which callers are allowed; everyone else
must be denied with a 403. ``test_every_route_has_a_matrix_entry`` fails when a route is
added without an entry, so no route can ship unreviewed.

A denial must also be harmless and quiet: it changes nothing, it is written to the audit
trail, and it looks the same whether or not the addressed person exists (only root learns
that someone is missing).

Because a denial changes nothing, the callers a route denies share one scene (see
``Scenes``); a caller it lets through, whose request may change the scene, gets a fresh one.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx2 as httpx
import pytest
import sqlalchemy as sa
from starlette.routing import Route
from starlette.testclient import TestClient

from databunker import web
from databunker.app import build_app
from databunker.config import Settings
from databunker.crypto import Keyring, MasterKey
from databunker.services.context import Context
from databunker.services.identity import MODES
from databunker.services.system import initialise
from databunker.storage import Database
from databunker.storage.outbox import open_payload
from databunker.storage.tables import outbox
from support.vaults import (
    DATABASES,
    MASTER_KEY_HEX,
    ROOT_TOKEN,
    Clock,
    client_for,
    issue_user_token,
)

ACCESS_DENIED = {"status": "error", "message": "access denied"}
NOT_FOUND = {"status": "error", "message": "not found"}

# --- callers -------------------------------------------------------------------------------

ROOT = "root"
NONE = "none"  # no X-Bunker-Token header at all
MALFORMED = "malformed"  # a value that is not a token
MALFORMED_DEMO = "malformed-demo"  # the demo root token, on a vault not initialised with it
UNKNOWN = "unknown"  # a well-formed token that was never issued
EXPIRED = "expired"  # A's user token, after its time to live
OWNER = "owner"  # A's user token, acting on A
OTHER = "other"  # B's user token, acting on A
CALLERS = (ROOT, NONE, MALFORMED, MALFORMED_DEMO, UNKNOWN, EXPIRED, OWNER, OTHER)
DENIED_EVERYWHERE = (NONE, MALFORMED, MALFORMED_DEMO, UNKNOWN, EXPIRED, OTHER)

EVERYONE = frozenset(CALLERS)
NOBODY: frozenset[str] = frozenset()
ROOT_ONLY = frozenset({ROOT})
ROOT_AND_OWNER = frozenset({ROOT, OWNER})

EXPIRED_TTL = 60

# --- people --------------------------------------------------------------------------------

LOOKUP_MODES = ("token", "login", "email", "phone", "custom")
ANN = {
    "login": "ann",
    "email": "ann@example.com",
    "phone": "+447700900123",
    "custom": "cust-ann",
    "name": "Ann",
}
BOB = {
    "login": "bob",
    "email": "bob@example.com",
    "phone": "+447700900456",
    "custom": "cust-bob",
    "name": "Bob",
}
# Identities nobody holds (the token is well-formed but was never issued).
NOBODY_HOLDS = {
    "token": "9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f",
    "login": "nobody",
    "email": "nobody@example.com",
    "phone": "+447700900999",
    "custom": "cust-nobody",
}
CAROL = {"email": "carol@example.com", "name": "Carol"}
CHANGE = {"name": "Mallory"}
SELF_SERVICE = {"selfservice": {"user_record_change": True, "forget_me": True}}


# --- scenes, fresh or shared -----------------------------------------------------------------
#
# The matrix is thousands of tests. Every scene starts from a database that has never held
# a vault: on the servers a migrated database emptied (every table emptied, then the rows the
# migration itself wrote put back), on SQLite a copy of a migrated file. Building one costs
# far more than the request it is for, so the callers a route denies share one (``Scenes``).
# The other tests here take a fresh one from ``stage``.


@dataclass
class Scene:
    """One fresh vault holding A (Ann) and B (Bob), and a client that sends no token."""

    vault: Context
    clock: Clock
    client: TestClient
    ann: str
    bob: str
    _event_of_ann: str | None = None

    def identity(self, mode: str) -> str:
        return self.ann if mode == "token" else ANN[mode]

    def send(
        self,
        method: str,
        path: str,
        token: str | None,
        body: Any = None,
        header: str = "X-Bunker-Token",
    ) -> httpx.Response:
        headers = {header: token} if token is not None else {}
        return self.client.request(method, path, headers=headers, json=body)

    def as_root(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return self.send(method, path, ROOT_TOKEN, body)

    def credential(self, caller: str) -> str | None:
        """The X-Bunker-Token value ``caller`` presents (None: no header)."""
        if caller == ROOT:
            return ROOT_TOKEN
        if caller == NONE:
            return None
        if caller == MALFORMED:
            return "not-a-token"
        if caller == MALFORMED_DEMO:
            return "DEMO"
        if caller == UNKNOWN:
            return str(uuid.uuid4())
        if caller == OWNER:
            return issue_user_token(self.vault, self.ann)
        if caller == OTHER:
            return issue_user_token(self.vault, self.bob)
        assert caller == EXPIRED
        token = issue_user_token(self.vault, self.ann, ttl=EXPIRED_TTL)
        # The token works until its time is up: a denial below is due to expiry alone.
        assert self.send("GET", f"/v1/user/token/{self.ann}", token).status_code == 200
        self.clock.advance(EXPIRED_TTL + 1)
        return token

    def event_of_ann(self) -> str:
        """The atoken of the audit event written when A's record was created."""
        if self._event_of_ann is None:
            response = self.as_root("GET", f"/v1/audit/list/{self.ann}?limit=100")
            assert response.status_code == 200, response.text
            created = [r for r in response.json()["rows"] if r["title"] == "create user record"]
            assert len(created) == 1, created
            self._event_of_ann = str(created[0]["atoken"])
        return self._event_of_ann

    def admin_audit(self) -> list[dict[str, Any]]:
        response = self.as_root("GET", "/v1/audit/admin?limit=100")
        assert response.status_code == 200, response.text
        rows: list[dict[str, Any]] = response.json()["rows"]
        return rows


SceneFactory = Callable[..., Scene]


def _create(client: TestClient, profile: dict[str, str]) -> str:
    response = client.post("/v1/user", json=profile, headers={"X-Bunker-Token": ROOT_TOKEN})
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


def _scene(vault: Context, clock: Clock, stack: ExitStack) -> Scene:
    client = stack.enter_context(client_for(vault, None))
    return Scene(vault, clock, client, _create(client, ANN), _create(client, BOB))


@pytest.fixture
def stage(make_vault: Callable[..., Context], clock: Clock) -> Iterator[SceneFactory]:
    """``stage(settings)``: a vault with those settings, holding A and B."""
    with ExitStack() as stack:

        def build(settings: Mapping[str, Mapping[str, Any]] | None = None) -> Scene:
            return _scene(make_vault(**(settings or {})), clock, stack)

        yield build


@dataclass
class _Kept:
    key: object
    scene: Scene
    path: str
    resources: ExitStack


class Scenes:
    """Scenes for the matrix, each on a database that had never held a vault.

    ``fresh`` builds one for a single case. ``shared`` keeps one for the cases whose
    request must leave the scene as it was (the callers a route denies): one scene per kind
    of database, for one key (the matrix entry or lookup it was built for), whose path is
    worked out once, when it is built. A case that fails discards the shared scene, so every
    case runs on a scene that only cases which passed (and so were denied and, where the
    entry checks it, left everything untouched) have used before. Those cases' failed
    attempts are in the audit trail: a case on a shared scene looks only at the events
    written once it was about to send its request (``check_cell``). Nothing else on the
    scene moves on but the clock, by a minute for the expired token's caller, and nothing in
    a scene expires that soon.
    """

    def __init__(self, spare_databases: Callable[[str, str], str]) -> None:
        self._spare_databases = spare_databases
        self._kept: dict[str, _Kept] = {}

    @contextmanager
    def fresh(self, database: str, settings: Mapping[str, Mapping[str, Any]]) -> Iterator[Scene]:
        with ExitStack() as resources:
            yield self._build(self._spare_databases(database, "fresh"), settings, resources)

    @contextmanager
    def shared(
        self,
        database: str,
        key: object,
        settings: Mapping[str, Mapping[str, Any]],
        path: Callable[[Scene], str],
    ) -> Iterator[tuple[Scene, str]]:
        """The scene kept for ``key`` (built first if need be) and the path it addresses."""
        kept = self._kept.get(database)
        if kept is None or kept.key is not key:
            self.discard(database)
            with ExitStack() as resources:
                url = self._spare_databases(database, "shared")
                scene = self._build(url, settings, resources)
                kept = _Kept(key, scene, path(scene), resources.pop_all())
            self._kept[database] = kept
        try:
            yield kept.scene, kept.path
        except BaseException:
            self.discard(database)
            raise

    @staticmethod
    def _build(url: str, settings: Mapping[str, Mapping[str, Any]], resources: ExitStack) -> Scene:
        """A vault initialised on ``url`` (as ``make_vault`` would), holding A and B."""
        clock = Clock()
        storage = Database(url)
        resources.callback(storage.dispose)
        keyring = Keyring(MasterKey.from_hex(MASTER_KEY_HEX))
        initialise(storage, keyring, ROOT_TOKEN, clock())
        vault = Context(Settings.model_validate(settings), storage, keyring, clock, None)
        return _scene(vault, clock, resources)

    def discard(self, database: str) -> None:
        kept = self._kept.pop(database, None)
        if kept is not None:
            kept.resources.close()

    def close(self) -> None:
        for database in list(self._kept):
            self.discard(database)


@pytest.fixture(scope="module")
def scenes(spare_databases: Callable[[str, str], str]) -> Iterator[Scenes]:
    kept = Scenes(spare_databases)
    yield kept
    kept.close()


@pytest.fixture(params=DATABASES)
def database(request: pytest.FixtureRequest) -> str:
    """The kind of database a case of the matrix runs on (as ``database_url``'s)."""
    kind: str = request.param
    return kind


# --- effects a denied request must not have -----------------------------------------------


def ann_is_untouched(scene: Scene) -> None:
    response = scene.as_root("GET", f"/v1/user/token/{scene.ann}")
    assert response.status_code == 200, response.text
    assert response.json()["data"] == ANN


def nobody_was_created(scene: Scene) -> None:
    response = scene.as_root("GET", f"/v1/user/email/{CAROL['email']}")
    assert (response.status_code, response.json()) == (404, NOT_FOUND)


# --- the matrix ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One route (in one configuration) and the callers it lets through."""

    method: str
    template: str
    allowed: frozenset[str]
    path: Callable[[Scene], str]
    variant: str | None = None
    body: Any = None
    settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # The audit title a denied attempt is recorded under (None: the route is not audited).
    audit_title: str | None = None
    # A's own token is refused for want of an administrator's approval, not for lack of access.
    owner_needs_approval: bool = False
    # Checks, after a denial, that the request changed nothing.
    unchanged: Callable[[Scene], None] | None = None
    # Callers refused with something other than a 403: caller -> (status, body).
    refusals: Mapping[str, tuple[int, Any]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        suffix = f"[{self.variant}]" if self.variant else ""
        return f"{self.method} {self.template}{suffix}"


def fixed(path: str) -> Callable[[Scene], str]:
    return lambda _scene: path


def user_path(mode: str) -> Callable[[Scene], str]:
    return lambda scene: f"/v1/user/{mode}/{scene.identity(mode)}"


USER_ROUTE = "/v1/user/{mode}/{identity}"


def user_record_entries() -> Iterator[Entry]:
    for mode in LOOKUP_MODES:
        path = user_path(mode)
        yield Entry(
            "GET",
            USER_ROUTE,
            ROOT_AND_OWNER,
            path,
            variant=mode,
            audit_title=f"get user record by {mode}",
        )
        for method, title in (("PUT", "change user record"), ("DELETE", "delete user record")):
            body = CHANGE if method == "PUT" else None
            # Outside self-service A's change or erasure becomes a request (an "ok" answer).
            yield Entry(
                method,
                USER_ROUTE,
                ROOT_AND_OWNER,
                path,
                variant=mode,
                body=body,
                audit_title=f"{title} by {mode}",
                unchanged=ann_is_untouched,
            )
            yield Entry(
                method,
                USER_ROUTE,
                ROOT_AND_OWNER,
                path,
                variant=f"{mode},selfservice",
                body=body,
                settings=SELF_SERVICE,
                audit_title=f"{title} by {mode}",
                unchanged=ann_is_untouched,
            )


# --- user app records and sessions ------------------------------------------------------------

APP = "shop"
APP_RECORD = {"cart": ["A-1"]}
APP_SELF_SERVICE = {"selfservice": {"app_record_change": ["sh*"]}}
APP_ROUTE = "/v1/userapp/{mode}/{identity}/{app}"
APP_LIST_ROUTE = "/v1/userapp/{mode}/{identity}"
APP_MODES = ("token", "email")
SESSION_ROUTE = "/v1/session/{session}"
SESSIONS_ROUTE = "/v1/sessions/{mode}/{identity}"
ANNS_SESSION = "5b0c7e52-1d3a-4c8e-9f6b-2a7d4e8c0b13"
NEW_SESSION = "6c1d8f63-2e4b-4d9f-8a7c-3b8e5f9d1c24"
SESSION_DATA = {"login": "ann", "cookie": {"path": "/", "httpOnly": True}}


def with_ann_app(path: str) -> Callable[[Scene], str]:
    """``path`` (``{mode}``/``{identity}`` filled in for A) once A has an app record."""

    def build(scene: Scene) -> str:
        created = scene.as_root("POST", f"/v1/userapp/token/{scene.ann}/{APP}", APP_RECORD)
        assert created.status_code == 200, created.text
        mode = path.split("/")[3]
        return path.format(mode=mode, identity=scene.identity(mode), app=APP)

    return build


def ann_app_is_untouched(scene: Scene) -> None:
    response = scene.as_root("GET", f"/v1/userapp/token/{scene.ann}/{APP}")
    assert response.status_code == 200, response.text
    assert response.json()["data"] == APP_RECORD


def with_ann_session(path: str) -> Callable[[Scene], str]:
    """``path`` once A has a session (linked to A by its login)."""

    def build(scene: Scene) -> str:
        created = scene.as_root("POST", f"/v1/session/{ANNS_SESSION}", SESSION_DATA)
        assert created.status_code == 200, created.text
        if "{identity}" not in path:
            return path
        mode = path.split("/")[3]
        return path.format(mode=mode, identity=scene.identity(mode))

    return build


def ann_session_is_untouched(scene: Scene) -> None:
    response = scene.as_root("GET", f"/v1/session/{ANNS_SESSION}")
    assert response.status_code == 200, response.text
    assert response.json()["data"] == SESSION_DATA


def no_session_was_created(scene: Scene) -> None:
    response = scene.as_root("GET", f"/v1/session/{NEW_SESSION}")
    assert (response.status_code, response.json()) == (404, NOT_FOUND)


def app_record_entries() -> Iterator[Entry]:
    for mode in APP_MODES:
        path = with_ann_app(f"/v1/userapp/{mode}/{{identity}}/{{app}}")
        yield Entry(
            "GET",
            APP_ROUTE,
            ROOT_AND_OWNER,
            path,
            variant=mode,
            audit_title=f"get user app record by {mode}",
        )
        yield Entry(
            "GET",
            APP_LIST_ROUTE,
            ROOT_AND_OWNER,
            with_ann_app(f"/v1/userapp/{mode}/{{identity}}"),
            variant=mode,
            audit_title=f"get user app list by {mode}",
        )
        for method, title, body in (
            ("POST", "create user app record", CHANGE),
            ("PUT", "change user app record", CHANGE),
            ("DELETE", "delete user app record", None),
        ):
            # Outside self-service A's create or change becomes a request (an "ok" answer);
            # a delete, for which there is no request, is refused.
            yield Entry(
                method,
                APP_ROUTE,
                ROOT_ONLY if method == "DELETE" else ROOT_AND_OWNER,
                path,
                variant=mode,
                body=body,
                audit_title=f"{title} by {mode}",
                owner_needs_approval=method == "DELETE",
                unchanged=ann_app_is_untouched,
            )
            yield Entry(
                method,
                APP_ROUTE,
                ROOT_AND_OWNER,
                path,
                variant=f"{mode},selfservice",
                body=body,
                settings=APP_SELF_SERVICE,
                audit_title=f"{title} by {mode}",
                unchanged=ann_app_is_untouched,
            )
    yield Entry("GET", "/v1/userapps", ROOT_ONLY, fixed("/v1/userapps"))


def session_entries() -> Iterator[Entry]:
    anns_session = with_ann_session(f"/v1/session/{ANNS_SESSION}")
    # Creating a session is audited only once it is linked to a person: not for denials.
    yield Entry(
        "POST",
        SESSION_ROUTE,
        ROOT_ONLY,
        fixed(f"/v1/session/{NEW_SESSION}"),
        variant="new",
        body=SESSION_DATA,
        unchanged=no_session_was_created,
    )
    yield Entry(
        "POST",
        SESSION_ROUTE,
        ROOT_ONLY,
        anns_session,
        variant="overwrite",
        body={"login": "ann", "hijacked": True},
        unchanged=ann_session_is_untouched,
    )
    yield Entry("GET", SESSION_ROUTE, ROOT_AND_OWNER, anns_session, audit_title="get session")
    yield Entry(
        "DELETE",
        SESSION_ROUTE,
        ROOT_ONLY,
        anns_session,
        audit_title="delete session",
        unchanged=ann_session_is_untouched,
    )
    for mode in APP_MODES:
        yield Entry(
            "GET",
            SESSIONS_ROUTE,
            ROOT_AND_OWNER,
            with_ann_session(f"/v1/sessions/{mode}/{{identity}}"),
            variant=mode,
            audit_title="get all user sessions",
        )


# --- consent: legal bases, processing activities, agreements -------------------------------

CONSENT_BRIEF = "core-send-email-on-login"  # seeded at init; A may withdraw it directly
LOCKED_BRIEF = "terms"  # withdrawing it needs an administrator's approval
ACTIVITY = "analytics"
AGREEMENT_ROUTE = "/v1/agreement/{brief}/{mode}/{identity}"
AGREEMENTS_ROUTE = "/v1/agreements/{mode}/{identity}"
SEEDED_BASES = [
    ("core-send-email-on-login", "active", "Send email on login"),
    ("core-send-sms-on-login", "active", "Send SMS on login"),
]


def agreement_path(brief: str, mode: str, *, agreed: bool) -> Callable[[Scene], str]:
    """A's agreement for ``brief`` addressed by ``mode`` (given by root first if ``agreed``)."""

    def build(scene: Scene) -> str:
        if brief == LOCKED_BRIEF:
            body = {"usercontrol": False, "module": "signup-page"}
            defined = scene.as_root("POST", f"/v1/lbasis/{brief}", body)
            assert defined.status_code == 200, defined.text
        if agreed:
            given = scene.as_root("POST", f"/v1/agreement/{brief}/token/{scene.ann}")
            assert given.status_code == 200, given.text
        return f"/v1/agreement/{brief}/{mode}/{scene.identity(mode)}"

    return build


def with_ann_agreement(path: str) -> Callable[[Scene], str]:
    """``path`` once A has agreed to the consent brief."""
    give = agreement_path(CONSENT_BRIEF, "token", agreed=True)

    def build(scene: Scene) -> str:
        give(scene)
        return path

    return build


def agreements_path(mode: str) -> Callable[[Scene], str]:
    return lambda scene: f"/v1/agreements/{mode}/{scene.identity(mode)}"


def ann_has_no_agreements(scene: Scene) -> None:
    response = scene.as_root("GET", f"/v1/agreements/token/{scene.ann}")
    assert response.status_code == 200, response.text
    assert response.json()["rows"] == []


def ann_still_agrees(brief: str) -> Callable[[Scene], None]:
    def check(scene: Scene) -> None:
        response = scene.as_root("GET", f"/v1/agreement/{brief}/token/{scene.ann}")
        assert response.status_code == 200, response.text
        assert response.json()["data"]["status"] == "yes"

    return check


def catalogue_is_untouched(scene: Scene) -> None:
    response = scene.as_root("GET", "/v1/lbasis")
    assert response.status_code == 200, response.text
    rows = response.json()["rows"]
    assert [(r["brief"], r["status"], r["shortdesc"]) for r in rows] == SEEDED_BASES


def with_activity(*, linked: bool) -> Callable[[Scene], str]:
    """The processing activity's path (its link to the consent brief's, if ``linked``)."""

    def build(scene: Scene) -> str:
        created = scene.as_root("POST", f"/v1/pactivity/{ACTIVITY}", {"title": "Analytics"})
        assert created.status_code == 200, created.text
        if linked:
            link = scene.as_root("POST", f"/v1/pactivity/{ACTIVITY}/{CONSENT_BRIEF}")
            assert link.status_code == 200, link.text
        return f"/v1/pactivity/{ACTIVITY}"

    return build


def with_activity_link(*, linked: bool) -> Callable[[Scene], str]:
    activity = with_activity(linked=linked)
    return lambda scene: f"{activity(scene)}/{CONSENT_BRIEF}"


def activity_is(*, linked: bool | None) -> Callable[[Scene], None]:
    """The activity exists (with or without its link), or, for None, no activity exists."""

    def check(scene: Scene) -> None:
        response = scene.as_root("GET", "/v1/pactivity")
        assert response.status_code == 200, response.text
        rows = response.json()["rows"]
        if linked is None:
            assert rows == []
            return
        expected = CONSENT_BRIEF if linked else ""
        assert [(r["activity"], r["title"], r["legalbasis"]) for r in rows] == [
            (ACTIVITY, "Analytics", expected)
        ]

    return check


def consent_entries() -> Iterator[Entry]:
    yield Entry("GET", "/v1/sys/cookiesettings", EVERYONE, fixed("/v1/sys/cookiesettings"))
    yield Entry("GET", "/v1/lbasis", ROOT_ONLY, fixed("/v1/lbasis"))
    yield Entry(
        "POST",
        "/v1/lbasis/{brief}",
        ROOT_ONLY,
        fixed("/v1/lbasis/newsletter"),
        variant="new",
        body={"shortdesc": "News"},
        unchanged=catalogue_is_untouched,
    )
    yield Entry(
        "POST",
        "/v1/lbasis/{brief}",
        ROOT_ONLY,
        fixed(f"/v1/lbasis/{CONSENT_BRIEF}"),
        variant="change",
        body={"shortdesc": "Changed", "status": "disabled"},
        unchanged=catalogue_is_untouched,
    )
    yield Entry(
        "DELETE",
        "/v1/lbasis/{brief}",
        ROOT_ONLY,
        fixed(f"/v1/lbasis/{CONSENT_BRIEF}"),
        unchanged=catalogue_is_untouched,
    )
    yield Entry("GET", "/v1/pactivity", ROOT_ONLY, fixed("/v1/pactivity"))
    yield Entry(
        "POST",
        "/v1/pactivity/{activity}",
        ROOT_ONLY,
        fixed(f"/v1/pactivity/{ACTIVITY}"),
        body={"title": "Tracking"},
        unchanged=activity_is(linked=None),
    )
    yield Entry(
        "DELETE",
        "/v1/pactivity/{activity}",
        ROOT_ONLY,
        with_activity(linked=True),
        unchanged=activity_is(linked=True),
    )
    yield Entry(
        "POST",
        "/v1/pactivity/{activity}/{brief}",
        ROOT_ONLY,
        with_activity_link(linked=False),
        unchanged=activity_is(linked=False),
    )
    yield Entry(
        "DELETE",
        "/v1/pactivity/{activity}/{brief}",
        ROOT_ONLY,
        with_activity_link(linked=True),
        unchanged=activity_is(linked=True),
    )
    yield Entry(
        "DELETE",
        "/v1/agreement/{brief}",
        ROOT_ONLY,
        with_ann_agreement(f"/v1/agreement/{CONSENT_BRIEF}"),
        unchanged=ann_still_agrees(CONSENT_BRIEF),
    )
    for mode in LOOKUP_MODES:
        # Consent by email or phone may be given with no token at all (a login page);
        # a token that is sent must be valid.
        yield Entry(
            "POST",
            AGREEMENT_ROUTE,
            (ROOT_AND_OWNER | {NONE}) if mode in ("email", "phone") else ROOT_AND_OWNER,
            agreement_path(CONSENT_BRIEF, mode, agreed=False),
            variant=mode,
            audit_title=f"accept agreement for {CONSENT_BRIEF}",
            unchanged=ann_has_no_agreements,
        )
        # Withdrawing is never anonymous; A's withdrawal of a locked consent is a request.
        for brief in (CONSENT_BRIEF, LOCKED_BRIEF):
            if brief == LOCKED_BRIEF and mode not in ("token", "email"):
                continue
            yield Entry(
                "DELETE",
                AGREEMENT_ROUTE,
                ROOT_AND_OWNER,
                agreement_path(brief, mode, agreed=True),
                variant=mode if brief == CONSENT_BRIEF else f"{mode},usercontrol off",
                audit_title=f"withdraw agreement for {brief}",
                unchanged=ann_still_agrees(brief),
            )
        yield Entry(
            "GET",
            AGREEMENT_ROUTE,
            ROOT_AND_OWNER,
            agreement_path(CONSENT_BRIEF, mode, agreed=True),
            variant=mode,
            audit_title=f"get agreements for {CONSENT_BRIEF}",
        )
        yield Entry(
            "GET",
            AGREEMENTS_ROUTE,
            ROOT_AND_OWNER,
            agreements_path(mode),
            variant=mode,
            audit_title=f"get agreements for {mode}",
        )


# --- shared records and data retention -----------------------------------------------------

SHARE_ROUTE = "/v1/sharedrecord/{mode}/{identity}"
EXP_START_ROUTE = "/v1/exp/start/{mode}/{identity}"
EXP_STATUS_ROUTE = "/v1/exp/status/{mode}/{identity}"
EXP_CANCEL_ROUTE = "/v1/exp/cancel/{mode}/{identity}"
SHARE_BODY = {"fields": "name"}


def shared_record_of_ann(scene: Scene) -> str:
    """``/v1/get/<record>`` for a record root shared of A's profile."""
    created = scene.as_root("POST", f"/v1/sharedrecord/token/{scene.ann}", SHARE_BODY)
    assert created.status_code == 200, created.text
    return f"/v1/get/{created.json()['record']}"


def start_anns_retention(scene: Scene) -> str:
    started = scene.as_root("POST", f"/v1/exp/start/token/{scene.ann}", {"expiration": "1d"})
    assert started.status_code == 200, started.text
    return str(started.json()["exptoken"])


def exp_link(link: str) -> Callable[[Scene], str]:
    return lambda scene: f"/v1/exp/{link}/{start_anns_retention(scene)}"


def exp_path(action: str, mode: str, *, started: bool = False) -> Callable[[Scene], str]:
    def build(scene: Scene) -> str:
        if started:
            start_anns_retention(scene)
        return f"/v1/exp/{action}/{mode}/{scene.identity(mode)}"

    return build


def anns_retention_is(status: str) -> Callable[[Scene], None]:
    def check(scene: Scene) -> None:
        response = scene.as_root("GET", f"/v1/exp/status/token/{scene.ann}")
        assert response.status_code == 200, response.text
        assert response.json()["expstatus"] == status

    return check


def sharing_and_retention_entries() -> Iterator[Entry]:
    for mode in APP_MODES:
        yield Entry(
            "POST",
            SHARE_ROUTE,
            ROOT_AND_OWNER,
            lambda scene, mode=mode: f"/v1/sharedrecord/{mode}/{scene.identity(mode)}",
            variant=mode,
            body=SHARE_BODY,
            audit_title=f"create shareable record by {mode}",
        )
        # Only root starts a retention: A could otherwise erase themselves through its link.
        yield Entry(
            "POST",
            EXP_START_ROUTE,
            ROOT_ONLY,
            exp_path("start", mode),
            variant=mode,
            audit_title=f"initiate user record expiration by {mode}",
            unchanged=anns_retention_is(""),
        )
        yield Entry(
            "GET",
            EXP_STATUS_ROUTE,
            ROOT_AND_OWNER,
            exp_path("status", mode, started=True),
            variant=mode,
            audit_title=f"get expiration status by {mode}",
        )
        yield Entry(
            "DELETE",
            EXP_CANCEL_ROUTE,
            ROOT_AND_OWNER,
            exp_path("cancel", mode),
            variant=f"{mode},nothing started",
            audit_title=f"clear user expiration by {mode}",
        )
        # A retention root started is cancelled by root only.
        yield Entry(
            "DELETE",
            EXP_CANCEL_ROUTE,
            ROOT_ONLY,
            exp_path("cancel", mode, started=True),
            variant=f"{mode},started by root",
            audit_title=f"clear user expiration by {mode}",
            owner_needs_approval=True,
            unchanged=anns_retention_is("wait"),
        )
    # The record or expiration token in the path is the credential: anyone holding it may use it.
    yield Entry("GET", "/v1/get/{record}", EVERYONE, shared_record_of_ann)
    yield Entry("GET", "/v1/exp/retain/{exptoken}", EVERYONE, exp_link("retain"))
    yield Entry("GET", "/v1/exp/delete/{exptoken}", EVERYONE, exp_link("delete"))


# --- user requests and data export ---------------------------------------------------------

REQUEST_ROUTE = "/v1/request/{rtoken}"


def anns_request(scene: Scene) -> str:
    """A change-profile request of A's (made with A's own token)."""
    own = issue_user_token(scene.vault, scene.ann)
    made = scene.send("PUT", f"/v1/user/token/{scene.ann}", own, CHANGE)
    assert made.status_code == 200, made.text
    return str(made.json()["rtoken"])


def anns_request_path(scene: Scene) -> str:
    return f"/v1/request/{anns_request(scene)}"


def anns_request_is_open(scene: Scene) -> None:
    ann_is_untouched(scene)
    response = scene.as_root("GET", f"/v1/requests/token/{scene.ann}")
    assert response.status_code == 200, response.text
    assert [row["status"] for row in response.json()["rows"]] == ["open"]


def request_and_export_entries() -> Iterator[Entry]:
    yield Entry("GET", "/v1/requests", ROOT_ONLY, fixed("/v1/requests"))
    for mode in APP_MODES:
        yield Entry(
            "GET",
            "/v1/requests/{mode}/{identity}",
            ROOT_AND_OWNER,
            lambda scene, mode=mode: f"/v1/requests/{mode}/{scene.identity(mode)}",
            variant=mode,
            audit_title="get user privacy requests",
        )
        yield Entry(
            "GET",
            "/v1/export/{mode}/{identity}",
            ROOT_AND_OWNER,
            lambda scene, mode=mode: f"/v1/export/{mode}/{scene.identity(mode)}",
            variant=mode,
            audit_title=f"export user data by {mode}",
        )
    yield Entry(
        "GET",
        REQUEST_ROUTE,
        ROOT_AND_OWNER,
        anns_request_path,
        audit_title="get user request by request token",
    )
    # Only root approves: A may not approve even A's own request.
    yield Entry(
        "POST",
        REQUEST_ROUTE,
        ROOT_ONLY,
        anns_request_path,
        audit_title="approve user request",
        unchanged=anns_request_is_open,
    )
    yield Entry(
        "DELETE",
        REQUEST_ROUTE,
        ROOT_AND_OWNER,
        anns_request_path,
        audit_title="cancel user request",
        unchanged=anns_request_is_open,
    )


# --- passwordless login ------------------------------------------------------------------------

LOGIN_SETTINGS = {"generic": {"login_captcha": False}, "smtp": {"server": "127.0.0.1"}}


def new_captcha_image(scene: Scene) -> str:
    response = scene.send("GET", "/v1/captcha", None)
    assert response.status_code == 200, response.text
    return f"/v1/captcha/{response.json()['captcha']}"


def login_with_anns_code(scene: Scene) -> str:
    """The login path with the code A was just sent by email."""
    response = scene.send("GET", f"/v1/prelogin/email/{ANN['email']}/000000/none", None)
    assert response.json() == {"status": "ok", "result": "done"}, response.text
    key = scene.vault.keyring.service_key("outbox")
    with scene.vault.database.transaction() as conn:
        row = conn.execute(sa.select(outbox).where(outbox.c.kind == "email")).one()
    found = re.search(r"\b\d{6}\b", open_payload(key, row.id, row.payload)["text"])
    assert found, "the email carries no 6-digit code"
    code = found.group(0)
    return f"/v1/login/email/{ANN['email']}/{code}"


def login_entries() -> Iterator[Entry]:
    yield Entry("GET", "/v1/captcha", EVERYONE, fixed("/v1/captcha"))
    yield Entry("GET", "/v1/captcha/{captcha}", EVERYONE, new_captcha_image)
    yield Entry(
        "GET",
        "/v1/prelogin/{mode}/{identity}/{code}/{captcha}",
        EVERYONE,
        fixed(f"/v1/prelogin/email/{ANN['email']}/000000/none"),
        settings=LOGIN_SETTINGS,
    )
    yield Entry(
        "GET",
        "/v1/login/{mode}/{identity}/{code}",
        EVERYONE,
        login_with_anns_code,
        settings=LOGIN_SETTINGS,
    )
    # Each user token logs itself out; root has no session to end.
    yield Entry(
        "POST",
        "/v1/logout",
        frozenset({OWNER, OTHER}),
        fixed("/v1/logout"),
        audit_title="user logout",
        refusals={ROOT: (400, {"status": "error", "message": "only a user token can log out"})},
    )


MATRIX: tuple[Entry, ...] = (
    Entry("GET", "/v1/status", EVERYONE, fixed("/v1/status")),
    Entry("GET", "/status", EVERYONE, fixed("/status")),
    Entry("GET", "/v1/metrics", EVERYONE, fixed("/v1/metrics")),
    Entry("GET", "/v1/sys/uiconfiguration", EVERYONE, fixed("/v1/sys/uiconfiguration")),
    Entry("GET", "/v1/sys/ready", EVERYONE, fixed("/v1/sys/ready")),
    Entry("GET", "/v1/sys/configuration", ROOT_ONLY, fixed("/v1/sys/configuration")),
    # The API's documents and reference page hold no data: public.
    Entry("GET", "/v1/openapi.json", EVERYONE, fixed("/v1/openapi.json")),
    Entry("GET", "/v2/openapi.json", EVERYONE, fixed("/v2/openapi.json")),
    Entry("GET", "/docs", EVERYONE, fixed("/docs")),
    Entry("GET", "/docs/reference.css", EVERYONE, fixed("/docs/reference.css")),
    Entry("GET", "/v1/sys/seal", EVERYONE, fixed("/v1/sys/seal")),
    Entry("POST", "/v1/sys/unseal", EVERYONE, fixed("/v1/sys/unseal"), body={"share": "x"}),
    Entry("POST", "/v1/sys/seal", ROOT_ONLY, fixed("/v1/sys/seal"), audit_title="seal vault"),
    Entry("GET", "/v1/sys/keys", ROOT_ONLY, fixed("/v1/sys/keys")),
    Entry(
        "POST",
        "/v1/sys/keys/rotate",
        ROOT_ONLY,
        fixed("/v1/sys/keys/rotate"),
        audit_title="rotate keys",
    ),
    Entry("GET", "/v1/sys/audit/head", ROOT_ONLY, fixed("/v1/sys/audit/head")),
    Entry("GET", "/v1/audit/admin", ROOT_ONLY, fixed("/v1/audit/admin")),
    Entry(
        "POST",
        "/v1/users",
        ROOT_ONLY,
        fixed("/v1/users"),
        variant="list_users",
        settings={"generic": {"list_users": True}},
    ),
    Entry("POST", "/v1/users", NOBODY, fixed("/v1/users"), variant="list_users off"),
    Entry(
        "POST",
        "/v1/user",
        ROOT_ONLY,
        fixed("/v1/user"),
        body=CAROL,
        settings={"generic": {"create_user_without_access_token": False}},
        audit_title="create user record",
        unchanged=nobody_was_created,
    ),
    Entry(
        "POST",
        "/v1/user",
        EVERYONE,
        fixed("/v1/user"),
        variant="without access token",
        body=CAROL,
        settings={"generic": {"create_user_without_access_token": True}},
    ),
    *user_record_entries(),
    *app_record_entries(),
    *session_entries(),
    *consent_entries(),
    *sharing_and_retention_entries(),
    *request_and_export_entries(),
    *login_entries(),
    Entry(
        "GET",
        "/v1/audit/list/{token}",
        ROOT_AND_OWNER,
        lambda scene: f"/v1/audit/list/{scene.ann}",
        audit_title="view audit events",
    ),
    Entry(
        "GET",
        "/v1/audit/get/{atoken}",
        ROOT_AND_OWNER,
        lambda scene: f"/v1/audit/get/{scene.event_of_ann()}",
        audit_title="view audit event",
    ),
)

OPENAPI_DOCUMENTS = ("/v1/openapi.json", "/v2/openapi.json")

CELLS = [
    pytest.param(entry, caller, id=f"{entry.name}-{caller}")
    for entry in MATRIX
    for caller in CALLERS
]


def leaves_the_scene_as_built(entry: Entry, caller: str) -> bool:
    """Whether ``caller``'s request to ``entry`` must be a plain denial, which changes
    nothing, so that the caller may share a scene with the other callers the entry denies."""
    return (
        caller not in entry.allowed
        and caller not in entry.refusals
        and not (caller == OWNER and entry.owner_needs_approval)
    )


def audit_events(scene: Scene) -> set[str]:
    return {str(row["atoken"]) for row in scene.admin_audit()}


def assert_denial_audited(
    scene: Scene, entry: Entry, message: str, earlier: set[str] | None = None
) -> None:
    """The denial, and nothing else, was audited as a failure since the ``earlier`` events."""
    earlier = earlier or set()
    failures = [
        row
        for row in scene.admin_audit()
        if row["status"] != "ok" and str(row["atoken"]) not in earlier
    ]
    assert [(row["title"], row["status"], row.get("msg")) for row in failures] == [
        (entry.audit_title, "error", message)
    ]
    # An attempt on A is filed under A (or under nobody), never under someone else.
    assert failures[0].get("record", scene.ann) == scene.ann


@pytest.mark.parametrize(("entry", "caller"), CELLS)
def test_authorisation_matrix(database: str, scenes: Scenes, entry: Entry, caller: str) -> None:
    if leaves_the_scene_as_built(entry, caller):
        with scenes.shared(database, entry, entry.settings, entry.path) as (scene, path):
            check_cell(scene, path, entry, caller, shared=True)
    else:
        with scenes.fresh(database, entry.settings) as scene:
            check_cell(scene, entry.path(scene), entry, caller, shared=False)


def check_cell(scene: Scene, path: str, entry: Entry, caller: str, *, shared: bool) -> None:
    """``caller``'s request to ``entry``; on a ``shared`` scene, audit events written before
    it are another case's."""
    token = scene.credential(caller)
    earlier = audit_events(scene) if shared and entry.audit_title is not None else None
    response = scene.send(entry.method, path, token, entry.body)

    if caller in entry.refusals:
        assert (response.status_code, response.json()) == entry.refusals[caller]
        return
    if caller in entry.allowed:
        assert 200 <= response.status_code < 300, response.text
        if entry.template in OPENAPI_DOCUMENTS:
            assert response.json()["openapi"] == "3.1.0"
        elif response.headers["content-type"].startswith("application/json"):
            assert response.json()["status"] == "ok"
        return

    assert response.status_code == 403, response.text
    body = response.json()
    if caller == OWNER and entry.owner_needs_approval:
        assert body["status"] == "error"
        assert isinstance(body["message"], str)
        assert body["message"]
    else:
        assert body == ACCESS_DENIED
    if entry.audit_title is not None:
        assert_denial_audited(scene, entry, body["message"], earlier)
    if entry.unchanged is not None:
        entry.unchanged(scene)


def test_every_route_has_a_matrix_entry(vault: Context) -> None:
    served: set[tuple[str, str]] = set()
    # The portal's HTML pages (databunker.web) take no X-Bunker-Token: they run on a cookie
    # session, and their own access rules are tested in tests/integration/web/.
    pages = {(method, r.path) for r in web.routes for method in (r.methods or set())}
    for route in build_app(vault).starlette.routes:
        assert isinstance(route, Route), f"{route!r}: teach the matrix this kind of route"
        if any((method, route.path) in pages for method in route.methods or set()):
            continue
        # One route serves every v2 operation: their matrices are per operation, in
        # tests/integration/api/v2/.
        if route.path == "/v2/{operation:path}":
            continue
        served.update((method, route.path) for method in (route.methods or set()) - {"HEAD"})
    in_matrix = {(entry.method, entry.template) for entry in MATRIX}
    assert sorted(served - in_matrix) == [], "routes without an authorisation matrix entry"
    assert sorted(in_matrix - served) == [], "matrix entries for routes the app does not serve"


def test_every_lookup_mode_is_in_the_matrix() -> None:
    assert set(LOOKUP_MODES) == set(MODES)
    for method in ("GET", "PUT", "DELETE"):
        variants = {e.variant for e in MATRIX if (e.method, e.template) == (method, USER_ROUTE)}
        assert {v.split(",")[0] for v in variants if v} == set(MODES), method


# --- existence does not leak ---------------------------------------------------------------


@dataclass(frozen=True)
class Lookup:
    """A request addressing A, and the same request addressing someone who does not exist."""

    method: str
    template: str
    variant: str | None
    existing: Callable[[Scene], str]
    missing: str
    root_on_missing: tuple[int, dict[str, Any]]
    body: Any = None

    @property
    def name(self) -> str:
        suffix = f"[{self.variant}]" if self.variant else ""
        return f"{self.method} {self.template}{suffix}"


def user_lookups() -> Iterator[Lookup]:
    for mode in LOOKUP_MODES:
        for method in ("GET", "PUT", "DELETE"):
            missing = f"/v1/user/{mode}/{NOBODY_HOLDS[mode]}"
            root_on_missing = (404, NOT_FOUND)
            if (method, mode) == ("DELETE", "email"):
                # Databunker v1: forgetting an email nobody holds is done (nothing to forget).
                root_on_missing = (200, {"status": "ok", "result": "done"})
            body = CHANGE if method == "PUT" else None
            yield Lookup(method, USER_ROUTE, mode, user_path(mode), missing, root_on_missing, body)


def app_and_session_lookups() -> Iterator[Lookup]:
    nobody = NOBODY_HOLDS["token"]
    for method in ("POST", "GET", "PUT", "DELETE"):
        yield Lookup(
            method,
            APP_ROUTE,
            "token",
            with_ann_app("/v1/userapp/token/{identity}/{app}"),
            f"/v1/userapp/token/{nobody}/{APP}",
            (404, NOT_FOUND),
            None if method in ("GET", "DELETE") else CHANGE,
        )
    yield Lookup(
        "GET",
        APP_LIST_ROUTE,
        "email",
        with_ann_app("/v1/userapp/email/{identity}"),
        f"/v1/userapp/email/{NOBODY_HOLDS['email']}",
        (404, NOT_FOUND),
    )
    yield Lookup(
        "GET",
        SESSION_ROUTE,
        None,
        with_ann_session(f"/v1/session/{ANNS_SESSION}"),
        f"/v1/session/{nobody}",
        (404, NOT_FOUND),
    )
    yield Lookup(
        "GET",
        SESSIONS_ROUTE,
        "login",
        with_ann_session("/v1/sessions/login/{identity}"),
        f"/v1/sessions/login/{NOBODY_HOLDS['login']}",
        (404, NOT_FOUND),
    )


def consent_lookups() -> Iterator[Lookup]:
    nobody = NOBODY_HOLDS["token"]
    for method in ("POST", "GET", "DELETE"):
        yield Lookup(
            method,
            AGREEMENT_ROUTE,
            "token",
            agreement_path(CONSENT_BRIEF, "token", agreed=method != "POST"),
            f"/v1/agreement/{CONSENT_BRIEF}/token/{nobody}",
            (404, NOT_FOUND),
        )
    yield Lookup(
        "GET",
        AGREEMENT_ROUTE,
        "email",
        agreement_path(CONSENT_BRIEF, "email", agreed=True),
        f"/v1/agreement/{CONSENT_BRIEF}/email/{NOBODY_HOLDS['email']}",
        (404, NOT_FOUND),
    )
    # Root may withdraw a consent given by an email nobody holds yet: nothing there is done.
    yield Lookup(
        "DELETE",
        AGREEMENT_ROUTE,
        "email",
        agreement_path(CONSENT_BRIEF, "email", agreed=True),
        f"/v1/agreement/{CONSENT_BRIEF}/email/{NOBODY_HOLDS['email']}",
        (200, {"status": "ok"}),
    )
    for mode in ("token", "phone"):
        yield Lookup(
            "GET",
            AGREEMENTS_ROUTE,
            mode,
            agreements_path(mode),
            f"/v1/agreements/{mode}/{NOBODY_HOLDS[mode]}",
            (404, NOT_FOUND),
        )


def sharing_and_retention_lookups() -> Iterator[Lookup]:
    for method, route, mode, body in (
        ("POST", SHARE_ROUTE, "token", SHARE_BODY),
        ("POST", EXP_START_ROUTE, "email", None),
        ("GET", EXP_STATUS_ROUTE, "login", None),
        ("DELETE", EXP_CANCEL_ROUTE, "phone", None),
    ):
        prefix = route.removesuffix("/{mode}/{identity}")
        yield Lookup(
            method,
            route,
            mode,
            lambda scene, prefix=prefix, mode=mode: f"{prefix}/{mode}/{scene.identity(mode)}",
            f"{prefix}/{mode}/{NOBODY_HOLDS[mode]}",
            (404, NOT_FOUND),
            body,
        )


def request_and_export_lookups() -> Iterator[Lookup]:
    nobody = NOBODY_HOLDS["token"]
    for method in ("GET", "POST", "DELETE"):
        yield Lookup(
            method,
            REQUEST_ROUTE,
            None,
            anns_request_path,
            f"/v1/request/{nobody}",
            (404, NOT_FOUND),
        )
    for route in ("/v1/requests", "/v1/export"):
        yield Lookup(
            "GET",
            f"{route}/{{mode}}/{{identity}}",
            "email",
            lambda scene, route=route: f"{route}/email/{ANN['email']}",
            f"{route}/email/{NOBODY_HOLDS['email']}",
            (404, NOT_FOUND),
        )


LOOKUPS: tuple[Lookup, ...] = (
    *user_lookups(),
    *app_and_session_lookups(),
    *consent_lookups(),
    *sharing_and_retention_lookups(),
    *request_and_export_lookups(),
    Lookup(
        "GET",
        "/v1/audit/list/{token}",
        None,
        lambda scene: f"/v1/audit/list/{scene.ann}",
        f"/v1/audit/list/{NOBODY_HOLDS['token']}",
        (200, {"status": "ok", "total": 0, "rows": []}),
    ),
    Lookup(
        "GET",
        "/v1/audit/get/{atoken}",
        None,
        lambda scene: f"/v1/audit/get/{scene.event_of_ann()}",
        f"/v1/audit/get/{NOBODY_HOLDS['token']}",
        (404, NOT_FOUND),
    ),
)


@pytest.mark.parametrize(
    ("lookup", "caller"),
    [
        pytest.param(lookup, caller, id=f"{lookup.name}-{caller}")
        for lookup in LOOKUPS
        for caller in DENIED_EVERYWHERE
    ],
)
def test_a_denial_does_not_reveal_whether_the_person_exists(
    database: str, scenes: Scenes, lookup: Lookup, caller: str
) -> None:
    # Every caller here is denied: they share the scene built for the lookup.
    with scenes.shared(database, lookup, {}, lookup.existing) as (scene, existing_path):
        token = scene.credential(caller)

        existing = scene.send(lookup.method, existing_path, token, lookup.body)
        missing = scene.send(lookup.method, lookup.missing, token, lookup.body)

        assert (existing.status_code, existing.json()) == (403, ACCESS_DENIED)
        assert (missing.status_code, missing.json()) == (403, ACCESS_DENIED)
        assert missing.headers["content-type"] == existing.headers["content-type"]


@pytest.mark.parametrize("lookup", [pytest.param(lookup, id=lookup.name) for lookup in LOOKUPS])
def test_only_root_learns_whether_the_person_exists(stage: SceneFactory, lookup: Lookup) -> None:
    scene = stage()

    missing = scene.as_root(lookup.method, lookup.missing, lookup.body)

    assert (missing.status_code, missing.json()) == lookup.root_on_missing


# --- the header ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header", ["x-bunker-token", "X-BUNKER-TOKEN", "X-Bunker-Token", "x-BuNkEr-tOkEn"]
)
@pytest.mark.parametrize(
    ("caller", "route"),
    [
        pytest.param(ROOT, "/v1/sys/configuration", id="root"),
        pytest.param(OWNER, "/v1/user/token/{ann}", id="owner"),
    ],
)
def test_the_token_header_name_is_case_insensitive(
    stage: SceneFactory, header: str, caller: str, route: str
) -> None:
    scene = stage()
    path = route.format(ann=scene.ann)

    response = scene.send("GET", path, scene.credential(caller), header=header)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ok"
