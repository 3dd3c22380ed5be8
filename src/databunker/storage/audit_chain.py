"""The tamper-evident audit trail: every event is linked to the one before it.

Each event written gets the next position n (1, 2, 3, ...) and a link::

    link(n) = HMAC-SHA256(chain key, "databunker audit link v1" | link(n-1) | n
                          | its metadata | digest(who, before, after))

where the metadata is every column but the encrypted values (atoken, when, user token, mode,
accessor, app, title, status, msg, debug), and the digest is SHA-256 of the stored
ciphertexts. link(0) is 32 zero bytes. Changing, deleting, inserting or reordering a row
breaks the link of the first event concerned; only the chain key can compute a link.

Invariants guarded here:

- the head (table ``audit_chain``, one row) is read and advanced in the transaction that
  inserts the event, after taking its row lock (``SELECT ... FOR UPDATE`` on PostgreSQL;
  SQLite has one writer at a time): positions follow the order in which writers took the
  head, with no gap and no two events at one position, whatever the number of servers;
- the event's insert and the head's update are one unit: a rollback (to a savepoint of a
  group-commit batch, say) undoes both, so the head never names an event that is not there;
- erasure shreds the ciphertexts but keeps their digest, so the chain still verifies; empty
  values with a digest of something are accepted only for a person who was erased;
- a retention purge deletes a prefix of the chain only (up to the first event not yet due)
  and records, in the head, the position and the previous link of the oldest event left
  (the anchor), so verification starts there;
- the head carries a seal (a keyed hash of all its fields), so it cannot be rewound or
  re-anchored without the key; events before the chain began (``legacy_seq``) are reported,
  not checked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives import constant_time, hashes, hmac
from sqlalchemy.engine import Connection

from databunker.storage.database import Database
from databunker.storage.prepared import Prepared
from databunker.storage.tables import audit, audit_chain, users

LINK_BYTES = 32
GENESIS = bytes(LINK_BYTES)
HEAD_ID = 1
METADATA_COLUMNS = (
    "atoken",
    "created",
    "user_token",
    "mode",
    "accessor",
    "app",
    "title",
    "status",
    "msg",
    "debug",
)
PAYLOAD_COLUMNS = ("who", "before", "after")
# The engine execution option under which a database's chain is kept (see ``attach``).
_OPTION = "databunker_audit_chain"

Progress = Callable[[int, int], None]


class AuditChainError(RuntimeError):
    """The audit chain cannot be written: no chain key was attached, or its head is gone."""


def _field(value: str | int | bytes | None) -> bytes:
    """One value, unambiguously: a type tag, then a fixed-size integer or a length prefix."""
    if value is None:
        return b"\x00"
    if isinstance(value, int):
        return b"\x01" + value.to_bytes(8, "big", signed=True)
    data = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else bytes(value)
    return b"\x02" + len(data).to_bytes(4, "big") + data


def payload_digest(who: bytes | None, before: bytes | None, after: bytes | None) -> bytes:
    """SHA-256 of an event's stored ciphertexts (kept when erasure shreds them)."""
    digest = hashes.Hash(hashes.SHA256())
    digest.update(b"databunker audit values v1" + _field(who) + _field(before) + _field(after))
    return digest.finalize()


EMPTY_DIGEST = payload_digest(None, None, None)


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The newest link and the anchor of the oldest event kept."""

    position: int  # events linked since the chain began (purged ones included)
    link: bytes  # the link of the event at ``position`` (GENESIS while there is none)
    first_position: int  # the oldest event kept; ``position + 1`` when none is
    first_prev: bytes  # the link before it
    legacy_seq: int  # events up to this ``seq`` were written before the chain began
    seal: bytes | None  # NULL until the first event is linked


class AuditChain:
    """Links and seals under the chain key, which ``key`` returns when asked."""

    def __init__(self, key: Callable[[], bytes]) -> None:
        self._key = key

    def _mac(self, *parts: bytes) -> bytes:
        mac = hmac.HMAC(self._key(), hashes.SHA256())
        for part in parts:
            mac.update(part)
        return mac.finalize()

    def link(self, previous: bytes, position: int, row: Mapping[Any, Any], digest: bytes) -> bytes:
        metadata = b"".join(_field(row[name]) for name in METADATA_COLUMNS)
        return self._mac(b"databunker audit link v1", previous, _field(position), metadata, digest)

    def seal(self, head: ChainHead) -> bytes:
        return self._mac(
            b"databunker audit head v1",
            _field(head.position),
            _field(head.link),
            _field(head.first_position),
            _field(head.first_prev),
            _field(head.legacy_seq),
        )


def attach(database: Database, key: Callable[[], bytes]) -> None:
    """Link every audit event written through ``database`` under ``key()`` (called at
    start-up, once the keyring is known; ``key`` is asked at each event)."""
    database.engine.update_execution_options(**{_OPTION: AuditChain(key)})


def _chain_of(conn: Connection) -> AuditChain:
    chain = conn.get_execution_options().get(_OPTION)
    if not isinstance(chain, AuditChain):
        raise AuditChainError("the audit chain has no key: the vault is not open")
    return chain


_HEAD_COLUMNS = (
    audit_chain.c.position,
    audit_chain.c.link,
    audit_chain.c.first_position,
    audit_chain.c.first_prev,
    audit_chain.c.legacy_seq,
    audit_chain.c.seal,
)
_HEAD_QUERY = sa.select(*_HEAD_COLUMNS).where(audit_chain.c.id == sa.bindparam("id"))
_LOCK_HEAD = Prepared(_HEAD_QUERY.with_for_update())
_WRITE_HEAD = Prepared(
    audit_chain.update()
    .where(audit_chain.c.id == sa.bindparam("id"))
    .values({c.name: sa.bindparam(c.name) for c in _HEAD_COLUMNS})
)
_LINKED_COLUMNS = (
    *METADATA_COLUMNS,
    *PAYLOAD_COLUMNS,
    "chain_pos",
    "chain_link",
    "payload_digest",
)
_INSERT_EVENT = Prepared(
    audit.insert().values({name: sa.bindparam(name) for name in _LINKED_COLUMNS})
)


def _head(row: Sequence[Any] | None) -> ChainHead:
    if row is None:
        raise AuditChainError("the audit chain has no head row: the schema is incomplete")
    position, link, first_position, first_prev, legacy_seq, seal = row
    return ChainHead(
        int(position),
        bytes(link),
        int(first_position),
        bytes(first_prev),
        int(legacy_seq),
        None if seal is None else bytes(seal),
    )


def _write_head(conn: Connection, chain: AuditChain, head: ChainHead) -> None:
    sealed = dataclasses.replace(head, seal=chain.seal(head))
    _WRITE_HEAD.execute(conn, {"id": HEAD_ID, **dataclasses.asdict(sealed)})


def append(conn: Connection, row: Mapping[str, Any]) -> None:
    """Insert one audit event (its columns but ``seq``) as the next link of the chain."""
    chain = _chain_of(conn)
    head = _head(_LOCK_HEAD.first(conn, {"id": HEAD_ID}))
    position = head.position + 1
    digest = payload_digest(row["who"], row["before"], row["after"])
    link = chain.link(head.link, position, row, digest)
    values = {name: row[name] for name in (*METADATA_COLUMNS, *PAYLOAD_COLUMNS)}
    _INSERT_EVENT.execute(
        conn, {**values, "chain_pos": position, "chain_link": link, "payload_digest": digest}
    )
    _write_head(conn, chain, dataclasses.replace(head, position=position, link=link))


def read_head(conn: Connection) -> ChainHead:
    return _head(conn.execute(_HEAD_QUERY, {"id": HEAD_ID}).first())


def purge_before(conn: Connection, cutoff: int) -> int:
    """Retention: delete the events written before ``cutoff``; returns how many went.

    Of the chain, only a prefix goes: every event up to the first one not yet due (so an
    event a server with a slow clock wrote a little out of order waits for the events before
    it). The head then anchors the oldest event left."""
    chain = _chain_of(conn)
    head = _head(_LOCK_HEAD.first(conn, {"id": HEAD_ID}))
    due = sa.and_(audit.c.created > 0, audit.c.created < cutoff)
    outside = conn.execute(audit.delete().where(audit.c.chain_pos.is_(None), due))
    deleted = int(outside.rowcount)
    first_kept = conn.execute(
        sa.select(sa.func.min(audit.c.chain_pos)).where(audit.c.chain_pos.is_not(None), ~due)
    ).scalar_one_or_none()
    last = head.position if first_kept is None else int(first_kept) - 1
    if last < head.first_position:
        return deleted
    if last == head.position:
        previous: bytes | None = head.link
    else:
        found = conn.execute(
            sa.select(audit.c.chain_link).where(audit.c.chain_pos == last)
        ).scalar_one_or_none()
        previous = None if found is None else bytes(found)
    if previous is None:  # the chain is already broken there: leave it for verify to report
        return deleted
    purged = conn.execute(audit.delete().where(audit.c.chain_pos <= last))
    anchored = dataclasses.replace(head, first_position=last + 1, first_prev=previous)
    _write_head(conn, chain, anchored)
    return deleted + int(purged.rowcount)


# -- verification ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Verification:
    """What ``verify`` found: ``reason`` is None when the chain is intact."""

    events: int  # linked events checked
    unlinked: int  # events kept from before the chain began (not checked)
    broken_at: str | None = None  # the atoken of the first event that fails, if one does
    reason: str | None = None
    anchor_purged: bool = False  # the anchored event is gone by retention: not compared

    @property
    def intact(self) -> bool:
        return self.reason is None


_WALK = (
    sa.select(
        *(audit.c[name] for name in (*METADATA_COLUMNS, *PAYLOAD_COLUMNS)),
        audit.c.chain_pos,
        audit.c.chain_link,
        audit.c.payload_digest,
        users.c.erased,
    )
    .select_from(audit.outerjoin(users, users.c.token == audit.c.user_token))
    .where(audit.c.chain_pos.is_not(None))
    .order_by(audit.c.chain_pos)
)


def verify(
    database: Database,
    key: bytes,
    *,
    anchor: tuple[int, bytes] | None = None,
    progress: Progress | None = None,
    batch: int = 2000,
) -> Verification:
    """Walk the whole chain in one consistent snapshot, streaming (constant memory), and
    report the first event whose link fails. ``anchor`` is a (count, link) pair an operator
    took from ``GET /v1/sys/audit/head`` earlier: the event at that position must still
    carry that link. ``progress(done, total)`` is called every ``batch`` events."""
    chain = AuditChain(lambda: key)
    with database.snapshot() as conn:
        head = read_head(conn)
        unlinked = int(
            conn.execute(
                sa.select(sa.func.count()).select_from(audit).where(audit.c.chain_pos.is_(None))
            ).scalar_one()
        )
        if head.seal is None:
            sealed_right = head.position == 0 and head.first_position == 1
        else:
            sealed_right = constant_time.bytes_eq(chain.seal(head), head.seal)
        if not sealed_right:
            return Verification(0, unlinked, None, "the chain head was changed outside the vault")
        forged = conn.execute(
            sa.select(audit.c.atoken)
            .where(audit.c.chain_pos.is_(None), audit.c.seq > head.legacy_seq)
            .order_by(audit.c.seq)
            .limit(1)
        ).scalar_one_or_none()
        if forged is not None:
            return Verification(0, unlinked, str(forged), "it was written outside the chain")
        if anchor is not None and anchor[0] > head.position:
            return Verification(
                0,
                unlinked,
                None,
                f"the chain has {head.position} events, fewer than the anchor's {anchor[0]}: "
                "its newest events were deleted",
            )
        return _walk(conn, chain, head, unlinked, anchor, progress, batch)


def _walk(
    conn: Connection,
    chain: AuditChain,
    head: ChainHead,
    unlinked: int,
    anchor: tuple[int, bytes] | None,
    progress: Progress | None,
    batch: int,
) -> Verification:
    result = conn.execution_options(yield_per=batch).execute(_WALK)
    try:
        return _check_each(result.mappings(), chain, head, unlinked, anchor, progress, batch)
    finally:
        result.close()


def _check_each(
    rows: Iterable[Mapping[Any, Any]],
    chain: AuditChain,
    head: ChainHead,
    unlinked: int,
    anchor: tuple[int, bytes] | None,
    progress: Progress | None,
    batch: int,
) -> Verification:
    total = head.position - head.first_position + 1
    expected, previous = head.first_position, head.first_prev
    checked, last_atoken = 0, None

    def broken(atoken: str, reason: str) -> Verification:
        return Verification(checked, unlinked, atoken, reason)

    for row in rows:
        atoken = str(row["atoken"])
        position, stored_link, digest = row["chain_pos"], row["chain_link"], row["payload_digest"]
        if position > expected:
            return broken(atoken, "the event before it is missing")
        if position < expected or stored_link is None or digest is None:
            return broken(atoken, "it is out of place in the chain")
        values = [row[name] for name in PAYLOAD_COLUMNS]
        if any(value is not None for value in values):
            if not constant_time.bytes_eq(payload_digest(*values), bytes(digest)):
                return broken(atoken, "its stored values were changed")
        elif bytes(digest) != EMPTY_DIGEST and row["erased"] is None:
            return broken(atoken, "its stored values were removed, but its person was not erased")
        link = chain.link(previous, position, row, bytes(digest))
        if not constant_time.bytes_eq(link, bytes(stored_link)):
            return broken(atoken, "its link does not match: the event was changed or moved")
        anchored = anchor is not None and position == anchor[0]
        if anchored and anchor is not None and not constant_time.bytes_eq(link, anchor[1]):
            return broken(atoken, "its link is not the one anchored")
        previous, expected, last_atoken = link, expected + 1, atoken
        checked += 1
        if progress is not None and checked % batch == 0:
            progress(checked, total)
    if expected - 1 != head.position or not constant_time.bytes_eq(previous, head.link):
        where = f" (event {last_atoken})" if last_atoken is not None else ""
        reason = (
            f"the newest events were deleted: the chain ends at position {expected - 1}"
            f"{where} but its head records {head.position}"
        )
        return Verification(checked, unlinked, None, reason)
    if progress is not None:
        progress(checked, total)
    purged = anchor is not None and 0 < anchor[0] < head.first_position
    return Verification(checked, unlinked, anchor_purged=purged)
