"""Control characters in values kept in clear and in URL segments, on every database.

Values stored as plain text (the consent catalogue's texts, an agreement's reference code,
method and modifier, a request's reason, a shared record's partner and fields, a retention
status) refuse U+0000-U+001F and U+007F with ``invalid character in <field>``; free text
keeps tab and line breaks. A URL segment holding one is a 4xx. Either way nothing is stored,
and SQLite answers as PostgreSQL does. Encrypted values (profiles, app records, sessions)
keep whatever JSON allows.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from httpx2 import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from conftest import VaultFactory
from databunker.app import build_app
from databunker.services.context import Context
from support.stored import stored_state
from support.vaults import client_for, create_user, issue_user_token

# NUL, which PostgreSQL cannot store in a text column, and another control character.
CONTROLS = ("\x00", "\x1b")
ANN: dict[str, Any] = {
    "login": "ann",
    "email": "ann@example.com",
    "phone": "+447700900123",
    "custom": "cust-ann",
    "name": "Ann",
}


@dataclass
class Scene:
    vault: Context
    root: TestClient
    anonymous: TestClient
    ann_client: TestClient
    ann: str
    samples: dict[str, str]

    def clients(self) -> dict[str, TestClient]:
        return {"root": self.root, "anonymous": self.anonymous, "ann": self.ann_client}

    def stored(self) -> dict[str, list[str]]:
        return stored_state(self.vault)


def ok(response: Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def scene(make_vault: VaultFactory) -> Iterator[Scene]:
    vault = make_vault(generic={"login_captcha": False})
    with client_for(vault) as root, client_for(vault, None) as anonymous:
        ann = create_user(root, ANN)
        for brief, usercontrol in (("news", True), ("other", True), ("locked", False)):
            ok(root.post(f"/v1/lbasis/{brief}", json={"usercontrol": usercontrol}))
        ok(root.post("/v1/pactivity/act", json={"title": "Act"}))
        ok(root.post("/v1/pactivity/act/news"))
        ok(root.post(f"/v1/agreement/news/token/{ann}", json={"referencecode": "r1"}))
        ok(root.post(f"/v1/agreement/locked/token/{ann}"))
        ok(root.post(f"/v1/userapp/token/{ann}/shop", json={"basket": 1}))
        session = str(uuid.uuid4())
        ok(root.post(f"/v1/session/{session}", json={"token": ann, "cart": 2}))
        record = ok(root.post(f"/v1/sharedrecord/token/{ann}", json={"partner": "p"}))["record"]
        retention = ok(root.post(f"/v1/exp/start/token/{ann}", json={"expiration": "10d"}))
        with client_for(vault, issue_user_token(vault, ann)) as ann_client:
            # withdrawing "locked" needs an administrator: an open request
            withdrawal = ok(ann_client.request("DELETE", f"/v1/agreement/locked/token/{ann}"))
            atoken = ok(root.get(f"/v1/audit/list/{ann}"))["rows"][0]["atoken"]
            samples = {
                "brief": "news",
                "activity": "act",
                "app": "shop",
                "session": session,
                "record": record,
                "exptoken": retention["exptoken"],
                "rtoken": withdrawal["rtoken"],
                "atoken": atoken,
                "token": ann,
                "captcha": ok(root.get("/v1/captcha"))["captcha"],
                "code": "123456",
            }
            yield Scene(vault, root, anonymous, ann_client, ann, samples)


def assert_refused(response: Response, message: str | None = None) -> None:
    assert 400 <= response.status_code < 500, response.text
    body = response.json()
    assert set(body) == {"status", "message"}, body
    assert body["status"] == "error"
    if message is not None:
        assert body["message"] == message


# --- values kept in clear, sent in request bodies -----------------------------------------

BASIS_FIELDS = ("brief", "module", "shortdesc", "fulldesc", "basistype", "requiredmsg", "status")
ACTIVITY_FIELDS = ("activity", "title", "script", "fulldesc", "applicableto")
AGREEMENT_FIELDS = ("referencecode", "lastmodifiedby", "agreementmethod")
# A plausible value for each field that has a format; a control character is appended.
VALID = {"brief": "renamed", "activity": "renamed", "status": "active", "app": "shop"}


@dataclass(frozen=True)
class BodyCase:
    method: str
    path: str
    fields: tuple[str, ...]
    # the callers who may make this change, and so are told which field is wrong
    told: tuple[str, ...] = ("root",)
    body: tuple[tuple[str, Any], ...] = ()


BODY_CASES = [
    BodyCase("POST", "/v1/lbasis/news", BASIS_FIELDS, body=(("requiredflag", True),)),
    BodyCase("POST", "/v1/lbasis/fresh", BASIS_FIELDS, body=(("requiredflag", True),)),
    BodyCase("POST", "/v1/pactivity/act", ACTIVITY_FIELDS),
    BodyCase("POST", "/v1/pactivity/fresh", ACTIVITY_FIELDS),
    BodyCase("POST", "/v1/agreement/news/token/{ann}", AGREEMENT_FIELDS, ("root", "ann")),
    # anonymous consent by email, for a person with and without a record
    BodyCase(
        "POST",
        "/v1/agreement/news/email/ann@example.com",
        AGREEMENT_FIELDS,
        ("root", "anonymous", "ann"),
    ),
    BodyCase(
        "POST", "/v1/agreement/other/email/new@example.com", AGREEMENT_FIELDS, ("root", "anonymous")
    ),
    BodyCase(
        "POST", "/v1/agreement/other/phone/+447700900999", AGREEMENT_FIELDS, ("root", "anonymous")
    ),
    BodyCase("DELETE", "/v1/agreement/news/token/{ann}", ("lastmodifiedby",), ("root", "ann")),
    BodyCase("DELETE", "/v1/agreement/news/email/new@example.com", ("lastmodifiedby",)),
    BodyCase("POST", "/v1/request/{rtoken}", ("reason",)),
    BodyCase("DELETE", "/v1/request/{rtoken}", ("reason",), ("root", "ann")),
    BodyCase(
        "POST",
        "/v1/sharedrecord/token/{ann}",
        ("partner", "fields", "app", "session"),
        ("root", "ann"),
    ),
    BodyCase("POST", "/v1/exp/start/token/{ann}", ("status",)),
]


def _value(scene: Scene, field: str, control: str) -> str:
    if field == "session":
        return scene.samples["session"] + control
    return VALID.get(field, "a") + control + "b"


@pytest.mark.parametrize("case", BODY_CASES, ids=lambda c: f"{c.method} {c.path}")
def test_a_control_character_in_a_cleartext_value_is_refused_and_nothing_is_stored(
    scene: Scene, case: BodyCase
) -> None:
    path = case.path.format(ann=scene.ann, rtoken=scene.samples["rtoken"])
    before = scene.stored()
    for field in case.fields:
        for control in CONTROLS:
            body = {**dict(case.body), field: _value(scene, field, control)}
            for name, client in scene.clients().items():
                response = client.request(case.method, path, json=body)
                told = f"invalid character in {field}" if name in case.told else None
                assert_refused(response, told)
                assert scene.stored() == before, (field, name)


def test_a_form_body_is_held_to_the_same_rule(scene: Scene) -> None:
    before = scene.stored()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    response = scene.root.post("/v1/lbasis/news", content="shortdesc=a%00b", headers=form)
    assert_refused(response, "invalid character in shortdesc")
    response = scene.anonymous.post(
        "/v1/agreement/other/email/new@example.com", content="referencecode=a%1Fb", headers=form
    )
    assert_refused(response, "invalid character in referencecode")
    assert scene.stored() == before


def test_the_reported_case_refuses_nul_without_a_token(scene: Scene) -> None:
    before = scene.stored()
    response = scene.anonymous.post(
        "/v1/agreement/news/email/x@example.com",
        json={"status": "yes", "referencecode": "a\u0000b"},
    )
    assert_refused(response, "invalid character in referencecode")
    assert scene.stored() == before


def test_free_text_keeps_tabs_and_line_breaks_and_one_line_values_refuse_them(
    scene: Scene,
) -> None:
    text = "line one\r\n\tline two\n"
    basis = {"shortdesc": text, "fulldesc": text, "requiredmsg": text, "requiredflag": True}
    ok(scene.root.post("/v1/lbasis/news", json=basis))
    stored = next(r for r in ok(scene.root.get("/v1/lbasis"))["rows"] if r["brief"] == "news")
    assert (stored["shortdesc"], stored["fulldesc"], stored["requiredmsg"]) == (text,) * 3
    ok(scene.root.post("/v1/pactivity/act", json={"script": text, "fulldesc": text}))
    activity = ok(scene.root.get("/v1/pactivity"))["rows"][0]
    assert (activity["script"], activity["fulldesc"]) == (text, text)
    rtoken = scene.samples["rtoken"]
    ok(scene.root.request("DELETE", f"/v1/request/{rtoken}", json={"reason": text}))
    rows = ok(scene.root.get("/v1/requests?status=canceled"))["rows"]
    assert [r["reason"] for r in rows] == [text]

    before = scene.stored()
    for field in ("module", "basistype"):
        for control in ("\n", "\t", "\r"):
            response = scene.root.post("/v1/lbasis/news", json={field: f"a{control}b"})
            assert_refused(response, f"invalid character in {field}")
    for field in ("title", "applicableto"):
        response = scene.root.post("/v1/pactivity/act", json={field: "a\nb"})
        assert_refused(response, f"invalid character in {field}")
    response = scene.root.post(
        f"/v1/agreement/news/token/{scene.ann}", json={"referencecode": "a\tb"}
    )
    assert_refused(response, "invalid character in referencecode")
    for control in ("\x08", "\x0b", "\x0c", "\x7f"):
        response = scene.root.post("/v1/lbasis/news", json={"fulldesc": f"a{control}b"})
        assert_refused(response, "invalid character in fulldesc")
    assert scene.stored() == before


def test_encrypted_values_keep_every_character_json_allows(scene: Scene) -> None:
    odd = "a\u0000b\u001b\u007f\r\n\t"
    token = create_user(scene.root, {"email": "bob@example.com", "name": odd, odd: [odd]})
    profile = ok(scene.root.get(f"/v1/user/token/{token}"))["data"]
    assert profile == {"email": "bob@example.com", "name": odd, odd: [odd]}
    ok(scene.root.put(f"/v1/user/token/{token}", json={"note": odd}))
    assert ok(scene.root.get(f"/v1/user/token/{token}"))["data"]["note"] == odd

    ok(scene.root.post(f"/v1/userapp/token/{token}/shop", json={"item": odd}))
    assert ok(scene.root.get(f"/v1/userapp/token/{token}/shop"))["data"] == {"item": odd}

    session = str(uuid.uuid4())
    ok(scene.root.post(f"/v1/session/{session}", json={"token": token, "note": odd}))
    assert ok(scene.root.get(f"/v1/session/{session}"))["data"]["note"] == odd


# --- URL segments -----------------------------------------------------------------------------

IDENTITIES = {
    "token": None,  # the person's token
    "email": ANN["email"],
    "phone": ANN["phone"],
    "login": ANN["login"],
    "custom": ANN["custom"],
}
# The login routes answer alike for every identity (and captcha and code), so that they
# never tell whether a person exists: a control character there is one more identity of
# nobody, answered as such and never a server error.
ALIKE_FOR_ANYONE = {
    ("/v1/prelogin/{mode}/{identity}/{code}/{captcha}", "identity"),
    ("/v1/prelogin/{mode}/{identity}/{code}/{captcha}", "code"),
    ("/v1/prelogin/{mode}/{identity}/{code}/{captcha}", "captcha"),
}


def api_routes(vault: Context) -> list[Route]:
    routes = build_app(vault).starlette.routes
    return [
        r for r in routes if isinstance(r, Route) and r.path.startswith("/v1/") and "{" in r.path
    ]


def _urls(scene: Scene, route: Route, param: str, control: str) -> Iterator[str]:
    """The route's URL with ``control`` put into ``param``, for each way of naming a person."""
    params = re.findall(r"{(\w+)}", route.path)
    modes = list(IDENTITIES) if "identity" in params else ["token"]
    if route.path.startswith(("/v1/prelogin/", "/v1/login/")):
        modes = ["email", "phone"]
    for mode in modes:
        values = {**scene.samples, "mode": mode, "identity": IDENTITIES.get(mode) or scene.ann}
        values[param] = values[param] + control
        yield route.path.format(**{name: quote(values[name], safe="@+") for name in params})


def _callers(scene: Scene, route: Route) -> dict[str, TestClient]:
    # The login routes take no token, and count every attempt per client address.
    if route.path.startswith(("/v1/prelogin/", "/v1/login/")):
        return {"anonymous": scene.anonymous}
    return scene.clients()


@pytest.mark.parametrize("control", CONTROLS, ids=["nul", "esc"])
def test_a_control_character_in_any_url_segment_is_a_client_error(
    scene: Scene, control: str
) -> None:
    before = scene.stored()
    nobody = ok(scene.anonymous.get("/v1/prelogin/email/nobody@example.com/123456/x"))
    for route in api_routes(scene.vault):
        methods = sorted((route.methods or set()) - {"HEAD"})
        for param in re.findall(r"{(\w+)}", route.path):
            for url in _urls(scene, route, param, control):
                for method in methods:
                    for name, client in _callers(scene, route).items():
                        response = client.request(method, url, json={"status": "yes"})
                        where = (method, url, name)
                        if (route.path, param) in ALIKE_FOR_ANYONE:
                            assert response.status_code == 200, where
                            assert response.json() == nobody, where
                        else:
                            assert 400 <= response.status_code < 500, (where, response.text)
                            assert_refused(response)
                        assert scene.stored() == before, where


def test_a_schema_error_naming_a_key_with_a_control_character_is_audited_alike(
    make_vault: VaultFactory,
) -> None:
    vault = make_vault(schema={"type": "object", "additionalProperties": {"type": "string"}})
    message = "user schema error: $['a\\u0000b']: failed 'type' rule"
    with client_for(vault) as root:
        response = root.post("/v1/user", json={"email": "bob@example.com", "a\u0000b": 1})
        assert_refused(response, message)
        events = ok(root.get("/v1/audit/admin"))["rows"]
    assert [(e["title"], e["status"], e["msg"]) for e in events] == [
        ("create user record", "error", message)
    ]
