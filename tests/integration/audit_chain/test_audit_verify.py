"""``databunker audit verify``: intact after what the vault itself does (requests, erasure,
retention), failing at the right event after each kind of change made in the database."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from databunker.jobs import run_jobs
from databunker.services.context import Context
from support.audit_chain import Verifier, broken_at, chained, intact, refusal, tamper, value, verify
from support.vaults import Clock, VaultFactory, client_for, create_user

__all__ = ["verify"]  # the fixture

PEOPLE = [
    {"login": "ann", "email": "ann@example.com", "name": "Ann"},
    {"login": "bob", "email": "bob@example.com", "name": "Bob"},
]


@pytest.fixture
def trail(vault: Context) -> list[str]:
    """A vault with a few audited requests of every kind; yields the chain's atokens."""
    with client_for(vault) as api:
        for person in PEOPLE:
            token = create_user(api, person)
            assert api.get(f"/v1/user/token/{token}").status_code == 200
            assert api.put(f"/v1/user/token/{token}", json={"name": "X"}).status_code == 200
        assert api.get("/v1/user/token/00000000-0000-4000-8000-000000000000").status_code == 404
    return chained(vault)


def with_values(vault: Context) -> str:
    """The atoken of the first event that stores an encrypted value (``after``)."""
    return str(value(vault, "SELECT atoken FROM audit WHERE after IS NOT NULL ORDER BY chain_pos"))


def test_an_untouched_trail_is_intact(verify: Verifier, trail: list[str]) -> None:
    assert len(trail) == 7
    outcome = verify()
    intact(outcome, 7)
    assert "verif" not in outcome.stderr  # no progress display for a small chain off a terminal


def test_an_empty_trail_is_intact(verify: Verifier, vault: Context) -> None:
    intact(verify(), 0)


def test_a_changed_title_is_found(verify: Verifier, vault: Context, trail: list[str]) -> None:
    tamper(vault, "UPDATE audit SET title = 'nothing happened' WHERE atoken = :a", a=trail[3])
    assert "its link does not match" in broken_at(verify(), trail[3])


@pytest.mark.parametrize("column", ["created", "status", "accessor", "user_token", "msg", "debug"])
def test_any_changed_metadata_is_found(
    verify: Verifier, vault: Context, trail: list[str], column: str
) -> None:
    value = "1" if column == "created" else "forged"
    tamper(vault, f"UPDATE audit SET {column} = :v WHERE atoken = :a", v=value, a=trail[4])  # noqa: S608
    assert "its link does not match" in broken_at(verify(), trail[4])


def test_a_changed_ciphertext_is_found(verify: Verifier, vault: Context, trail: list[str]) -> None:
    atoken = with_values(vault)
    after = value(vault, "SELECT after FROM audit WHERE atoken = :a", a=atoken)
    changed = bytes(after[:-1]) + bytes([after[-1] ^ 1])
    tamper(vault, "UPDATE audit SET after = :v WHERE atoken = :a", v=changed, a=atoken)
    assert broken_at(verify(), atoken) == "its stored values were changed"


def test_values_removed_from_a_living_person_are_found(
    verify: Verifier, vault: Context, trail: list[str]
) -> None:
    atoken = with_values(vault)
    quote = vault.database.engine.dialect.identifier_preparer.quote  # MariaDB reserves "before"
    tamper(
        vault,
        f"UPDATE audit SET who = NULL, {quote('before')} = NULL, {quote('after')} = NULL "  # noqa: S608
        "WHERE atoken = :a",
        a=atoken,
    )
    assert "person was not erased" in broken_at(verify(), atoken)


def test_a_deleted_event_is_found_at_the_next_one(
    verify: Verifier, vault: Context, trail: list[str]
) -> None:
    tamper(vault, "DELETE FROM audit WHERE atoken = :a", a=trail[2])
    assert broken_at(verify(), trail[3]) == "the event before it is missing"


def test_deleting_the_first_event_is_found(
    verify: Verifier, vault: Context, trail: list[str]
) -> None:
    tamper(vault, "DELETE FROM audit WHERE atoken = :a", a=trail[0])
    assert broken_at(verify(), trail[1]) == "the event before it is missing"


def test_deleting_the_newest_events_is_found(
    verify: Verifier, vault: Context, trail: list[str]
) -> None:
    tamper(vault, "DELETE FROM audit WHERE atoken = :a", a=trail[-1])
    line = refusal(verify())
    assert line.startswith("databunker: audit chain broken: the newest events were deleted")
    assert trail[-2] in line  # where the chain now ends


def test_a_rewound_head_is_found(verify: Verifier, vault: Context, trail: list[str]) -> None:
    # Deleting the newest event and pointing the head at the one before: the head's seal
    # no longer matches.
    link = value(vault, "SELECT chain_link FROM audit WHERE atoken = :a", a=trail[-2])
    tamper(vault, "DELETE FROM audit WHERE atoken = :a", a=trail[-1])
    tamper(
        vault, "UPDATE audit_chain SET position = position - 1, link = :l WHERE lane = 0", l=link
    )
    assert refusal(verify()) == (
        "databunker: audit chain broken: the chain head was changed outside the vault"
    )


def test_a_forged_event_inserted_in_the_chain_is_found(
    verify: Verifier, vault: Context, trail: list[str]
) -> None:
    # Room is made at position 3 (moving the later events up by one, as an editor would),
    # and an event is written there with a copy of a genuine one's link.
    tamper(vault, "UPDATE audit SET chain_pos = -(chain_pos + 1) WHERE chain_pos >= 3")
    tamper(vault, "UPDATE audit SET chain_pos = -chain_pos WHERE chain_pos < 0")
    tamper(
        vault,
        "INSERT INTO audit (atoken, created, title, status, chain_lane, chain_pos, chain_link, "
        "payload_digest) SELECT :forged, created, 'get user record by token', 'ok', chain_lane, "
        "3, chain_link, payload_digest FROM audit WHERE chain_pos = 4",
        forged="99999999-9999-4999-8999-999999999999",
    )
    assert broken_at(verify(), "99999999-9999-4999-8999-999999999999")


def test_a_forged_event_outside_the_chain_is_found(
    verify: Verifier, vault: Context, trail: list[str]
) -> None:
    forged = "99999999-9999-4999-8999-999999999999"
    tamper(
        vault,
        "INSERT INTO audit (atoken, created, title, status) VALUES (:a, 1, 'forged', 'ok')",
        a=forged,
    )
    assert broken_at(verify(), forged) == "it was written outside the chain"


def test_two_events_swapped_in_order_are_found(
    verify: Verifier, vault: Context, trail: list[str]
) -> None:
    first, second = trail[2], trail[5]
    orders = {
        atoken: (
            value(vault, "SELECT seq FROM audit WHERE atoken = :a", a=atoken),
            value(vault, "SELECT chain_pos FROM audit WHERE atoken = :a", a=atoken),
        )
        for atoken in (first, second)
    }
    for atoken in (first, second):  # out of the unique indexes' way first
        tamper(
            vault, "UPDATE audit SET seq = -seq, chain_pos = -chain_pos WHERE atoken = :a", a=atoken
        )
    for atoken, other in ((first, second), (second, first)):
        seq, position = orders[other]
        tamper(
            vault,
            "UPDATE audit SET seq = :s, chain_pos = :p WHERE atoken = :a",
            s=seq,
            p=position,
            a=atoken,
        )
    # The event now at the earlier position is the first whose link fails.
    assert "its link does not match" in broken_at(verify(), second)


def test_the_trail_is_intact_after_a_person_is_erased(
    verify: Verifier, vault: Context, api: TestClient
) -> None:
    ann = create_user(api, PEOPLE[0])
    bob = create_user(api, PEOPLE[1])
    assert api.get(f"/v1/user/token/{ann}").status_code == 200
    assert api.delete(f"/v1/user/token/{ann}").json() == {"status": "ok", "result": "done"}
    left = value(
        vault, "SELECT count(*) FROM audit WHERE user_token = :t AND after IS NOT NULL", t=ann
    )
    assert left == 0  # her values are shredded
    assert api.get(f"/v1/user/token/{bob}").status_code == 200
    intact(verify(), 5)


def test_the_trail_is_intact_after_a_retention_purge(
    verify: Verifier, make_vault: VaultFactory, clock: Clock
) -> None:
    vault = make_vault(policy={"max_audit_retention_period": "10d"})
    with client_for(vault) as api:
        token = create_user(api, PEOPLE[0])
        assert api.get(f"/v1/user/token/{token}").status_code == 200
        clock.advance(9 * 86400)
        assert api.get(f"/v1/user/token/{token}").status_code == 200
        before = api.get("/v1/sys/audit/head").json()
        clock.advance(2 * 86400)
        assert run_jobs(vault)["purge old audit events"] == 2
        assert api.get(f"/v1/user/token/{token}").status_code == 200
        after = api.get("/v1/sys/audit/head").json()
    assert after["count"] == before["count"] + 1  # the count includes the purged events
    intact(verify(), 2)
    # A head anchored before the purge still checks out.
    intact(verify("--anchor", f"{before['count']}:{before['link']}"), 2)


def test_a_purge_of_everything_leaves_an_intact_empty_chain(
    verify: Verifier, make_vault: VaultFactory, clock: Clock
) -> None:
    vault = make_vault(policy={"max_audit_retention_period": "1d"})
    with client_for(vault) as api:
        create_user(api, PEOPLE[0])
        anchored = api.get("/v1/sys/audit/head").json()
        assert api.get("/v1/user/login/ann").status_code == 200
        newest = api.get("/v1/sys/audit/head").json()
    clock.advance(3 * 86400)
    run_jobs(vault)
    assert chained(vault) == []
    # The newest event's link is still known (as the anchor of what comes next) ...
    outcome = verify("--anchor", f"{newest['count']}:{newest['link']}")
    intact(outcome, 0)
    assert "removed by retention" not in outcome.stdout
    # ... an older one is gone with its event.
    outcome = verify("--anchor", f"{anchored['count']}:{anchored['link']}")
    intact(outcome, 0)
    assert "removed by retention" in outcome.stdout
    with client_for(vault) as api:
        create_user(api, PEOPLE[1])
    intact(verify(), 1)


def test_a_purge_keeps_events_that_follow_one_not_yet_due(
    verify: Verifier, make_vault: VaultFactory, clock: Clock
) -> None:
    # A server with a slow clock wrote an old-looking event after a recent one: the chain
    # loses its prefix only, and the old-looking event goes at a later purge.
    vault = make_vault(policy={"max_audit_retention_period": "10d"})
    start = clock.now
    with client_for(vault) as api:
        create_user(api, PEOPLE[0])
        clock.advance(20 * 86400)
        create_user(api, PEOPLE[1])
        clock.now = start + 86400
        assert api.get("/v1/user/login/bob").status_code == 200
    trail = chained(vault)
    clock.now = start + 15 * 86400
    run_jobs(vault)
    assert chained(vault) == trail[1:]
    intact(verify(), 2)
