"""Life cycle of a vault: initialise a database once, and check it before serving."""

from __future__ import annotations

from databunker.crypto import Keyring, KeySet, is_uuid
from databunker.errors import Conflict
from databunker.services import documents, keys
from databunker.services.access import DEMO_ROOT_TOKEN, ROOT_KIND, access_token_hash
from databunker.services.context import system_clock
from databunker.services.identity import lenient_indexes
from databunker.services.legal import seed as seed_legal_bases
from databunker.services.records import profile_context
from databunker.storage import (
    LATEST_VERSION,
    Database,
    migrate,
    probe_schema_version,
    schema_version,
)
from databunker.storage import repositories as access_token_rows
from databunker.storage import repositories as meta_rows
from databunker.storage import repositories as user_rows
from databunker.storage.prepared import savepoint

KEY_CHECK = keys.KEY_CHECK
# Which canonical form of identities the lookup indexes were computed in (services.identity).
IDENTITY_FORM = "identity_form"
CURRENT_IDENTITY_FORM = "2"
REINDEX_BATCH = 500


def unreadiness(database: Database, keyring: Keyring) -> str | None:
    """Why this server should be sent no traffic now (sealed, database out of reach, schema
    not the one this release writes), or None when it is ready."""
    if keyring.sealed:
        return "vault is sealed"
    version = probe_schema_version(database)
    if version is None:
        return "database unavailable"
    if version < LATEST_VERSION:
        return "database schema is older than this server's: it is not migrated yet"
    if version > LATEST_VERSION:
        return "database schema is newer than this server's: upgrade this server"
    return None


class VaultStateError(Exception):
    """The database cannot be used as asked (not initialised, initialised twice, wrong key)."""


def initialise(
    database: Database,
    keyring: Keyring,
    root_token: str,
    now: int,
    *,
    vault_id: str | None = None,
    provider_values: dict[str, str] | None = None,
) -> None:
    """Create the schema, a random keyring sealed under ``keyring``'s master key (which then
    holds it), the key check value and the root token's hash, once."""
    if not (is_uuid(root_token) or root_token == DEMO_ROOT_TOKEN):
        raise VaultStateError("the root token must be a UUID")
    migrate(database)
    with database.transaction() as conn:
        initialised = meta_rows.get_meta(conn, KEY_CHECK) is not None
        if initialised or access_token_rows.has_root_token(conn):
            raise VaultStateError("the database is already initialised")
        if vault_id is not None:
            meta_rows.set_meta(conn, keys.VAULT_ID, vault_id)
        generated = KeySet.generate()
        keys.create_keyring(conn, keyring.master, generated, now)
        keyring.load(keyring.master, generated)
        for name, value in (provider_values or {}).items():
            meta_rows.set_meta(conn, name, value)
        meta_rows.set_meta(conn, IDENTITY_FORM, CURRENT_IDENTITY_FORM)
        access_token_rows.insert_access_token(
            conn,
            token_hash=access_token_hash(keyring, root_token),
            kind=ROOT_KIND,
            user_token=None,
            now=now,
        )
        seed_legal_bases(conn, now)


def open_vault(database: Database, keyring: Keyring, default_country: str = "GB") -> None:
    """Refuse an uninitialised database or a master key that is not the database's; bring
    its schema and its lookup indexes up to date."""
    with database.transaction() as conn:
        stored = meta_rows.get_meta(conn, KEY_CHECK) if schema_version(conn) > 0 else None
    if stored is None:
        raise VaultStateError("the database is not initialised: run `databunker init` first")
    if not keyring.matches(stored):
        raise VaultStateError("the master key does not match this database")
    migrate(database)
    try:
        keys.unlock(database, keyring, keyring.master, system_clock())
    except keys.KeyringError as exc:
        raise VaultStateError(str(exc)) from exc
    reindex_identities(database, keyring, default_country)


def reindex_identities(database: Database, keyring: Keyring, default_country: str) -> int:
    """Recompute every living user's lookup indexes once, when they were computed in an
    earlier canonical form; returns how many users' indexes changed.

    An identity the current form refuses (an email address with a compatibility look-alike
    such as the Kelvin sign, a phone number in other digits) loses its index: the record
    stays, reachable by its token, but no longer answers for the identity it imitates."""
    changed = 0
    with database.transaction() as conn:
        if meta_rows.get_meta(conn, IDENTITY_FORM) == CURRENT_IDENTITY_FORM:
            return 0
        offset = 0
        while batch := user_rows.list_users(conn, offset=offset, limit=REINDEX_BATCH):
            offset += len(batch)
            for row in batch:
                if row.data_key is None or row.profile is None:
                    continue
                key = keyring.unwrap(row.data_key, row.token)
                profile = documents.decode(key.decrypt(row.profile, profile_context(row.token)))
                indexes = lenient_indexes(profile, keyring, default_country)
                if indexes == user_rows.user_indexes(conn, row.token):
                    continue
                try:
                    with savepoint(conn, "reindex"):
                        user_rows.set_user_indexes(conn, row.token, indexes)
                    changed += 1
                except Conflict:
                    # Two records now share one identity (a login once stored in two Unicode
                    # forms): the one indexed first keeps it, the other keeps its old index.
                    continue
        meta_rows.set_meta(conn, IDENTITY_FORM, CURRENT_IDENTITY_FORM)
    return changed
