"""Unlock ids: root's short-lived gate before any listing of the whole vault."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from databunker.errors import AccessDenied
from databunker.jobs import run_jobs
from databunker.services import unlock
from databunker.services.context import Context, Principal, PrincipalKind, Work
from databunker.storage.tables import access_tokens
from databunker.units import Access
from support.units import perform
from support.vaults import ROOT_TOKEN, Clock, issue_user_token


def _issue(vault: Context) -> str:
    return perform(vault, unlock.issue_unlock, access=Access.ROOT)


def _check(vault: Context, unlock_id: str | None, token: str | None = ROOT_TOKEN) -> None:
    def check(work: Work) -> None:
        unlock.require_unlock(work, unlock_id)

    perform(vault, check, token=token)


def test_a_fresh_unlock_id_opens_the_gate_again_and_again_within_its_minute(
    vault: Context, clock: Clock
) -> None:
    unlock_id = _issue(vault)

    _check(vault, unlock_id)
    clock.advance(59)
    _check(vault, unlock_id)
    _check(vault, unlock_id.upper())


def test_an_unlock_id_expires_after_sixty_seconds(vault: Context, clock: Clock) -> None:
    unlock_id = _issue(vault)
    clock.advance(60)

    with pytest.raises(AccessDenied) as refused:
        _check(vault, unlock_id)
    assert refused.value.message == unlock.UNLOCK_REFUSED


@pytest.mark.parametrize(
    "presented", [None, "", "not-a-uuid", "5b7f3a1e-0000-4000-8000-000000000000"]
)
def test_missing_malformed_or_unknown_unlock_ids_are_refused(
    vault: Context, presented: str | None
) -> None:
    _issue(vault)
    with pytest.raises(AccessDenied) as refused:
        _check(vault, presented)
    assert refused.value.message == unlock.UNLOCK_REFUSED


def test_a_person_can_neither_get_nor_use_an_unlock_id(vault: Context) -> None:
    unlock_id = _issue(vault)
    xtoken = issue_user_token(vault, "5b7f3a1e-0000-4000-8000-000000000001")

    with pytest.raises(AccessDenied):
        perform(vault, unlock.issue_unlock, token=xtoken)
    with pytest.raises(AccessDenied):
        _check(vault, unlock_id, token=xtoken)


def test_the_id_is_stored_only_as_a_keyed_hash_and_is_no_credential(vault: Context) -> None:
    unlock_id = _issue(vault)

    with vault.database.transaction() as conn:
        rows = conn.execute(
            sa.select(access_tokens.c.token_hash).where(access_tokens.c.kind == "unlock")
        ).all()
    assert len(rows) == 1
    assert unlock_id.encode() not in bytes(rows[0][0])
    # Presented as a credential, it is nobody.
    with pytest.raises(AccessDenied):
        _check(vault, unlock_id, token=unlock_id)


def test_expired_unlock_ids_are_purged(vault: Context, clock: Clock) -> None:
    _issue(vault)
    _issue(vault)
    clock.advance(61)

    handled = run_jobs(vault)

    assert handled["purge expired unlock ids"] == 2


def test_an_unlock_id_opens_the_gate_only_for_the_credential_it_was_given_to(
    vault: Context, clock: Clock
) -> None:
    unlock_id = _issue(vault)
    other_admin = Principal(PrincipalKind.ROOT, accessor="another administrator")

    with vault.database.transaction() as conn:
        work = Work(vault, conn, other_admin, clock())
        with pytest.raises(AccessDenied):
            unlock.require_unlock(work, unlock_id)
    _check(vault, unlock_id)
