"""Opening a vault whose lookup indexes were computed in the earlier canonical form of
identities recomputes them once: nobody is lost, and a stored look-alike stops answering
for the identity it imitates."""

from __future__ import annotations

import sqlalchemy as sa
from starlette.testclient import TestClient

from databunker.services.context import Context
from databunker.services.records import seal_profile
from databunker.services.system import IDENTITY_FORM, open_vault
from databunker.storage.tables import meta, users
from support.vaults import client_for, create_user

KELVIN = "\u212aim@example.com"


def _as_before(vault: Context, token: str, profile: dict[str, str], email_index: str) -> None:
    """Store ``profile`` indexed as the earlier form did (Unicode lower case of it all)."""
    with vault.database.transaction() as conn:
        wrapped = conn.execute(
            sa.select(users.c.data_key).where(users.c.token == token)
        ).scalar_one()
        key = vault.keyring.unwrap(wrapped, token)
        conn.execute(
            users.update()
            .where(users.c.token == token)
            .values(
                profile=seal_profile(key, token, profile),
                email_idx=vault.keyring.blind_index("email", email_index),
            )
        )
        conn.execute(meta.delete().where(meta.c.name == IDENTITY_FORM))


def test_indexes_in_the_earlier_form_are_recomputed_once(api: TestClient, vault: Context) -> None:
    angel = create_user(api, {"login": "angel"})
    _as_before(
        vault,
        angel,
        {"login": "angel", "email": "\u00c4ngel@B\u00fccher.de"},
        "\u00e4ngel@b\u00fccher.de",
    )
    kelvin = create_user(api, {"login": "kelvin"})
    _as_before(vault, kelvin, {"login": "kelvin", "email": KELVIN}, "kim@example.com")
    # Before: the look-alike answers for kim@example.com.
    assert api.get("/v1/user/email/kim@example.com").json()["token"] == kelvin

    open_vault(vault.database, vault.keyring, "GB")

    with client_for(vault) as root:
        assert root.get("/v1/user/email/\u00c4ngel@b\u00fcCHER.de").json()["token"] == angel
        assert root.get("/v1/user/email/kim@example.com").status_code == 404
        # The look-alike's record is still there, by token, unchanged.
        kept = root.get(f"/v1/user/token/{kelvin}").json()["data"]
        assert kept == {"login": "kelvin", "email": KELVIN}
        assert root.get("/v1/user/login/kelvin").json()["token"] == kelvin
        # The real kim can now have a record of their own.
        kim = create_user(root, {"email": "kim@example.com"})
        assert root.get("/v1/user/email/KIM@example.com").json()["token"] == kim
    with vault.database.transaction() as conn:
        form = conn.execute(sa.select(meta.c.value).where(meta.c.name == IDENTITY_FORM))
        assert form.scalar_one() == "2"


def test_two_records_that_now_share_an_identity_do_not_stop_the_server(
    api: TestClient, vault: Context
) -> None:
    composed = create_user(api, {"login": "Jos\u00e9"})
    decomposed = create_user(api, {"login": "other"})
    # Stored by the earlier form, which indexed a login as typed: NFD apart from NFC.
    with vault.database.transaction() as conn:
        wrapped = conn.execute(
            sa.select(users.c.data_key).where(users.c.token == decomposed)
        ).scalar_one()
        key = vault.keyring.unwrap(wrapped, decomposed)
        conn.execute(
            users.update()
            .where(users.c.token == decomposed)
            .values(
                profile=seal_profile(key, decomposed, {"login": "Jose\u0301"}),
                login_idx=vault.keyring.blind_index("login", "Jose\u0301"),
            )
        )
        conn.execute(meta.delete().where(meta.c.name == IDENTITY_FORM))

    open_vault(vault.database, vault.keyring, "GB")

    with client_for(vault) as root:
        assert root.get("/v1/user/login/Jos%C3%A9").json()["token"] == composed
        assert root.get(f"/v1/user/token/{decomposed}").json()["data"] == {"login": "Jose\u0301"}
