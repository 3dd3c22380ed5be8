"""Control characters posted by the admin and privacy portals' forms, and in their URLs.

The pages reach the same services as the API, so a value kept in clear that holds a control
character is refused with the same message (shown on an error page) and nothing is stored,
on SQLite as on PostgreSQL; the profile form's values are encrypted and keep them.
"""

from __future__ import annotations

import html
import re
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
from support.vaults import ROOT_TOKEN, client_for, create_user, issue_user_token

CONTROLS = ("\x00", "\x1b")
ANN = {"email": "ann@example.com", "name": "Ann"}
BASIS_TEXTS = ("shortdesc", "fulldesc", "basistype", "module", "requiredmsg")
ACTIVITY_TEXTS = ("title", "script", "fulldesc", "applicableto")


@dataclass
class Portals:
    vault: Context
    api: TestClient
    dpo: TestClient  # signed in to the admin portal
    person: TestClient  # Ann, signed in to the privacy portal
    stranger: TestClient  # signed in nowhere
    ann: str
    rtoken: str
    atoken: str

    def browsers(self) -> dict[str, TestClient]:
        return {"dpo": self.dpo, "person": self.person, "stranger": self.stranger}


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, page
    return found.group(1)


def browser(vault: Context) -> TestClient:
    client = client_for(vault, None)
    client.follow_redirects = False
    return client


@pytest.fixture
def portals(make_vault: VaultFactory) -> Iterator[Portals]:
    vault = make_vault(generic={"login_captcha": False}, selfservice={"user_record_change": True})
    with client_for(vault) as api, browser(vault) as dpo, browser(vault) as person:
        ann = create_user(api, ANN)
        for brief, usercontrol in (("news", True), ("locked", False)):
            assert api.post(f"/v1/lbasis/{brief}", json={"usercontrol": usercontrol}).is_success
        assert api.post("/v1/pactivity/act", json={"title": "Act"}).is_success
        assert api.post(f"/v1/agreement/locked/token/{ann}").is_success
        with client_for(vault, issue_user_token(vault, ann)) as own:
            rtoken = own.request("DELETE", f"/v1/agreement/locked/token/{ann}").json()["rtoken"]
        atoken = api.get(f"/v1/audit/list/{ann}").json()["rows"][0]["atoken"]
        start = dpo.get("/admin")
        signed = dpo.post("/admin/signin", data={"csrf": csrf_of(start.text), "token": ROOT_TOKEN})
        assert signed.status_code == 303, signed.text
        person.cookies.set("databunker_session", issue_user_token(vault, ann))
        with browser(vault) as stranger:
            yield Portals(vault, api, dpo, person, stranger, ann, rtoken, atoken)


def post_form(client: TestClient, page: str, action: str, data: dict[str, Any]) -> Response:
    return client.post(action, data={"csrf": csrf_of(client.get(page).text), **data})


def assert_error_page(response: Response, message: str | None = None) -> None:
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("text/html")
    if message is not None:
        assert html.escape(message) in response.text


@dataclass(frozen=True)
class FormCase:
    page: str
    action: str
    fields: tuple[str, ...]
    # fields whose own format check speaks first: refused, with its own message
    formatted: tuple[str, ...] = ()
    form: tuple[tuple[str, str], ...] = ()


SAVED_BASIS = (("original", "news"), ("brief", "news"), ("requiredflag", "true"))
NEW_BASIS = (("original", ""), ("brief", "fresh"), ("requiredflag", "true"))
SAVED_ACTIVITY = (("original", "act"), ("activity", "act"))
NEW_ACTIVITY = (("original", ""), ("activity", "fresh"))
ADMIN_FORMS = [
    FormCase(
        "/admin/legal/basis/news",
        "/admin/legal/save-basis",
        (*BASIS_TEXTS, "status", "brief", "original"),
        ("original",),
        SAVED_BASIS,
    ),
    FormCase(
        "/admin/legal/basis",
        "/admin/legal/save-basis",
        (*BASIS_TEXTS, "status", "brief"),
        ("brief",),
        NEW_BASIS,
    ),
    FormCase(
        "/admin/legal/activity/act",
        "/admin/legal/save-activity",
        (*ACTIVITY_TEXTS, "activity", "original", "legalbasis"),
        ("activity", "original", "legalbasis"),
        SAVED_ACTIVITY,
    ),
    FormCase(
        "/admin/legal/activity",
        "/admin/legal/save-activity",
        (*ACTIVITY_TEXTS, "activity", "legalbasis"),
        ("activity", "legalbasis"),
        NEW_ACTIVITY,
    ),
    FormCase("/admin/legal/basis/news", "/admin/legal/delete-basis", ("brief",), ("brief",)),
    FormCase(
        "/admin/legal/activity/act", "/admin/legal/delete-activity", ("activity",), ("activity",)
    ),
    FormCase("/admin/requests/{rtoken}", "/admin/requests/{rtoken}/approve", ("reason",)),
    FormCase("/admin/requests/{rtoken}", "/admin/requests/{rtoken}/cancel", ("reason",)),
    FormCase(
        "/admin/users",
        "/admin/users/lookup",
        ("mode", "value"),
        ("mode", "value"),
        (("mode", "email"), ("value", "ann@example.com")),
    ),
]
PORTAL_FORMS = [
    FormCase("/consents", "/consents/change", ("brief",), ("brief",), (("action", "give"),)),
    FormCase("/requests", "/requests/cancel", ("rtoken",), ("rtoken",)),
]


def _value(portals: Portals, case: FormCase, field: str, control: str) -> str:
    """A plausible value for the field (the form's own, if it has one), and ``control``."""
    valid = {
        "brief": "news",
        "activity": "act",
        "legalbasis": "news",
        "status": "active",
        "rtoken": portals.rtoken,
        **dict(case.form),
    }
    return valid.get(field, "a") + control


@pytest.mark.parametrize(
    "case", ADMIN_FORMS + PORTAL_FORMS, ids=lambda c: f"{c.action} from {c.page}"
)
def test_a_control_character_posted_by_a_form_is_refused_and_nothing_is_stored(
    portals: Portals, case: FormCase
) -> None:
    client = portals.dpo if case.action.startswith("/admin") else portals.person
    page = case.page.format(rtoken=portals.rtoken)
    action = case.action.format(rtoken=portals.rtoken)
    before = stored_state(portals.vault)
    for field in case.fields:
        for control in CONTROLS:
            form = {**dict(case.form), field: _value(portals, case, field, control)}
            response = post_form(client, page, action, form)
            told = None if field in case.formatted else f"invalid character in {field}"
            assert_error_page(response, told)
            assert stored_state(portals.vault) == before, (field, control)


def test_signing_in_with_a_control_character_is_as_for_nobody(portals: Portals) -> None:
    before = stored_state(portals.vault)
    stranger = portals.stranger
    for control in CONTROLS:
        for identity in (f"ann@example.com{control}", f"{control}ann@example.com"):
            form = {"mode": "email", "identity": identity}
            sent = post_form(stranger, "/", "/signin", form)
            assert sent.status_code == 200, sent.text
            assert "Enter your code" in sent.text
            entered = post_form(stranger, "/", "/code", {**form, "code": "123456"})
            assert entered.status_code == 400
            assert "This code is not valid." in entered.text
        wrong_code = {"mode": "email", "identity": ANN["email"], "code": f"123456{control}"}
        assert post_form(stranger, "/", "/code", wrong_code).status_code == 400
    assert stored_state(portals.vault) == before


def test_the_profile_form_keeps_control_characters_in_encrypted_values(
    portals: Portals,
) -> None:
    odd = "a\x00b\x1bc"
    response = post_form(
        portals.person,
        "/profile",
        "/profile/save",
        {"field:name": odd, "new_name": "note", "new_value": odd},
    )
    assert response.status_code == 303, response.text
    profile = portals.api.get(f"/v1/user/token/{portals.ann}").json()["data"]
    assert profile == {**ANN, "name": odd, "note": odd}


def _signed_form(client: TestClient, url: str) -> dict[str, str]:
    """An empty form with the CSRF token this browser's pages carry."""
    home = client.get("/admin" if url.startswith("/admin") else "/", follow_redirects=True)
    return {"csrf": csrf_of(home.text)}


def page_routes(vault: Context) -> list[Route]:
    routes = build_app(vault).starlette.routes
    return [r for r in routes if isinstance(r, Route) and not r.path.startswith("/v1/")]


@pytest.mark.parametrize("control", CONTROLS, ids=["nul", "esc"])
def test_a_control_character_in_a_page_url_is_a_client_error(
    portals: Portals, control: str
) -> None:
    samples = {
        "rtoken": portals.rtoken,
        "atoken": portals.atoken,
        "token": portals.ann,
        "brief": "news",
        "activity": "act",
        "name": "portal.css",
    }
    before = stored_state(portals.vault)
    for route in page_routes(portals.vault):
        params = re.findall(r"{(\w+)}", route.path)
        for param in params:
            values = {**samples, param: samples[param] + control}
            url = route.path.format(**{name: quote(values[name]) for name in params})
            for method in sorted((route.methods or set()) - {"HEAD"}):
                for name, client in portals.browsers().items():
                    form = _signed_form(client, url) if method == "POST" else None
                    response = client.request(method, url, data=form)
                    where = (method, url, name)
                    if response.status_code == 303:  # signed out: back to the sign-in page
                        assert response.headers["location"] in ("/", "/admin"), where
                    else:
                        assert_error_page(response)
                    assert stored_state(portals.vault) == before, where
