"""``GET /v1/sys/audit/head`` and anchoring it: ``databunker audit verify --anchor``."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from starlette.testclient import TestClient

from databunker.services.context import Context
from databunker.storage.audit_chain import Anchor
from support.audit_chain import Verifier, broken_at, chained, intact, refusal, tamper, verify
from support.vaults import create_user

__all__ = ["verify"]  # the fixture


def head(api: TestClient) -> dict[str, object]:
    response = api.get("/v1/sys/audit/head")
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_the_head_counts_the_events_and_names_the_newest_link(
    api: TestClient, vault: Context
) -> None:
    empty = head(api)
    assert empty["status"] == "ok"
    assert empty["count"] == 0
    token = create_user(api, {"login": "ann"})
    first = head(api)
    assert first["count"] == 1
    assert api.get(f"/v1/user/token/{token}").status_code == 200
    second = head(api)
    assert second["count"] == 2
    assert isinstance(second["link"], str)
    int(second["link"], 16)  # hexadecimal
    assert len({empty["link"], first["link"], second["link"]}) == 3
    assert head(api) == second  # reading the head is not itself an event
    assert len(chained(vault)) == 2


def test_only_root_reads_the_head(
    api: TestClient, anonymous: TestClient, user_client: Callable[[str], TestClient]
) -> None:
    token = create_user(api, {"login": "ann"})
    assert anonymous.get("/v1/sys/audit/head").status_code == 403
    denied = user_client(token).get("/v1/sys/audit/head")
    assert denied.status_code == 403
    assert denied.json()["status"] == "error"


def test_an_anchored_head_checks_out_later(verify: Verifier, api: TestClient) -> None:
    token = create_user(api, {"login": "ann"})
    anchored = head(api)
    for _ in range(3):
        assert api.get(f"/v1/user/token/{token}").status_code == 200
    intact(verify("--anchor", f"{anchored['count']}:{anchored['link']}"), 4)


def test_an_anchored_event_that_was_changed_is_found(
    verify: Verifier, api: TestClient, vault: Context
) -> None:
    # Rewriting the events up to the anchor with a copy of other genuine links is found
    # either way; here the anchored event's own link is replaced by its successor's.
    token = create_user(api, {"login": "ann"})
    anchored = head(api)
    assert api.get(f"/v1/user/token/{token}").status_code == 200
    first, second = chained(vault)
    tamper(
        vault,
        "UPDATE audit SET chain_link = (SELECT chain_link FROM audit WHERE atoken = :b) "
        "WHERE atoken = :a",
        a=first,
        b=second,
    )
    assert broken_at(verify("--anchor", f"{anchored['count']}:{anchored['link']}"), first)


def test_a_head_shorter_than_the_anchor_is_found(
    verify: Verifier, api: TestClient, vault: Context
) -> None:
    token = create_user(api, {"login": "ann"})
    assert api.get(f"/v1/user/token/{token}").status_code == 200
    # As if the database had been put back from an older copy: the anchor names more events.
    ahead = Anchor(7, b"\x01" * 32, {0: 7})
    line = refusal(verify("--anchor", f"7:{ahead.link_hex()}"))
    assert line == (
        "databunker: audit chain broken: the chain has 2 events, fewer than the anchor's 7: "
        "its newest events were deleted"
    )


def test_an_anchor_not_taken_from_this_vault_is_found(verify: Verifier, api: TestClient) -> None:
    create_user(api, {"login": "ann"})
    genuine = head(api)
    # The same positions, the digest of another vault's (or another history's) links.
    positions = Anchor.parse(int(str(genuine["count"])), str(genuine["link"])).positions
    elsewhere = Anchor(1, b"\xab" * 32, positions)
    line = refusal(verify("--anchor", f"1:{elsewhere.link_hex()}"))
    assert line == (
        "databunker: audit chain broken: the chain is not the one anchored: "
        "its events were rewritten"
    )


@pytest.mark.parametrize("anchor", ["", "5", "x:00", "1:abc", "-1:" + "00" * 32, "1:" + "00" * 32])
def test_a_malformed_anchor_is_refused_in_one_line(verify: Verifier, anchor: str) -> None:
    assert refusal(verify(f"--anchor={anchor}")) == (
        "databunker: --anchor must be COUNT:LINK, as GET /v1/sys/audit/head returns them"
    )
