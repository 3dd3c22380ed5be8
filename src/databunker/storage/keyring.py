"""The keyring's rows and the wrapped data keys it is counted and rewrapped by.

Every ``keyring.sealed`` value is a key sealed under the master key (``crypto.keys``); this
module never sees a key in clear. Wrapped data keys live in ``users.data_key`` and
``sessions.data_key``; the first five bytes of each name its KEK version
(``crypto.kek_version_prefix``), by which they are counted and found for rewrapping.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from databunker.storage.prepared import Prepared
from databunker.storage.tables import keyring, sessions, users

_PREFIX_BYTES = 5


@dataclass(frozen=True, slots=True)
class WrappedKeyTable:
    """A table holding wrapped data keys: its name, key column and wrapped-key column."""

    name: str
    table: sa.Table
    key: sa.Column[str]
    wrapped: sa.Column[bytes]


WRAPPED_KEY_TABLES = (
    WrappedKeyTable("users", users, users.c.token, users.c.data_key),
    WrappedKeyTable("sessions", sessions, sessions.c.session, sessions.c.data_key),
)


@dataclass(frozen=True, slots=True)
class WrappedKey:
    key: str
    wrapped: bytes


def read_entries(conn: Connection) -> dict[str, bytes]:
    rows = conn.execute(sa.select(keyring.c.name, keyring.c.sealed))
    return {row.name: bytes(row.sealed) for row in rows}


def has_entries(conn: Connection) -> bool:
    return conn.execute(sa.select(sa.func.count()).select_from(keyring)).scalar_one() > 0


def write_entries(conn: Connection, entries: dict[str, bytes], now: int) -> None:
    """Insert the entries not stored yet and replace the sealed value of the others."""
    stored = set(conn.execute(sa.select(keyring.c.name)).scalars())
    for name, sealed in entries.items():
        if name in stored:
            conn.execute(keyring.update().where(keyring.c.name == name).values(sealed=sealed))
        else:
            conn.execute(keyring.insert().values(name=name, sealed=sealed, created=now))


def delete_entries(conn: Connection, names: Iterable[str]) -> None:
    conn.execute(keyring.delete().where(keyring.c.name.in_(list(names))))


def hold_entry(conn: Connection, name: str) -> bool:
    """Whether the entry ``name`` is stored, kept so until this transaction ends: on
    PostgreSQL, MariaDB and MySQL by a share lock on its row, which a delete waits for;
    SQLite's transactions hold its one writer lock from their start (``BEGIN IMMEDIATE``)."""
    held = _HOLD if conn.dialect.name == "sqlite" else _HOLD_SHARED
    return held.first(conn, {"name": name}) is not None


# Run by every unit that wraps a data key: compiled once (``storage/prepared.py``).
_FIND_ENTRY = sa.select(keyring.c.name).where(keyring.c.name == sa.bindparam("name"))
_HOLD = Prepared(_FIND_ENTRY)
_HOLD_SHARED = Prepared(_FIND_ENTRY.with_for_update(read=True))  # MariaDB: LOCK IN SHARE MODE


def _prefix(column: sa.Column[bytes]) -> sa.ColumnElement[bytes]:
    return sa.func.substr(column, 1, _PREFIX_BYTES)


def count_by_prefix(conn: Connection) -> dict[bytes, int]:
    """How many wrapped data keys start with each prefix, over every table that holds them."""
    counts: dict[bytes, int] = {}
    for source in WRAPPED_KEY_TABLES:
        prefix = _prefix(source.wrapped).label("prefix")
        rows = conn.execute(
            sa.select(prefix, sa.func.count()).where(source.wrapped.is_not(None)).group_by(prefix)
        )
        for found, count in rows:
            counts[bytes(found)] = counts.get(bytes(found), 0) + int(count)
    return counts


def wrapped_keys_not_under(
    conn: Connection, source: WrappedKeyTable, prefix: bytes, after: str, limit: int
) -> list[WrappedKey]:
    """The next ``limit`` wrapped keys (in key order, after ``after``) not starting with
    ``prefix``: those the current KEK version does not wrap yet."""
    rows = conn.execute(
        sa.select(source.key, source.wrapped)
        .where(
            source.wrapped.is_not(None),
            source.key > after,
            _prefix(source.wrapped) != prefix,
        )
        .order_by(source.key)
        .limit(limit)
    )
    return [WrappedKey(row[0], bytes(row[1])) for row in rows]


def replace_wrapped_key(
    conn: Connection, source: WrappedKeyTable, key: str, old: bytes, new: bytes
) -> bool:
    """Store ``new`` where ``old`` still is; False when the row changed meanwhile (erased,
    or written again), which is then left as it is."""
    updated = conn.execute(
        source.table.update()
        .where(source.key == key, source.wrapped == old)
        .values({source.wrapped.name: new})
    )
    return updated.rowcount == 1
