"""Life cycle of a vault: initialise a database once, and check it before serving."""

from __future__ import annotations

from databunker.crypto import Keyring, is_uuid
from databunker.services.access import DEMO_ROOT_TOKEN, ROOT_KIND, access_token_hash
from databunker.services.legal import seed as seed_legal_bases
from databunker.storage import Database, migrate, schema_version
from databunker.storage import repositories as repo

KEY_CHECK = "key_check"


class VaultStateError(Exception):
    """The database cannot be used as asked (not initialised, initialised twice, wrong key)."""


def initialise(database: Database, keyring: Keyring, root_token: str, now: int) -> None:
    """Create the schema, record the key check value and the root token's hash, once."""
    if not (is_uuid(root_token) or root_token == DEMO_ROOT_TOKEN):
        raise VaultStateError("the root token must be a UUID")
    migrate(database)
    with database.transaction() as conn:
        if repo.get_meta(conn, KEY_CHECK) is not None or repo.has_root_token(conn):
            raise VaultStateError("the database is already initialised")
        repo.set_meta(conn, KEY_CHECK, keyring.check_value())
        repo.insert_access_token(
            conn,
            token_hash=access_token_hash(keyring, root_token),
            kind=ROOT_KIND,
            user_token=None,
            now=now,
        )
        seed_legal_bases(conn, now)


def open_vault(database: Database, keyring: Keyring) -> None:
    """Refuse an uninitialised database or a master key that is not the database's."""
    with database.transaction() as conn:
        stored = repo.get_meta(conn, KEY_CHECK) if schema_version(conn) > 0 else None
    if stored is None:
        raise VaultStateError("the database is not initialised: run `databunker init` first")
    if not keyring.matches(stored):
        raise VaultStateError("the master key does not match this database")
    migrate(database)
