"""System routes and the edge of every exchange: status, configuration, metrics, routing
errors, CORS preflight, security headers, and robustness against garbage input.
"""

from __future__ import annotations

import gc
import logging
import random
import re
import threading
import time
import uuid
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from httpx2 import Response
from starlette.testclient import TestClient

from databunker.app import build_app
from databunker.logs import JSONFormatter
from databunker.services.context import Context
from databunker.storage import LATEST_VERSION
from databunker.storage.repositories import set_meta
from support.vaults import ROOT_TOKEN, client_for
from support.vaults import create_user as create

ENDPOINT_MISSING = b'{"status":"error", "message":"endpoint is missing"}'
UI_KEYS = {
    "LogoLink",
    "CompanyTitle",
    "CompanyVAT",
    "CompanyCity",
    "CompanyLink",
    "CompanyCountry",
    "CompanyAddress",
    "TermOfServiceTitle",
    "TermOfServiceLink",
    "PrivacyPolicyTitle",
    "PrivacyPolicyLink",
    "CustomCSSLink",
    "MagicLookup",
}
USER_ROUTE = "/v1/user/{mode}/{identity}"


def assert_error(response: Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"status": "error", "message": message}


def metric_samples(text: str, name: str) -> list[dict[str, str]]:
    """The label sets of every sample of ``name`` in a Prometheus text exposition."""
    samples = []
    for line in text.splitlines():
        match = re.match(rf"^{name}\{{(.*)\}} ", line)
        if match:
            samples.append(dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(1))))
    return samples


def allowed(response: Response) -> set[str]:
    return {m.strip() for m in response.headers.get("allow", "").split(",") if m.strip()}


# -- status and configuration ----------------------------------------------------------------
@pytest.mark.parametrize("path", ["/v1/status", "/status", "/v1/status/", "/status/"])
def test_status_is_public(anonymous: TestClient, path: str) -> None:
    response = anonymous.get(path, follow_redirects=False)
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_ready_is_public_and_says_so(anonymous: TestClient) -> None:
    response = anonymous.get("/v1/sys/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "ready": True}


@pytest.mark.parametrize(
    ("shift", "reason"),
    [
        (-1, "database schema is older than this server's: it is not migrated yet"),
        (1, "database schema is newer than this server's: upgrade this server"),
    ],
)
def test_ready_is_503_while_the_schema_is_not_this_servers(
    vault: Context, shift: int, reason: str
) -> None:
    with client_for(vault, None) as anonymous:
        with vault.database.transaction() as conn:
            set_meta(conn, "schema_version", str(LATEST_VERSION + shift))
        response = anonymous.get("/v1/sys/ready")
        assert response.status_code == 503
        assert response.json() == {"status": "error", "message": reason, "ready": False}
        with vault.database.transaction() as conn:
            set_meta(conn, "schema_version", str(LATEST_VERSION))
        assert anonymous.get("/v1/sys/ready").status_code == 200


def test_ready_is_503_while_the_database_is_out_of_reach(vault: Context) -> None:
    database = vault.database
    reachable = database.engine
    with client_for(vault, None) as anonymous:
        # A database server that is gone: nothing listens on port 9 of this machine.
        database.engine = sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:9/none")
        try:
            response = anonymous.get("/v1/sys/ready")
        finally:
            database.engine.dispose()
            database.engine = reachable
    assert response.status_code == 503
    assert response.json() == {
        "status": "error",
        "message": "database unavailable",
        "ready": False,
    }


def test_ui_configuration_is_public_with_pascal_case_keys(make_vault: Any) -> None:
    vault = make_vault(ui={"company_title": "ACME Ltd", "custom_css_link": "https://x.test/a.css"})
    with client_for(vault, None) as anonymous:
        response = anonymous.get("/v1/sys/uiconfiguration")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"status", "ui"}
    assert body["status"] == "ok"
    assert set(body["ui"]) == UI_KEYS
    assert body["ui"]["CompanyTitle"] == "ACME Ltd"
    assert body["ui"]["CustomCSSLink"] == "https://x.test/a.css"
    assert body["ui"]["MagicLookup"] is False


def test_server_configuration_is_for_root_only(anonymous: TestClient) -> None:
    assert_error(anonymous.get("/v1/sys/configuration"), 403, "access denied")


def test_server_configuration_hides_secrets(make_vault: Any) -> None:
    vault = make_vault(
        smtp={"pass": "hunter2", "user": "mailer"},
        sms={"token": "sms-secret-42", "basic_auth": "user:pw-secret-43"},
        generic={"create_user_without_access_token": True},
    )
    with client_for(vault) as root:
        response = root.get("/v1/sys/configuration")
    assert response.status_code == 200
    for secret in ("hunter2", "sms-secret-42", "pw-secret-43"):
        assert secret not in response.text
    body = response.json()
    assert body["status"] == "ok"
    configuration = body["configuration"]
    assert configuration["Generic"]["CreateUserWithoutAccessToken"] is True
    assert configuration["SMTP"]["User"] == "mailer"
    assert configuration["SMTP"]["Pass"] != ""


# -- metrics ---------------------------------------------------------------------------------
def test_metrics_are_labelled_by_route_template_never_by_identity(api: TestClient) -> None:
    create(api, {"login": "ann", "email": "ann@example.com"})
    assert api.get("/v1/user/email/ann@example.com").status_code == 200
    assert api.get("/v1/user/email/nobody@example.com").status_code == 404
    assert api.get("/v1/nowhere/ann@example.com").status_code == 404

    response = api.get("/v1/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    samples = metric_samples(text, "databunker_http_requests_total")
    user_reads = [s for s in samples if s.get("route") == USER_ROUTE and s.get("method") == "GET"]
    assert {s["status"] for s in user_reads} == {"200", "404"}
    assert any(s.get("route") == "/v1/user" and s.get("method") == "POST" for s in samples)
    assert "example.com" not in text
    assert "nowhere" not in text


def test_metrics_count_every_request_and_fold_unknown_methods_into_one_label(
    api: TestClient,
) -> None:
    for _ in range(3):
        assert api.get("/v1/status").status_code == 200
    for number in range(5):  # a client inventing methods cannot grow the label sets
        api.request(f"BREW{number}", "/v1/status")

    text = api.get("/v1/metrics").text
    counts: dict[str, float] = {}
    for line in text.splitlines():
        match = re.match(r"^databunker_http_requests_total\{(.*)\} (\S+)$", line)
        if match:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
            if labels["route"] == "/v1/status":
                counts[labels["method"]] = counts.get(labels["method"], 0) + float(match[2])
    assert counts == {"GET": 3.0, "other": 5.0}
    assert "BREW" not in text


def test_logs_never_carry_an_identity(api: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        token = create(api, {"login": "ann", "email": "ann@example.com"})
        assert api.get("/v1/user/email/ann@example.com").status_code == 200
        assert api.get("/v1/user/login/ann").status_code == 200
        assert api.get("/v1/nowhere/ann@example.com").status_code == 404
    server_records = [r for r in caplog.records if r.name.startswith("databunker")]
    assert server_records
    for record in server_records:
        logged = str(vars(record)) + record.getMessage()
        assert "example.com" not in logged
        assert token not in logged


# -- routing errors --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path", ["/v1/nothing", "/nothing", "/v1/user/token", "/v1/user/token/a/b", "/V1/STATUS"]
)
def test_an_unknown_path_has_the_exact_endpoint_missing_body(api: TestClient, path: str) -> None:
    response = api.get(path, follow_redirects=False)
    assert response.status_code == 404
    assert response.content == ENDPOINT_MISSING
    assert response.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize(
    ("method", "path", "methods"),
    [
        ("DELETE", "/v1/status", {"GET"}),
        ("GET", "/v1/user", {"POST"}),
        ("GET", "/v1/users", {"POST"}),
        ("POST", "/v1/audit/admin", {"GET"}),
        ("PATCH", "/v1/user/token/0b6f4ca2-7f0e-4c4e-9c55-3d7cbbd0f1a9", {"GET", "PUT", "DELETE"}),
        ("POST", "/v1/user/email/ann@example.com", {"GET", "PUT", "DELETE"}),
    ],
)
def test_a_wrong_method_is_405_with_allow(
    api: TestClient, method: str, path: str, methods: set[str]
) -> None:
    response = api.request(method, path)
    assert response.status_code == 405
    assert response.json()["status"] == "error"
    assert allowed(response) >= methods
    assert method not in allowed(response)


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/v1/user", {"POST"}),
        ("/v1/user/", {"POST"}),
        ("/v1/user/email/ann@example.com", {"GET", "PUT", "DELETE"}),
        ("/v1/audit/admin", {"GET"}),
    ],
)
def test_preflight_on_a_known_path(anonymous: TestClient, path: str, methods: set[str]) -> None:
    response = anonymous.options(path, headers={"Origin": "https://app.test"})
    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["access-control-allow-origin"] == "*"
    cors_methods = {m.strip() for m in response.headers["access-control-allow-methods"].split(",")}
    assert cors_methods >= methods
    assert "x-bunker-token" in response.headers["access-control-allow-headers"].lower()
    assert allowed(response) >= methods


def test_preflight_on_an_unknown_path_is_404(anonymous: TestClient) -> None:
    response = anonymous.options("/v1/nothing")
    assert response.status_code == 404
    assert response.content == ENDPOINT_MISSING


# -- security headers ------------------------------------------------------------------------
def _assert_security_headers(response: Response) -> None:
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] in ("DENY", "SAMEORIGIN")
    assert headers["content-security-policy"]
    assert "no-store" in headers["cache-control"]
    assert "strict-transport-security" not in headers


def test_security_headers_on_every_kind_of_response(api: TestClient, anonymous: TestClient) -> None:
    token = create(api, {"login": "ann"})
    responses = [
        api.get(f"/v1/user/token/{token}"),
        api.get("/v1/user/token/not-a-uuid"),
        api.get(f"/v1/user/token/{uuid.uuid4()}"),
        anonymous.get(f"/v1/user/token/{token}"),
        api.get("/v1/nothing"),
        api.delete("/v1/status"),
        anonymous.options("/v1/user"),
        anonymous.get("/v1/status"),
        anonymous.get("/v1/metrics"),
        api.post("/v1/user", json={"login": "ann"}),
    ]
    assert sorted({r.status_code for r in responses}) == [200, 204, 400, 403, 404, 405, 409]
    for response in responses:
        _assert_security_headers(response)


def test_hsts_only_over_https(vault: Context) -> None:
    headers = {"X-Bunker-Token": ROOT_TOKEN}
    app = build_app(vault)
    with TestClient(app, base_url="https://testserver", headers=headers) as client:
        response = client.get("/v1/status")
    assert response.status_code == 200
    assert "max-age=" in response.headers["strict-transport-security"]


# -- garbage in, no server error out ---------------------------------------------------------
CONTENT_TYPES = [
    None,
    "application/json",
    "application/json; charset=latin-1",
    "application/x-www-form-urlencoded",
    "application/xml",
    "text/plain",
    "multipart/form-data; boundary=zz",
    "garbage;;;=",
    "*/*",
]
NASTY_BODIES = [
    b'{"login": 1e400}',
    b'{"login": 123456789012345678901234567890}',
    b'{"login": 1e308, "custom": -1.5}',
    b'{"login": true, "email": 5}',
    b'{"phone": [], "login": "x"}',
    b'{"token": 5, "login": "y"}',
    b'{"login": {"a": 1}}',
    b'{"login": "\\u0000", "email": "a@b.c\\u0000"}',
    b'{"email": "\\ud800@example.com"}',
    b'{"phone": 4444}',
    b'"just a string"',
    b"[1, 2, 3]",
    b'[{"op": "move", "from": "/login", "path": "/login/x"}]',
    b'[{"op": "add", "path": "", "value": []}]',
    b'[{"op": "copy", "from": "/nope", "path": "/x"}]',
    b'[{"op": "bogus"}]',
    b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]",
    b"login=a&login=b&email=%ZZ&phone=%00",
    b"\xff\xfe\x00{",
    b"null",
]
ODD_SEGMENTS = [
    "%00",
    "%ff",
    "%2F",
    "..",
    "%E2%80%AE",
    "ü",
    "a" * 5000,
    "%25",
    "+",
    "-1",
    "@",
]


def _assert_sane(response: Response) -> None:
    assert response.status_code < 500, (response.request.method, response.request.url)
    if response.request.url.path.startswith("/v1/"):
        assert response.json()["status"] in ("ok", "error")
    # A segment like ".." can resolve the path out of the API (to the portal's pages).


def _bodies(seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.randrange(0, 200)) for _ in range(count)] + NASTY_BODIES


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/user"),
        ("PUT", "/v1/user/token/{token}"),
        ("PUT", "/v1/user/login/ann"),
        ("DELETE", "/v1/user/login/nobody"),
        ("POST", "/v1/users"),
    ],
)
def test_random_bodies_never_cause_a_server_error(api: TestClient, method: str, path: str) -> None:
    token = create(api, {"login": "ann", "email": "ann@example.com"})
    rng = random.Random(f"{method} {path}")
    for body in _bodies(seed=len(path), count=12):
        content_type = rng.choice(CONTENT_TYPES)
        headers = {"Content-Type": content_type} if content_type else {}
        response = api.request(method, path.format(token=token), content=body, headers=headers)
        _assert_sane(response)
    assert api.get(f"/v1/user/token/{token}").status_code == 200


@pytest.mark.parametrize("segment", ODD_SEGMENTS)
def test_odd_path_segments_never_cause_a_server_error(api: TestClient, segment: str) -> None:
    create(api, {"login": "ann", "email": "ann@example.com", "phone": "07700 900123"})
    for mode in ("token", "login", "email", "phone", "custom", segment):
        for method in ("GET", "PUT", "DELETE"):
            response = api.request(method, f"/v1/user/{mode}/{segment}", json={"name": "x"})
            _assert_sane(response)
    for path in (f"/v1/audit/list/{segment}", f"/v1/audit/get/{segment}"):
        _assert_sane(api.get(path))
    _assert_sane(api.post(f"/v1/users?offset={segment}&limit={segment}"))
    _assert_sane(api.get(f"/v1/audit/admin?offset={segment}&limit={segment}"))


@pytest.mark.parametrize(
    "presented", ["", "x" * 5000, "DEMO", "0b6f4ca2-7f0e-4c4e-9c55-3d7cbbd0f1a9", "%00", "😀"]
)
def test_odd_tokens_are_simply_denied(vault: Context, presented: str) -> None:
    with client_for(vault, None) as client:
        response = client.get("/v1/audit/admin", headers={"X-Bunker-Token": presented.encode()})
    assert_error(response, 403, "access denied")


def test_start_up_leaves_its_objects_out_of_full_garbage_collections(vault: Context) -> None:
    # Full collections walking every module and table under load stall every request.
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    with client_for(vault) as client:
        assert client.get("/v1/status").status_code == 200
        assert gc.get_freeze_count() > 10_000


# -- request and trace ids -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "echoed"),
    [(None, False), ("req-42.a:b_c", True), ("two words", False), ("x" * 65, False)],
)
def test_every_answer_carries_a_request_id_the_callers_only_when_plain(
    anonymous: TestClient, given: str | None, echoed: bool
) -> None:
    headers = {"X-Request-Id": given} if given is not None else {}
    answered = anonymous.get("/v1/status", headers=headers).headers["x-request-id"]
    if echoed:
        assert answered == given
    else:
        assert re.fullmatch(r"[0-9a-f]{16}", answered)
    assert anonymous.get("/v1/status").headers["x-request-id"] != answered


@pytest.mark.parametrize(
    ("traceparent", "continued"),
    [
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", True),
        ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", False),
        ("garbage", False),
        (None, False),
    ],
)
def test_log_lines_of_a_request_carry_its_request_and_trace_ids(
    vault: Context, traceparent: str | None, continued: bool
) -> None:
    lines: list[dict[str, Any]] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(orjson.loads(JSONFormatter().format(record)))

    handler = Collect()
    access = logging.getLogger("databunker.access")
    level = access.level
    access.setLevel(logging.INFO)
    access.addHandler(handler)
    try:
        with client_for(vault) as client:
            headers = {"traceparent": traceparent} if traceparent else {}
            answer = client.get("/v1/sys/ready", headers=headers)
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
    line = next(entry for entry in lines if entry["route"] == "/v1/sys/ready")
    assert line["request_id"] == answer.headers["x-request-id"]
    if continued:
        assert line["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    else:
        assert re.fullmatch(r"[0-9a-f]{32}", line["trace_id"])
        assert line["trace_id"] != "0" * 32


def test_shutdown_waits_for_a_keyring_check_running_on_a_thread(vault: Context) -> None:
    """A check still running when the server stops must end before the database pool is
    closed: a check that ran on after it would open a connection nobody closes."""
    app = build_app(vault)
    started, finished = threading.Event(), threading.Event()

    def slow_refresh() -> None:
        started.set()
        time.sleep(0.5)
        finished.set()

    app.keeper.refresh = slow_refresh  # type: ignore[method-assign]
    with TestClient(app, headers={"X-Bunker-Token": ROOT_TOKEN}) as client:
        assert client.get("/v1/status").status_code == 200
        assert started.wait(10)
    assert finished.is_set()
