"""User requests over HTTP: self-service switches, ``/v1/requests``, ``/v1/request/{rtoken}``.

A person's own change or erasure outside self-service becomes a request; root approves it
(the change is then applied) or root or the person cancels it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from httpx2 import Response
from starlette.testclient import TestClient

from databunker.services.context import Context
from databunker.storage.outbox import open_payload
from databunker.storage.tables import outbox
from support.vaults import client_for, issue_user_token
from support.vaults import create_user as create

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ANN = {"login": "ann", "email": "ann@example.com", "name": "Ann"}
BOB = {"login": "bob", "email": "bob@example.com", "name": "Bob"}
ACCESS_DENIED = {"status": "error", "message": "access denied"}
DONE = {"status": "ok", "result": "done"}
LOCKED_BRIEF = "terms"


@dataclass
class Scene:
    vault: Context
    root: TestClient
    ann: str
    bob: str
    as_ann: TestClient
    as_bob: TestClient


@pytest.fixture
def stage(make_vault: Callable[..., Context]) -> Iterator[Callable[..., Scene]]:
    """``stage(**settings)``: a vault holding Ann and Bob, with root, Ann and Bob clients."""
    with ExitStack() as stack:

        def build(schema: dict[str, Any] | None = None, **settings: dict[str, Any]) -> Scene:
            vault = make_vault(schema, **settings)
            root = stack.enter_context(client_for(vault))
            ann, bob = create(root, ANN), create(root, BOB)
            as_ann = stack.enter_context(client_for(vault, issue_user_token(vault, ann)))
            as_bob = stack.enter_context(client_for(vault, issue_user_token(vault, bob)))
            return Scene(vault, root, ann, bob, as_ann, as_bob)

        yield build


def created(response: Response, result: str = "request-created") -> str:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert body["result"] == result
    assert UUID.match(body["rtoken"])
    return str(body["rtoken"])


def assert_error(response: Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"status": "error", "message": message}


def profile_of(scene: Scene) -> Any:
    response = scene.root.get(f"/v1/user/token/{scene.ann}")
    assert response.status_code == 200, response.text
    return response.json()["data"]


def titles(scene: Scene) -> list[tuple[str, str]]:
    rows = scene.root.get(f"/v1/audit/list/{scene.ann}?limit=100").json()["rows"]
    return [(row["title"], row["status"]) for row in rows]


# -- self-service switches ---------------------------------------------------------------------


def test_a_persons_change_becomes_a_request_and_root_approves_it(
    stage: Callable[..., Scene],
) -> None:
    scene = stage()
    rtoken = created(scene.as_ann.put(f"/v1/user/token/{scene.ann}", json={"name": "Annie"}))

    assert profile_of(scene) == ANN
    view = scene.as_ann.get(f"/v1/request/{rtoken}").json()
    assert view["status"] == "ok"
    assert (view["rtoken"], view["action"]) == (rtoken, "change-profile")
    assert view["original"] == ANN
    assert view["change"] == {"name": "Annie"}
    assert view["request"]["status"] == "open"
    assert view["request"]["token"] == scene.ann

    approved = scene.root.post(f"/v1/request/{rtoken}", json={"reason": "checked"})

    assert (approved.status_code, approved.json()) == (200, DONE)
    assert profile_of(scene) == {**ANN, "name": "Annie"}
    [row] = scene.root.get("/v1/requests?status=approved").json()["rows"]
    assert (row["rtoken"], row["status"], row["reason"]) == (rtoken, "approved", "checked")
    assert ("user change-profile request", "ok") in titles(scene)
    assert ("approve user request", "ok") in titles(scene)


def test_an_approved_change_still_obeys_duplicate_indexes(stage: Callable[..., Scene]) -> None:
    scene = stage()
    rtoken = created(scene.as_ann.put(f"/v1/user/token/{scene.ann}", json={"login": "bob"}))

    assert scene.root.post(f"/v1/request/{rtoken}").status_code == 409

    assert profile_of(scene) == ANN
    assert scene.root.get(f"/v1/request/{rtoken}").json()["request"]["status"] == "open"


def test_self_service_applies_a_change_directly(stage: Callable[..., Scene]) -> None:
    scene = stage(selfservice={"user_record_change": True})

    response = scene.as_ann.put(f"/v1/user/token/{scene.ann}", json={"name": "Annie"})

    assert response.json() == {"status": "ok", "token": scene.ann}
    assert profile_of(scene)["name"] == "Annie"
    assert scene.root.get("/v1/requests").json()["rows"] == []


def test_a_change_to_an_admin_field_needs_approval_even_in_self_service(
    stage: Callable[..., Scene],
) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "tier": {"type": "string", "admin": True}},
    }
    scene = stage(schema, selfservice={"user_record_change": True})

    created(scene.as_ann.put(f"/v1/user/token/{scene.ann}", json={"tier": "gold"}))
    direct = scene.as_ann.put(f"/v1/user/token/{scene.ann}", json={"name": "Annie"})

    assert direct.json() == {"status": "ok", "token": scene.ann}
    assert "tier" not in profile_of(scene)


def test_root_changes_are_never_routed_to_approval(stage: Callable[..., Scene]) -> None:
    scene = stage()

    changed = scene.root.put(f"/v1/user/token/{scene.ann}", json={"name": "Annie"})
    erased = scene.root.delete(f"/v1/user/token/{scene.bob}")

    assert changed.json() == {"status": "ok", "token": scene.ann}
    assert erased.json() == DONE
    assert scene.root.get("/v1/requests").json() == {"status": "ok", "total": 0, "rows": []}


def test_a_persons_erasure_becomes_a_request_and_approval_erases_them(
    stage: Callable[..., Scene],
) -> None:
    scene = stage()
    rtoken = created(scene.as_ann.delete(f"/v1/user/token/{scene.ann}"))
    again = scene.as_ann.delete(f"/v1/user/email/{ANN['email']}")

    assert created(again, "request-exists") == rtoken
    assert profile_of(scene) == ANN
    assert ("user forget-me request", "ok") in titles(scene)

    assert scene.root.post(f"/v1/request/{rtoken}").json() == DONE

    assert profile_of(scene) == {}
    assert_error(scene.root.get(f"/v1/user/email/{ANN['email']}"), 404, "not found")
    [row] = scene.root.get(f"/v1/requests/token/{scene.ann}").json()["rows"]
    assert (row["action"], row["status"]) == ("forget-me", "approved")


def test_self_service_erasure_is_direct(stage: Callable[..., Scene]) -> None:
    scene = stage(selfservice={"forget_me": True})

    assert scene.as_ann.delete(f"/v1/user/token/{scene.ann}").json() == DONE

    assert profile_of(scene) == {}


def test_approving_a_request_of_an_erased_person_is_not_found(stage: Callable[..., Scene]) -> None:
    scene = stage()
    rtoken = created(scene.as_ann.put(f"/v1/user/token/{scene.ann}", json={"name": "Annie"}))
    assert scene.root.delete(f"/v1/user/token/{scene.ann}").json() == DONE

    assert_error(scene.root.post(f"/v1/request/{rtoken}"), 404, "user record not found")
    view = scene.root.get(f"/v1/request/{rtoken}").json()
    assert view["original"] == {}
    assert "change" not in view


def test_an_app_change_request_is_applied_on_approval(stage: Callable[..., Scene]) -> None:
    scene = stage()
    path = f"/v1/userapp/token/{scene.ann}/shop"
    assert scene.root.post(path, json={"cart": ["A-1"]}).status_code == 200
    rtoken = created(scene.as_ann.put(path, json={"cart": ["B-2"]}))

    view = scene.as_ann.get(f"/v1/request/{rtoken}").json()
    assert (view["action"], view["app"]) == ("change-app-data", "shop")
    assert view["original"] == {"cart": ["A-1"]}
    assert view["change"] == {"cart": ["B-2"]}
    [row] = scene.root.get("/v1/requests").json()["rows"]
    assert (row["app"], row["more"]) == ("shop", True)
    assert "change" not in row

    assert scene.root.post(f"/v1/request/{rtoken}").json() == DONE

    assert scene.root.get(path).json()["data"] == {"cart": ["B-2"]}


def test_a_consent_withdrawal_request_withdraws_as_admin(stage: Callable[..., Scene]) -> None:
    scene = stage()
    body = {"usercontrol": False, "module": "signup-page"}
    assert scene.root.post(f"/v1/lbasis/{LOCKED_BRIEF}", json=body).status_code == 200
    path = f"/v1/agreement/{LOCKED_BRIEF}/token/{scene.ann}"
    assert scene.root.post(path).status_code == 200
    rtoken = created(scene.as_ann.delete(path))

    view = scene.as_ann.get(f"/v1/request/{rtoken}").json()
    assert (view["action"], view["brief"]) == ("agreement-withdraw", LOCKED_BRIEF)
    assert view["original"]["status"] == "yes"
    assert scene.root.get(path).json()["data"]["status"] == "yes"

    assert scene.root.post(f"/v1/request/{rtoken}").json() == DONE

    agreement = scene.root.get(path).json()["data"]
    assert (agreement["status"], agreement["lastmodifiedby"]) == ("no", "admin")


# -- deciding ----------------------------------------------------------------------------------


def test_cancel_by_the_person_and_by_root(stage: Callable[..., Scene]) -> None:
    scene = stage()
    mine = created(scene.as_ann.delete(f"/v1/user/token/{scene.ann}"))

    assert scene.as_ann.delete(f"/v1/request/{mine}").json() == DONE
    assert_error(scene.root.post(f"/v1/request/{mine}"), 409, "wrong status: canceled")
    assert_error(scene.as_ann.delete(f"/v1/request/{mine}"), 409, "wrong status: canceled")

    again = created(scene.as_ann.delete(f"/v1/user/token/{scene.ann}"))
    assert again != mine
    cancel = scene.root.request("DELETE", f"/v1/request/{again}", json={"reason": "duplicate"})
    assert cancel.json() == DONE

    rows = scene.root.get("/v1/requests?status=canceled").json()["rows"]
    assert {(r["rtoken"], r["reason"]) for r in rows} == {
        (mine, "user operation"),
        (again, "duplicate"),
    }
    assert profile_of(scene) == ANN
    assert ("cancel user request", "ok") in titles(scene)


def test_an_approved_request_cannot_be_approved_or_cancelled_again(
    stage: Callable[..., Scene],
) -> None:
    scene = stage()
    rtoken = created(scene.as_ann.put(f"/v1/user/token/{scene.ann}", json={"name": "Annie"}))
    assert scene.root.post(f"/v1/request/{rtoken}").json() == DONE

    assert_error(scene.root.post(f"/v1/request/{rtoken}"), 409, "wrong status: approved")
    assert_error(scene.as_ann.delete(f"/v1/request/{rtoken}"), 409, "wrong status: approved")


def test_a_person_reaches_only_their_own_requests_and_never_approves(
    stage: Callable[..., Scene],
) -> None:
    scene = stage()
    rtoken = created(scene.as_ann.put(f"/v1/user/token/{scene.ann}", json={"name": "Annie"}))
    unknown = "9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f"

    for response in (
        scene.as_bob.get(f"/v1/request/{rtoken}"),
        scene.as_bob.post(f"/v1/request/{rtoken}"),
        scene.as_bob.delete(f"/v1/request/{rtoken}"),
        scene.as_bob.get(f"/v1/requests/token/{scene.ann}"),
        scene.as_bob.get(f"/v1/request/{unknown}"),
        scene.as_ann.post(f"/v1/request/{rtoken}"),
        scene.as_ann.get("/v1/requests"),
    ):
        assert (response.status_code, response.json()) == (403, ACCESS_DENIED)
    assert_error(scene.root.get(f"/v1/request/{unknown}"), 404, "not found")
    assert profile_of(scene) == ANN
    assert scene.root.get(f"/v1/request/{rtoken}").json()["request"]["status"] == "open"


# -- listing -----------------------------------------------------------------------------------


def test_lists_page_newest_first_and_filter_by_status(
    stage: Callable[..., Scene], clock: Any
) -> None:
    scene = stage()
    assert scene.root.get(f"/v1/requests/token/{scene.ann}").json() == {
        "status": "ok",
        "total": 0,
        "rows": [],
    }
    first = created(scene.as_ann.put(f"/v1/user/token/{scene.ann}", json={"name": "A"}))
    clock.advance(10)
    second = created(scene.as_ann.delete(f"/v1/user/token/{scene.ann}"))
    clock.advance(10)
    third = created(scene.as_bob.delete(f"/v1/user/token/{scene.bob}"))

    listed = scene.root.get("/v1/requests").json()
    assert listed["total"] == 3
    assert [r["rtoken"] for r in listed["rows"]] == [third, second, first]
    row = listed["rows"][2]
    assert set(row) == {"rtoken", "token", "action", "status", "creationtime", "when", "more"}
    assert (row["token"], row["creationtime"], row["more"]) == (scene.ann, row["when"], True)
    assert listed["rows"][1]["more"] is False

    paged = scene.root.get("/v1/requests?offset=1&limit=1").json()
    assert (paged["total"], [r["rtoken"] for r in paged["rows"]]) == (3, [second])

    assert scene.root.delete(f"/v1/request/{second}").json() == DONE
    assert [r["rtoken"] for r in scene.root.get("/v1/requests").json()["rows"]] == [third, first]
    canceled = scene.root.get("/v1/requests?status=canceled").json()["rows"]
    assert [r["rtoken"] for r in canceled] == [second]
    assert_error(scene.root.get("/v1/requests?status=bogus"), 400, "bad status")

    own = scene.as_ann.get(f"/v1/requests/email/{ANN['email']}").json()
    assert (own["total"], {r["rtoken"] for r in own["rows"]}) == (2, {first, second})
    assert ("get user privacy requests", "ok") in titles(scene)


# -- the administrator's alert -------------------------------------------------------------------


def test_a_new_request_alerts_the_administrator_without_personal_data(
    stage: Callable[..., Scene],
) -> None:
    scene = stage(generic={"admin_email": "dpo@example.com"}, smtp={"server": "127.0.0.1"})

    created(scene.as_ann.put(f"/v1/user/token/{scene.ann}", json={"name": "Annie"}))
    created(scene.as_ann.put(f"/v1/user/token/{scene.ann}", json={"name": "X"}), "request-exists")

    key = scene.vault.keyring.service_key("outbox")
    with scene.vault.database.transaction() as conn:
        rows = list(conn.execute(sa.select(outbox.c.id, outbox.c.kind, outbox.c.payload)))
    [mail] = [open_payload(key, r.id, r.payload) for r in rows if r.kind == "email"]
    assert mail == {
        "to": "dpo@example.com",
        "subject": "Data Subject request received",
        "text": "Request: change-profile",
    }
    text = str(mail)
    for value in (*ANN.values(), "Annie", scene.ann):
        assert value not in text


def test_no_alert_without_an_administrator_address(stage: Callable[..., Scene]) -> None:
    scene = stage(smtp={"server": "127.0.0.1"})

    created(scene.as_ann.delete(f"/v1/user/token/{scene.ann}"))

    with scene.vault.database.transaction() as conn:
        kinds = list(conn.execute(sa.select(outbox.c.kind)).scalars())
    assert "email" not in kinds


def test_approvals_send_the_matching_webhooks(stage: Callable[..., Scene]) -> None:
    scene = stage(notification={"notification_url": "http://127.0.0.1:9/hook"})
    change = created(scene.as_bob.put(f"/v1/user/token/{scene.bob}", json={"name": "Robert"}))
    erase = created(scene.as_ann.delete(f"/v1/user/token/{scene.ann}"))
    assert scene.root.post(f"/v1/request/{change}").json() == DONE
    assert scene.root.post(f"/v1/request/{erase}").json() == DONE

    key = scene.vault.keyring.service_key("outbox")
    with scene.vault.database.transaction() as conn:
        query = sa.select(outbox.c.id, outbox.c.kind, outbox.c.payload).order_by(outbox.c.id)
        rows = list(conn.execute(query))
    hooks = [open_payload(key, r.id, r.payload) for r in rows if r.kind == "webhook"]
    assert [(h["action"], h["identity"]) for h in hooks[-2:]] == [
        ("profilechange", scene.bob),
        ("forgetme", scene.ann),
    ]
