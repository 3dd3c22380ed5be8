"""Look-alike identities never reach another person: create, lookup, prelogin and login.

Kim has ``kim@example.com``. Every address in the tables below reads like Kim's to a person.
Each is either refused as not an email address (it changes under compatibility
normalisation, or holds an invisible character, or ends in a dot) or is a different
mailbox: then it is a different person, and a login code for it never goes to Kim.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from databunker.services.context import Context
from databunker.storage.outbox import open_payload
from databunker.storage.tables import outbox
from support.vaults import ROOT_TOKEN, VaultFactory, client_for

KIM = "kim@example.com"
INVALID_EMAIL = {"status": "error", "message": "invalid email"}
NOT_FOUND = {"status": "error", "message": "not found"}
INVALID_CODE = {"status": "error", "message": "invalid code"}
DONE = {"status": "ok", "result": "done"}

# Read as kim@example.com by a person, and by Unicode's compatibility mapping.
REFUSED = [
    pytest.param("\u212aim@example.com", id="kelvin-sign"),
    pytest.param("\uff4bim@example.com", id="full-width-k"),
    pytest.param("\uff4b\uff49\uff4d@example.com", id="full-width-kim"),
    pytest.param("\U0001d424im@example.com", id="mathematical-bold-k"),
    pytest.param("k\u200bim@example.com", id="zero-width-space"),
    pytest.param("k\u200dim@example.com", id="zero-width-joiner"),
    pytest.param("\u2060kim@example.com", id="word-joiner"),
    pytest.param("kim@example.com.", id="trailing-dot"),
    pytest.param("kim.@example.com", id="dot-before-at"),
    pytest.param("kim@example.com\x1f", id="trailing-unit-separator"),
    pytest.param("\x1ckim@example.com", id="leading-file-separator"),
    pytest.param("k\u2170m@example.com", id="small-roman-numeral-one"),
]
# A ligature read as two letters.
REFUSED_LIGATURE = "\ufb01nn@example.com"  # "finn"
FINN = "finn@example.com"

# Letters of other scripts, or other letters: different mailboxes, so different people.
DISTINCT = [
    pytest.param("k\u0131m@example.com", id="dotless-i"),
    pytest.param("k\u0130m@example.com", id="dotted-capital-i"),
    pytest.param("k\u0456m@example.com", id="cyrillic-i"),
    pytest.param("\u043aim@example.com", id="cyrillic-ka"),
    pytest.param("\u03baim@example.com", id="greek-kappa"),
    pytest.param("kim@\u0435xample.com", id="cyrillic-e-in-domain"),
]
# The same mailbox spelled otherwise: the same person.
SAME = [
    pytest.param("KIM@EXAMPLE.COM", id="ascii-upper-case"),
    pytest.param("  kim@example.com ", id="spaces"),
    pytest.param("kim@\uff45xample.com", id="full-width-letter-in-domain"),
]


class Vaulted:
    def __init__(self, vault: Context, root: TestClient, anonymous: TestClient) -> None:
        self.vault, self.root, self.anonymous = vault, root, anonymous
        self.kim = self.create({"email": KIM, "name": "Kim"})

    def create(self, profile: dict[str, Any]) -> str:
        response = self.root.post("/v1/user", json=profile)
        assert response.status_code == 200, response.text
        return str(response.json()["token"])

    def by_email(self, address: str) -> Any:
        return self.root.get(f"/v1/user/email/{quote(address, safe='@')}")

    def prelogin(self, address: str) -> Any:
        return self.anonymous.get(f"/v1/prelogin/email/{quote(address, safe='@')}/0/none")

    def login(self, address: str, code: str) -> Any:
        return self.anonymous.get(f"/v1/login/email/{quote(address, safe='@')}/{code}")

    def sent(self) -> list[dict[str, Any]]:
        """Messages that will be sent: void ones, written for nobody, are never sent."""
        key = self.vault.keyring.service_key("outbox")
        with self.vault.database.transaction() as conn:
            rows = conn.execute(
                sa.select(outbox.c.id, outbox.c.payload)
                .where(outbox.c.kind == "email", outbox.c.delivered.is_(None))
                .order_by(outbox.c.id)
            ).all()
        return [open_payload(key, row.id, row.payload) for row in rows]


@pytest.fixture
def site(make_vault: VaultFactory) -> Iterator[Vaulted]:
    vault = make_vault(smtp={"server": "127.0.0.1"}, generic={"login_captcha": False})
    with client_for(vault, ROOT_TOKEN) as root, client_for(vault, None) as anonymous:
        yield Vaulted(vault, root, anonymous)


def _code(payload: dict[str, Any]) -> str:
    match = re.search(r"\b(\d{6})\b", payload["text"])
    assert match, payload
    return match.group(1)


@pytest.mark.parametrize("address", REFUSED)
def test_a_compatibility_look_alike_is_not_an_email_address(site: Vaulted, address: str) -> None:
    response = site.root.post("/v1/user", json={"email": address})
    assert (response.status_code, response.json()) == (400, INVALID_EMAIL)
    # Looking it up finds nobody, Kim least of all.
    assert (site.by_email(address).status_code, site.by_email(address).json()) == (404, NOT_FOUND)
    # A prelogin answers as for anyone, and sends nothing to Kim.
    assert site.prelogin(address).json() == DONE
    assert site.sent() == []
    assert site.login(address, "123456").json() == INVALID_CODE


def test_a_ligature_is_not_read_as_its_letters(site: Vaulted) -> None:
    finn = site.create({"email": FINN})
    response = site.root.post("/v1/user", json={"email": REFUSED_LIGATURE})
    assert (response.status_code, response.json()) == (400, INVALID_EMAIL)
    assert site.by_email(REFUSED_LIGATURE).status_code == 404
    assert site.by_email(FINN).json()["token"] == finn
    assert site.prelogin(REFUSED_LIGATURE).json() == DONE
    assert site.sent() == []


@pytest.mark.parametrize("address", DISTINCT)
def test_a_look_alike_in_another_script_is_another_person(site: Vaulted, address: str) -> None:
    # Before it exists, its lookup and its prelogin reach nobody.
    assert site.by_email(address).status_code == 404
    assert site.prelogin(address).json() == DONE
    assert site.sent() == []

    other = site.create({"email": address, "name": "Other"})
    assert other != site.kim
    assert site.by_email(address).json()["token"] == other
    assert site.by_email(KIM).json()["token"] == site.kim

    # Its code goes to its own address, and logs in to its own record only.
    assert site.prelogin(address).json() == DONE
    [message] = site.sent()
    assert message["to"] == address
    code = _code(message)
    assert site.login(KIM, code).json() == INVALID_CODE
    answer = site.login(address, code).json()
    assert (answer["status"], answer["token"]) == ("ok", other)


@pytest.mark.parametrize("address", SAME)
def test_the_same_mailbox_spelled_otherwise_is_the_same_person(site: Vaulted, address: str) -> None:
    assert site.by_email(address).json()["token"] == site.kim
    response = site.root.post("/v1/user", json={"email": address})
    assert response.status_code == 409
    assert site.prelogin(address).json() == DONE
    # The code goes to the address in Kim's record, never to the spelling typed.
    [message] = site.sent()
    assert message["to"] == KIM
    answer = site.login(address, _code(message)).json()
    assert (answer["status"], answer["token"]) == ("ok", site.kim)


def test_the_code_goes_to_the_stored_spelling(site: Vaulted) -> None:
    ann = site.create({"email": "Ann.Smith@Example.COM"})
    assert site.prelogin("ann.smith@example.com").json() == DONE
    [message] = site.sent()
    assert message["to"] == "Ann.Smith@Example.COM"
    assert site.login("ANN.SMITH@example.com", _code(message)).json()["token"] == ann


@pytest.mark.parametrize(
    "address", ["user@example.test", "a.b@host.local", "x@mail.localhost", "y@z.invalid"]
)
def test_reserved_test_domains_are_email_addresses(site: Vaulted, address: str) -> None:
    token = site.create({"email": address})
    assert site.by_email(address.upper()).json()["token"] == token


@pytest.mark.parametrize(
    "phone",
    [
        pytest.param(
            "+\u0664\u0664\u0667\u0667\u0660\u0660\u0669\u0660\u0660\u0661\u0662\u0663",
            id="arabic-indic",
        ),
        pytest.param("\uff10\uff17\uff17\uff10\uff10 900123", id="full-width"),
        pytest.param("07700\u200b900123", id="zero-width-space"),
    ],
)
def test_phone_numbers_in_other_digits_are_refused(site: Vaulted, phone: str) -> None:
    kim_phone = site.create({"phone": "+447700900123"})
    response = site.root.post("/v1/user", json={"phone": phone})
    assert (response.status_code, response.json()) == (
        400,
        {"status": "error", "message": "invalid phone"},
    )
    looked_up = site.root.get(f"/v1/user/phone/{quote(phone)}")
    assert looked_up.status_code == 404
    assert site.root.get("/v1/user/phone/07700%C2%A0900123").json()["token"] == kim_phone


@pytest.mark.parametrize(
    "login",
    [
        pytest.param("\uff4b\uff49\uff4d", id="full-width"),
        pytest.param("k\u200bim", id="zero-width-space"),
        pytest.param("\u212aim", id="kelvin-sign"),
        pytest.param("ki\x00m", id="nul"),
    ],
)
def test_look_alike_logins_are_refused(site: Vaulted, login: str) -> None:
    response = site.root.post("/v1/user", json={"login": login})
    assert (response.status_code, response.json()) == (
        400,
        {"status": "error", "message": "invalid login"},
    )


def test_a_login_in_decomposed_form_is_the_same_login(site: Vaulted) -> None:
    jose = site.create({"login": "Jos\u00e9"})
    response = site.root.post("/v1/user", json={"login": "Jose\u0301"})
    assert response.status_code == 409
    decomposed = quote("Jose\u0301")
    assert site.root.get(f"/v1/user/login/{decomposed}").json()["token"] == jose
