"""The domain pieces of DatabunkerPro's bulk and system operations: whole-vault listings,
lookups of many identities, statistics and admin-minted access tokens."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from starlette.testclient import TestClient

from databunker.errors import AccessDenied, BadRequest, Conflict, NotFound
from databunker.services import agreements, legal, login, requests, sessions, stats, users
from databunker.services.context import Context, Work
from databunker.units import Access
from support.units import perform
from support.vaults import Clock, VaultFactory, client_for, create_user

ANN = {"login": "ann", "email": "ann@example.com", "name": "Ann"}
BOB = {"login": "bob", "phone": "+447700900123"}
CAROL = {"login": "carol"}
SESSION = "5b7f3a1e-0000-4000-8000-00000000000a"


@pytest.fixture
def listing_vault(make_vault: VaultFactory) -> Context:
    return make_vault(generic={"list_users": True})


@pytest.fixture
def root(listing_vault: Context) -> Iterator[TestClient]:
    with client_for(listing_vault) as client:
        yield client


def _run(vault: Context, call: Callable[[Work], object], **kwargs: object) -> object:
    return perform(vault, call, **kwargs)  # type: ignore[arg-type]


def test_every_living_user_is_listed_oldest_first_without_the_erased(
    listing_vault: Context, root: TestClient, clock: Clock
) -> None:
    tokens = []
    for profile in (ANN, BOB, CAROL):
        tokens.append(create_user(root, profile))
        clock.advance(1)
    assert root.delete(f"/v1/user/token/{tokens[1]}").status_code == 200

    first = _run(listing_vault, lambda w: users.list_living_users(w, 0, 1))
    rest = _run(listing_vault, lambda w: users.list_living_users(w, 1, 10))

    assert first.total == rest.total == 2  # type: ignore[attr-defined]
    assert [(r.token, r.profile) for r in first.rows] == [(tokens[0], ANN)]  # type: ignore[attr-defined]
    assert [(r.token, r.profile) for r in rest.rows] == [(tokens[2], CAROL)]  # type: ignore[attr-defined]


def test_listing_users_needs_list_users(vault: Context) -> None:
    with pytest.raises(AccessDenied):
        perform(vault, lambda w: users.list_living_users(w, 0, 10))
    with pytest.raises(AccessDenied):
        perform(vault, lambda w: users.find_users(w, [("login", "ann")]))


def test_many_identities_find_each_person_once_and_skip_the_unknown(
    listing_vault: Context, root: TestClient
) -> None:
    ann = create_user(root, ANN)
    bob = create_user(root, BOB)

    found = perform(
        listing_vault,
        lambda w: users.find_users(
            w,
            [
                ("email", "ANN@example.com"),
                ("login", "nobody"),
                ("phone", "+44 7700 900123"),
                ("login", "ann"),
            ],
        ),
    )

    assert [(r.token, r.profile) for r in found] == [(ann, ANN), (bob, BOB)]
    with pytest.raises(BadRequest):
        perform(listing_vault, lambda w: users.find_users(w, [("nickname", "ann")]))


def test_every_request_is_listed_whatever_its_status(
    listing_vault: Context, root: TestClient, clock: Clock
) -> None:
    ann = create_user(root, ANN)
    first = perform(listing_vault, lambda w: _open_forget_me(w, ann))
    clock.advance(1)
    bob = create_user(root, BOB)
    second = perform(listing_vault, lambda w: _open_forget_me(w, bob))
    assert root.delete(f"/v1/request/{first}").status_code == 200

    page = perform(listing_vault, lambda w: requests.list_all_requests(w, 0, 10))

    assert page.total == 2
    assert {(r.rtoken, r.status) for r in page.rows} == {(second, "open"), (first, "canceled")}
    # The v1 queue still shows only the open one by default.
    assert [r["rtoken"] for r in root.get("/v1/requests").json()["rows"]] == [second]


def _open_forget_me(work: Work, token: str) -> str:
    from databunker.services.request_queue import open_request

    return open_request(work, user_token=token, action="forget-me", key=None, change=None).rtoken


def test_stats_count_what_the_vault_holds(
    listing_vault: Context, root: TestClient, clock: Clock
) -> None:
    ann = create_user(root, ANN)
    bob = create_user(root, BOB)
    create_user(root, CAROL)
    root.delete(f"/v1/user/token/{bob}")
    root.post(f"/v1/session/{SESSION}", json={"token": ann, "expiration": "10s"})
    root.post(f"/v1/userapp/token/{ann}/shop", json={"cart": 1})
    root.post(f"/v1/agreement/core-send-email-on-login/token/{ann}", json={})

    counted = perform(listing_vault, stats.system_stats)

    assert (counted.users, counted.sessions, counted.app_records, counted.agreements) == (
        2,
        1,
        1,
        1,
    )
    assert (counted.tenants, counted.tokens, counted.records) == (1, 0, 2)
    clock.advance(11)
    assert perform(listing_vault, stats.system_stats).sessions == 0


def test_stats_are_roots(listing_vault: Context, root: TestClient) -> None:
    from support.vaults import issue_user_token

    xtoken = issue_user_token(listing_vault, create_user(root, ANN))
    with pytest.raises(AccessDenied):
        perform(listing_vault, stats.system_stats, token=xtoken)


def test_root_mints_a_persons_access_token_capped_by_policy(
    listing_vault: Context, root: TestClient, clock: Clock
) -> None:
    ann = create_user(root, ANN)

    minted = perform(listing_vault, lambda w: login.issue_for_user(w, "login", "ann", 30))
    longest = perform(listing_vault, lambda w: login.issue_for_user(w, "token", ann, 10**9))

    assert minted.user_token == longest.user_token == ann
    with client_for(listing_vault, minted.xtoken) as own:
        assert own.get(f"/v1/user/token/{ann}").json()["data"] == ANN
        clock.advance(31)
        assert own.get(f"/v1/user/token/{ann}").status_code == 403
    with client_for(listing_vault, longest.xtoken) as own:
        assert own.get(f"/v1/user/token/{ann}").status_code == 200
        clock.advance(listing_vault.settings.policy.user_token_seconds)
        assert own.get(f"/v1/user/token/{ann}").status_code == 403
    with pytest.raises(NotFound):
        perform(listing_vault, lambda w: login.issue_for_user(w, "login", "nobody", None))
    with pytest.raises(AccessDenied):
        perform(
            listing_vault,
            lambda w: login.issue_for_user(w, "token", ann, None),
            token=minted.xtoken,
        )


def test_create_only_and_change_only_saves_of_the_catalogue(listing_vault: Context) -> None:
    change = legal.BasisChange(shortdesc="Newsletter")

    perform(listing_vault, lambda w: legal.save_basis(w, "news", change, existing=False))
    with pytest.raises(Conflict):
        perform(listing_vault, lambda w: legal.save_basis(w, "news", change, existing=False))
    with pytest.raises(NotFound):
        perform(listing_vault, lambda w: legal.save_basis(w, "other", change, existing=True))
    perform(
        listing_vault,
        lambda w: legal.save_basis(w, "news", legal.BasisChange(fulldesc="x"), existing=True),
    )
    activity = legal.ActivityChange(title="Mailing")
    perform(listing_vault, lambda w: legal.save_activity(w, "mail", activity, existing=False))
    with pytest.raises(Conflict):
        perform(listing_vault, lambda w: legal.save_activity(w, "mail", activity, existing=False))
    with pytest.raises(NotFound):
        perform(listing_vault, lambda w: legal.save_activity(w, "nope", activity, existing=True))

    bases = {b.brief: b for b in perform(listing_vault, legal.list_bases).rows}
    assert (bases["news"].shortdesc, bases["news"].fulldesc) == ("Newsletter", "x")


def test_a_withdrawal_request_waits_even_where_the_person_has_control(
    listing_vault: Context, root: TestClient
) -> None:
    ann = create_user(root, ANN)
    root.post("/v1/lbasis/news", json={"usercontrol": True})
    root.post(f"/v1/agreement/news/token/{ann}", json={})

    opened = perform(
        listing_vault, lambda w: agreements.request_withdrawal(w, "news", "token", ann)
    )

    assert root.get(f"/v1/agreement/news/token/{ann}").json()["data"]["status"] == "yes"
    assert root.post(f"/v1/request/{opened.rtoken}").status_code == 200
    assert root.get(f"/v1/agreement/news/token/{ann}").json()["data"]["status"] == "no"
    with pytest.raises(NotFound):  # nothing to withdraw
        perform(
            listing_vault,
            lambda w: agreements.request_withdrawal(w, "core-send-email-on-login", "token", ann),
        )


def test_a_session_lifetime_can_come_from_outside_its_object(
    listing_vault: Context, root: TestClient, clock: Clock
) -> None:
    data = {"cart": [1], "expiration": "1h"}

    perform(
        listing_vault,
        lambda w: sessions.upsert_session(w, SESSION, data, 5),
        access=Access.ROOT,
    )

    assert root.get(f"/v1/session/{SESSION}").json()["data"] == data
    clock.advance(6)
    assert root.get(f"/v1/session/{SESSION}").json()["message"] == "not found"
