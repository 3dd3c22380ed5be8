"""The tamper-evident audit trail: every event is linked to the one before it in its lane.

The trail is a small fixed set of chains, the *lanes* (table ``audit_chain``, one row per
lane holding its head). An event written in lane l gets the lane's next position n (1, 2,
3, ...) and a link::

    link(l, n) = HMAC-SHA256(chain key, "databunker audit link v1" | link(l, n-1) | l | n
                             | its metadata | digest(who, before, after))

where the metadata is every column but the encrypted values (atoken, when, user token, mode,
accessor, app, title, status, msg, debug), and the digest is SHA-256 of the stored
ciphertexts. link(l, 0) is 32 zero bytes. Changing, deleting, inserting or reordering a row
breaks the link of the first event concerned; only the chain key can compute a link. The
hashes themselves are ``crypto/audit_links.py``'s; this module keeps lanes, heads and rows.

Why lanes: a transaction holds its lane's row lock from its event until it commits. With
one chain, every request of every server would wait for the one before it to commit; with
lanes, concurrent requests do not queue. On PostgreSQL each pooled connection claims a lane
of its own for its lifetime (a session advisory lock) and remembers the head it wrote, so an
event costs one statement, as before the chain (see ``_OwnedLane``); a connection that finds
every lane claimed takes, per event, the first lane no transaction holds (``FOR UPDATE SKIP
LOCKED``). The order is total within a lane and given by time across lanes (the documented
merge); verification walks each lane. SQLite has one writer at a time and writes lane 0;
a group-commit batch there reads the lane's head at its first event and writes it once,
before it commits (see ``_append_deferred``).

Invariants guarded here:

- a lane's head is read and advanced in the transaction that inserts the event, under its
  row lock: positions in a lane have no gap and no two events share one, whatever the number
  of servers;
- the event's insert and its lane's update are one unit: a rollback (to a savepoint of a
  group-commit batch, say) undoes both, so a head never names an event that is not there;
- erasure shreds the ciphertexts but keeps their digest, so the chain still verifies; empty
  values with a digest of something are accepted only for a person who was erased;
- a retention purge deletes a prefix of each lane only (up to the first event not yet due)
  and records in the lane's head the position and previous link of the oldest event left
  (the anchor), so verification starts there;
- each head carries a seal (a keyed hash of all its fields), so it cannot be rewound or
  re-anchored without the key; events from before the chain began (``seq`` up to
  ``legacy_seq``) are reported, not checked.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives import constant_time
from sqlalchemy.engine import Connection

from databunker.crypto.audit_links import (
    EMPTY_DIGEST,
    GENESIS,
    LINK_BYTES,
    AuditLinks,
    payload_digest,
)
from databunker.storage.database import Database
from databunker.storage.dialects import is_mysql
from databunker.storage.prepared import FORGET_ON_ROLLBACK, Prepared
from databunker.storage.tables import audit, audit_chain, users

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
    """The audit chain cannot be written: no chain key was attached, or its heads are gone."""


@dataclass(frozen=True, slots=True)
class ChainHead:
    """One lane's newest link and the anchor of its oldest event kept."""

    lane: int
    position: int  # events linked in this lane since the chain began (purged ones included)
    link: bytes  # the link of the event at ``position`` (GENESIS while there is none)
    first_position: int  # the oldest event kept; ``position + 1`` when none is
    first_prev: bytes  # the link before it
    legacy_seq: int  # events up to this ``seq`` were written before the chain began
    seal: bytes | None  # NULL until the lane's first event is linked


@dataclass(frozen=True, slots=True)
class Anchor:
    """The whole chain's head as root is given it: an operator keeps it elsewhere.

    ``count`` is the number of events linked since the chain began; ``digest`` a keyed hash
    of every lane's position and newest link; ``positions`` the lanes' positions (lanes at
    0 left out), which say where to look when the anchor is checked later."""

    count: int
    digest: bytes
    positions: dict[int, int]

    def link_hex(self) -> str:
        lanes = b"".join(
            lane.to_bytes(2, "big") + position.to_bytes(8, "big")
            for lane, position in sorted(self.positions.items())
        )
        return (self.digest + lanes).hex()

    @classmethod
    def parse(cls, count: int, link_hex: str) -> Anchor:
        """The anchor of ``link_hex``; ValueError when it is not one."""
        raw = bytes.fromhex(link_hex)
        if len(raw) < LINK_BYTES or (len(raw) - LINK_BYTES) % 10:
            raise ValueError("not an audit chain anchor")
        positions: dict[int, int] = {}
        for start in range(LINK_BYTES, len(raw), 10):
            lane = int.from_bytes(raw[start : start + 2], "big")
            positions[lane] = int.from_bytes(raw[start + 2 : start + 10], "big")
        if count < 0 or sum(positions.values()) != count or 0 in positions.values():
            raise ValueError("not an audit chain anchor")
        return cls(count, raw[:LINK_BYTES], positions)


def _metadata(row: Mapping[Any, Any]) -> list[Any]:
    return [row[name] for name in METADATA_COLUMNS]


def _seal(chain: AuditLinks, head: ChainHead) -> bytes:
    return chain.seal(
        head.lane, head.position, head.link, head.first_position, head.first_prev, head.legacy_seq
    )


def attach(database: Database, key: Callable[[], bytes]) -> None:
    """Link every audit event written through ``database`` under ``key()`` (called at
    start-up, once the keyring is known; ``key`` is asked at each event)."""
    engine = database.engine
    engine.update_execution_options(**{_OPTION: AuditLinks(key)})
    if database.is_sqlite and not sa.event.contains(engine, "commit", _before_commit):
        sa.event.listen(engine, "commit", _before_commit)
        sa.event.listen(engine, "rollback", _on_rollback)


def _chain_of(conn: Connection) -> AuditLinks:
    chain = conn.get_execution_options().get(_OPTION)
    if not isinstance(chain, AuditLinks):
        raise AuditChainError("the audit chain has no key: the vault is not open")
    return chain


_HEAD_COLUMNS = (
    audit_chain.c.lane,
    audit_chain.c.position,
    audit_chain.c.link,
    audit_chain.c.first_position,
    audit_chain.c.first_prev,
    audit_chain.c.legacy_seq,
    audit_chain.c.seal,
)
_HEADS = sa.select(*_HEAD_COLUMNS).order_by(audit_chain.c.lane)
# The first lane no other transaction holds; if every lane is held, one lane, waited for.
_TAKE_FREE_LANE = Prepared(
    _HEADS.limit(sa.literal_column("1"))
    .offset(sa.literal_column("0"))
    .with_for_update(skip_locked=True)
)
_WAIT_FOR_LANE = Prepared(
    sa.select(*_HEAD_COLUMNS).where(audit_chain.c.lane == sa.bindparam("lane")).with_for_update()
)
_LANE_COUNT = Prepared(sa.select(sa.func.count()).select_from(audit_chain))
_HEAD_VALUES: dict[str, Any] = {
    c.name: sa.bindparam(c.name) for c in _HEAD_COLUMNS if c.name != "lane"
}
_UPDATE_HEAD = (
    audit_chain.update().where(audit_chain.c.lane == sa.bindparam("lane")).values(_HEAD_VALUES)
)
_WRITE_HEAD = Prepared(_UPDATE_HEAD)
_LINKED_COLUMNS = (
    *METADATA_COLUMNS,
    *PAYLOAD_COLUMNS,
    "tenant_id",
    "chain_lane",
    "chain_pos",
    "chain_link",
    "payload_digest",
)
_INSERT = audit.insert().values({name: sa.bindparam(name) for name in _LINKED_COLUMNS})
_INSERT_EVENT = Prepared(_INSERT)
# PostgreSQL: the lane's head advanced if it is still the one this connection last wrote
# (same seal), and the event inserted only then, in one statement (see ``_OwnedLane``).
_ADVANCE_HEAD = (
    _UPDATE_HEAD.where(audit_chain.c.seal.is_not_distinct_from(sa.bindparam("was_sealed")))
    .returning(audit_chain.c.lane)
    .cte("head")
)
_ADVANCE = Prepared(
    _UPDATE_HEAD.where(audit_chain.c.seal.is_not_distinct_from(sa.bindparam("was_sealed")))
)
_ADVANCE_AND_INSERT = Prepared(
    audit.insert().from_select(
        list(_LINKED_COLUMNS),
        sa.select(
            *(sa.bindparam(name, type_=audit.c[name].type) for name in _LINKED_COLUMNS)
        ).select_from(_ADVANCE_HEAD),
    )
)
# The advisory-lock key space (two int4 keys) in which a connection claims a lane, and
# the prefix of a lane's lock name on MariaDB and MySQL.
LANE_LOCK_SPACE = 0x4442_4348
LANE_LOCK_PREFIX = "databunker_audit_lane_"
_CLAIM_LANE = Prepared(
    sa.select(
        sa.func.pg_try_advisory_lock(
            sa.bindparam("space", type_=sa.Integer), sa.bindparam("lane", type_=sa.Integer)
        )
    )
)
# MariaDB, MySQL: the named lock (``GET_LOCK``) by which a connection claims a lane.
_CLAIM_NAMED_LANE = Prepared(
    sa.select(sa.func.get_lock(sa.bindparam("name", type_=sa.String), sa.literal_column("0")))
)
_OWNED_LANE = "databunker_audit_lane"


def _head(row: Sequence[Any] | None) -> ChainHead:
    if row is None:
        raise AuditChainError("the audit chain has no lanes: the schema is incomplete")
    lane, position, link, first_position, first_prev, legacy_seq, seal = row
    return ChainHead(
        int(lane),
        int(position),
        bytes(link),
        int(first_position),
        bytes(first_prev),
        int(legacy_seq),
        None if seal is None else bytes(seal),
    )


def _sealed(chain: AuditLinks, head: ChainHead) -> ChainHead:
    return ChainHead(
        head.lane,
        head.position,
        head.link,
        head.first_position,
        head.first_prev,
        head.legacy_seq,
        _seal(chain, head),
    )


def _head_params(head: ChainHead) -> dict[str, Any]:
    return {
        "lane": head.lane,
        "position": head.position,
        "link": head.link,
        "first_position": head.first_position,
        "first_prev": head.first_prev,
        "legacy_seq": head.legacy_seq,
        "seal": head.seal,
    }


def _take_lane(conn: Connection) -> ChainHead:
    found = _TAKE_FREE_LANE.first(conn, {})
    if found is None:  # every lane is held by a transaction: wait for one of them
        lanes = int(_LANE_COUNT.first(conn, {})[0])  # type: ignore[index]
        found = _WAIT_FOR_LANE.first(conn, {"lane": secrets.randbelow(max(lanes, 1))})
    return _head(found)


@dataclass(slots=True)
class _OwnedLane:
    """The lane a pooled connection writes to for as long as it lives (on PostgreSQL, claimed
    with a session advisory lock, on MariaDB and MySQL with ``GET_LOCK``; on SQLite, lane 0),
    and the head it last wrote there.

    The remembered head saves reading the lane at each event; it is only a guess: the
    event is written by one statement that advances the head only if its seal is still the
    remembered one (a rollback, a purge, or another writer changes it), and inserts the event
    only then. When it does not, the head is read under its row lock and the event written
    after it. So a guess can cost a retry, never a wrong link."""

    lane: int | None  # None: every lane was claimed by other connections (PostgreSQL)
    head: ChainHead | None = None
    # SQLite (see ``_append_deferred``): the transaction whose newest link is kept here
    # before its head row is written, and whether ``head`` is ahead of that row. Within that
    # transaction, ``head`` None means a rollback made it unknown: the head row and the
    # lane's newest event tell it again.
    transaction: object | None = None
    unwritten: bool = False

    def forget(self) -> None:
        """A rollback undid events of this connection's transaction: ``head`` is unknown."""
        self.head = None

    def end_transaction(self) -> None:
        self.transaction = None
        self.unwritten = False


def _owned_lane(conn: Connection) -> _OwnedLane:
    info = conn.connection.info
    owned = info.get(_OWNED_LANE)
    if isinstance(owned, _OwnedLane):
        return owned
    claimed: int | None = 0  # SQLite: one writer at a time, lane 0
    if conn.dialect.name != "sqlite":
        named = is_mysql(conn)
        lanes = int(_LANE_COUNT.first(conn, {})[0])  # type: ignore[index]
        order = list(range(lanes))
        secrets.SystemRandom().shuffle(order)
        claimed = None
        for lane in order:
            if named:
                got = _CLAIM_NAMED_LANE.first(conn, {"name": f"{LANE_LOCK_PREFIX}{lane}"})
            else:
                got = _CLAIM_LANE.first(conn, {"space": LANE_LOCK_SPACE, "lane": lane})
            if got is not None and got[0]:
                claimed = lane
                break
    owned = info[_OWNED_LANE] = _OwnedLane(claimed)
    info[FORGET_ON_ROLLBACK] = owned.forget
    return owned


def _linked(
    chain: AuditLinks, head: ChainHead, row: Mapping[str, Any], digest: bytes
) -> tuple[dict[str, Any], ChainHead]:
    """The event's columns as the next link after ``head``, and the (sealed) head after it."""
    event, after = _linked_unsealed(chain, head, row, digest)
    return event, _sealed(chain, after)


def _linked_unsealed(
    chain: AuditLinks, head: ChainHead, row: Mapping[str, Any], digest: bytes
) -> tuple[dict[str, Any], ChainHead]:
    """The event's columns as the next link after ``head``, and the head after it, unsealed."""
    position = head.position + 1
    link = chain.link(head.link, head.lane, position, _metadata(row), digest)
    event = {name: row[name] for name in (*METADATA_COLUMNS, *PAYLOAD_COLUMNS)}
    event["tenant_id"] = row.get("tenant_id", 1)
    event["chain_lane"] = head.lane
    event["chain_pos"] = position
    event["chain_link"] = link
    event["payload_digest"] = digest
    after = ChainHead(
        head.lane, position, link, head.first_position, head.first_prev, head.legacy_seq, None
    )
    return event, after


def append(conn: Connection, row: Mapping[str, Any]) -> None:
    """Insert one audit event (its columns but ``seq``) as the next link of a lane."""
    chain = _chain_of(conn)
    digest = payload_digest(row["who"], row["before"], row["after"])
    owned = _owned_lane(conn)
    if owned.lane is not None:
        if conn.dialect.name == "sqlite":
            _append_deferred(conn, chain, owned, row, digest)
        else:
            _append_to_owned_lane(conn, chain, owned, row, digest)
        return
    event, new_head = _linked(chain, _take_lane(conn), row, digest)
    _INSERT_EVENT.execute(conn, event)
    _WRITE_HEAD.execute(conn, _head_params(new_head))


def append_many(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert events as the next links of one lane, in order: the head advances once and
    the events go in one (many-row) insert. The same links ``append`` would write, one by
    one, for a bulk operation's events (an event per person)."""
    if not rows:
        return
    chain = _chain_of(conn)
    owned = _owned_lane(conn)
    _write_pending(conn, chain, owned)
    if owned.lane is None or len(rows) == 1:
        for row in rows:
            append(conn, row)
        return
    for _attempt in range(2):
        if owned.head is None:
            owned.head = _head(_WAIT_FOR_LANE.first(conn, {"lane": owned.lane}))
        start = owned.head
        head = start
        events: list[dict[str, Any]] = []
        for row in rows:
            digest = payload_digest(row["who"], row["before"], row["after"])
            position = head.position + 1
            link = chain.link(head.link, head.lane, position, _metadata(row), digest)
            event = {name: row[name] for name in (*METADATA_COLUMNS, *PAYLOAD_COLUMNS)}
            event.update(
                tenant_id=row.get("tenant_id", 1),
                chain_lane=head.lane,
                chain_pos=position,
                chain_link=link,
                payload_digest=digest,
            )
            events.append(event)
            head = ChainHead(
                head.lane,
                position,
                link,
                head.first_position,
                head.first_prev,
                head.legacy_seq,
                None,
            )
        new_head = _sealed(chain, head)
        params = _head_params(new_head)
        params["was_sealed"] = start.seal
        # The lane is this connection's (its lock, or SQLite's one writer): advancing the
        # head first and inserting after it is the order ``append`` keeps on SQLite.
        if _ADVANCE.execute(conn, params) == 1:
            _INSERT_EVENT.execute_many(conn, events)
            owned.head = new_head
            return
        owned.head = None
    raise AuditChainError("the audit chain's lane changed while it was held")


def _append_to_owned_lane(
    conn: Connection, chain: AuditLinks, owned: _OwnedLane, row: Mapping[str, Any], digest: bytes
) -> None:
    postgresql = conn.dialect.name == "postgresql"
    for _attempt in range(2):
        if owned.head is None:
            owned.head = _head(_WAIT_FOR_LANE.first(conn, {"lane": owned.lane}))
        event, new_head = _linked(chain, owned.head, row, digest)
        params = _head_params(new_head)
        params["was_sealed"] = owned.head.seal
        if postgresql:  # one statement: the head advanced, and the event inserted only then
            params.update(event)
            written = _ADVANCE_AND_INSERT.execute(conn, params)
        else:
            written = _ADVANCE.execute(conn, params)
            if written == 1:
                _INSERT_EVENT.execute(conn, event)
        owned.head = new_head if written == 1 else None
        if written == 1:
            return
    raise AuditChainError("the audit chain's lane changed while it was held")


def _append_deferred(
    conn: Connection, chain: AuditLinks, owned: _OwnedLane, row: Mapping[str, Any], digest: bytes
) -> None:
    """SQLite: a group-commit batch writes many events in one transaction, all in lane 0,
    under the one writer lock, which it holds from its ``BEGIN IMMEDIATE``. So the head row
    read at the transaction's first event is the lane's head, whichever process wrote it
    last; each event is linked to the newest link kept here and only inserted, and the head
    row is written once, before the transaction commits (``_before_commit``). A rollback to
    a savepoint forgets the kept link (``_OwnedLane.forget``): the next event, or the commit,
    takes the head from the head row and the newest event the lane still holds."""
    transaction = conn.get_transaction()
    if transaction is None or owned.transaction is not transaction:
        owned.head = _head(_WAIT_FOR_LANE.first(conn, {"lane": owned.lane}))
        owned.transaction = transaction
        owned.unwritten = False
    elif owned.head is None:
        owned.head = _newest_in_lane(conn, owned)
    event, after = _linked_unsealed(chain, owned.head, row, digest)
    _INSERT_EVENT.execute(conn, event)
    owned.head = after
    owned.unwritten = True


_LAST_IN_LANE = Prepared(
    sa.select(audit.c.chain_pos, audit.c.chain_link)
    .where(audit.c.chain_lane == sa.bindparam("lane"))
    .order_by(audit.c.chain_pos.desc())
    .limit(sa.literal_column("1"))
    .offset(sa.literal_column("0"))  # SQLite's compiler binds an offset otherwise
)


def _newest_in_lane(conn: Connection, owned: _OwnedLane) -> ChainHead:
    """The lane's head as this transaction left it: the head row, moved on to the lane's
    newest event if this transaction linked events after the row was last written."""
    stored = _head(_WAIT_FOR_LANE.first(conn, {"lane": owned.lane}))
    last = _LAST_IN_LANE.first(conn, {"lane": owned.lane})
    if last is None or int(last[0]) <= stored.position:
        return stored
    return replace(stored, position=int(last[0]), link=bytes(last[1]), seal=None)


def _write_pending(conn: Connection, chain: AuditLinks, owned: _OwnedLane) -> None:
    """Write the head row of the links this transaction kept in memory, if any."""
    if owned.transaction is None or owned.transaction is not conn.get_transaction():
        return
    if owned.head is None:
        owned.head = _newest_in_lane(conn, owned)
        owned.unwritten = True
    if owned.unwritten:
        # The writer lock has been this transaction's since its BEGIN IMMEDIATE, before
        # its first event read the row: no one else can have moved it.
        sealed = _sealed(chain, owned.head)
        _WRITE_HEAD.execute(conn, _head_params(sealed))
        owned.head = sealed
        owned.unwritten = False


def _deferred(conn: Connection) -> _OwnedLane | None:
    owned = conn.connection.info.get(_OWNED_LANE)
    return owned if isinstance(owned, _OwnedLane) and owned.transaction is not None else None


def _before_commit(conn: Connection) -> None:
    owned = _deferred(conn)
    if owned is None:
        return
    try:
        _write_pending(conn, _chain_of(conn), owned)
    except BaseException:
        owned.forget()  # the commit fails and the transaction is rolled back
        raise
    finally:
        owned.end_transaction()


def _on_rollback(conn: Connection) -> None:
    owned = _deferred(conn)
    if owned is not None:
        owned.forget()
        owned.end_transaction()


def read_heads(conn: Connection) -> list[ChainHead]:
    owned = _deferred(conn)
    if owned is not None:
        _write_pending(conn, _chain_of(conn), owned)
    heads = [_head(row) for row in conn.execute(_HEADS)]
    if not heads:
        raise AuditChainError("the audit chain has no lanes: the schema is incomplete")
    return heads


def current_anchor(conn: Connection) -> Anchor:
    """The head of the whole chain now (what ``GET /v1/sys/audit/head`` gives root)."""
    heads = read_heads(conn)
    digest = _chain_of(conn).anchor_digest((h.lane, h.position, h.link) for h in heads)
    positions = {h.lane: h.position for h in heads if h.position}
    return Anchor(sum(positions.values()), digest, positions)


def purge_before(conn: Connection, cutoff: int) -> int:
    """Retention: delete the events written before ``cutoff``; returns how many went.

    Of each lane, only a prefix goes: every event up to the first one not yet due (so an
    event a server with a slow clock wrote a little out of order waits for the events before
    it). The lane's head then anchors the oldest event left."""
    chain = _chain_of(conn)
    owned = _deferred(conn)
    if owned is not None:  # the heads read below are the ones of the events linked so far
        _write_pending(conn, chain, owned)
        owned.forget()  # and the ones written below are not the links kept in memory
    due = sa.and_(audit.c.created > 0, audit.c.created < cutoff)
    outside = conn.execute(audit.delete().where(audit.c.chain_pos.is_(None), due))
    deleted = int(outside.rowcount)
    lanes = conn.execute(
        sa.select(audit.c.chain_lane).where(audit.c.chain_pos.is_not(None), due).distinct()
    ).scalars()
    for lane in sorted(int(lane) for lane in lanes if lane is not None):
        deleted += _purge_lane(conn, chain, lane, due)
    return deleted


def _purge_lane(conn: Connection, chain: AuditLinks, lane: int, due: sa.ColumnElement[bool]) -> int:
    head = _head(_WAIT_FOR_LANE.first(conn, {"lane": lane}))
    in_lane = audit.c.chain_lane == lane
    first_kept = conn.execute(
        sa.select(audit.c.chain_pos)
        .where(in_lane, audit.c.chain_pos.is_not(None), ~due)
        .order_by(audit.c.chain_pos)
        .limit(1)
    ).scalar_one_or_none()
    last = head.position if first_kept is None else int(first_kept) - 1
    if last < head.first_position:
        return 0
    if last == head.position:
        previous: bytes | None = head.link
    else:
        found = conn.execute(
            sa.select(audit.c.chain_link).where(in_lane, audit.c.chain_pos == last)
        ).scalar_one_or_none()
        previous = None if found is None else bytes(found)
    if previous is None:  # the lane is already broken there: left for verify to report
        return 0
    purged = conn.execute(audit.delete().where(in_lane, audit.c.chain_pos <= last))
    anchored = ChainHead(lane, head.position, head.link, last + 1, previous, head.legacy_seq, None)
    _WRITE_HEAD.execute(conn, _head_params(_sealed(chain, anchored)))
    return int(purged.rowcount)


# -- verification ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Verification:
    """What ``verify`` found: ``reason`` is None when the chain is intact."""

    events: int  # linked events checked
    unlinked: int  # events kept from before the chain began (not checked)
    broken_at: str | None = None  # the atoken of the first event that fails, if one does
    reason: str | None = None
    anchor_purged: bool = False  # anchored events are gone by retention: not compared

    @property
    def intact(self) -> bool:
        return self.reason is None


_WALK = (
    sa.select(
        *(audit.c[name] for name in (*METADATA_COLUMNS, *PAYLOAD_COLUMNS)),
        audit.c.chain_lane,
        audit.c.chain_pos,
        audit.c.chain_link,
        audit.c.payload_digest,
        users.c.erased,
    )
    .select_from(audit.outerjoin(users, users.c.token == audit.c.user_token))
    .where(audit.c.chain_pos.is_not(None))
    .order_by(audit.c.chain_lane, audit.c.chain_pos)
)


def verify(
    database: Database,
    key: bytes,
    *,
    anchor: Anchor | None = None,
    progress: Progress | None = None,
    batch: int = 2000,
) -> Verification:
    """Walk every lane in one consistent snapshot, streaming (constant memory), and report
    the first event whose link fails. ``anchor`` is what ``GET /v1/sys/audit/head`` gave
    earlier: the events it names must still carry the links it was computed from.
    ``progress(done, total)`` is called every ``batch`` events."""
    chain = AuditLinks(lambda: key)
    with database.snapshot() as conn:
        heads = read_heads(conn)
        unlinked = int(
            conn.execute(
                sa.select(sa.func.count()).select_from(audit).where(audit.c.chain_pos.is_(None))
            ).scalar_one()
        )
        for head in heads:
            if head.seal is None:
                sealed_right = head.position == 0 and head.first_position == 1
            else:
                sealed_right = constant_time.bytes_eq(_seal(chain, head), head.seal)
            if not sealed_right:
                return Verification(
                    0, unlinked, None, "the chain head was changed outside the vault"
                )
        legacy_seq = min(head.legacy_seq for head in heads)
        forged = conn.execute(
            sa.select(audit.c.atoken)
            .where(audit.c.chain_pos.is_(None), audit.c.seq > legacy_seq)
            .order_by(audit.c.seq)
            .limit(1)
        ).scalar_one_or_none()
        if forged is not None:
            return Verification(0, unlinked, str(forged), "it was written outside the chain")
        if anchor is not None and anchor.count > sum(head.position for head in heads):
            return Verification(
                0,
                unlinked,
                None,
                f"the chain has {sum(h.position for h in heads)} events, fewer than the "
                f"anchor's {anchor.count}: its newest events were deleted",
            )
        walk = _Walk(chain, heads, unlinked, anchor, progress, batch)
        result = conn.execution_options(yield_per=batch).execute(_WALK)
        try:
            return walk.run(result.mappings())
        finally:
            result.close()


class _Broken(Exception):
    def __init__(self, atoken: str | None, reason: str) -> None:
        super().__init__(reason)
        self.atoken = atoken
        self.reason = reason


class _Walk:
    """One pass over the events in (lane, position) order, lane after lane."""

    def __init__(
        self,
        chain: AuditLinks,
        heads: list[ChainHead],
        unlinked: int,
        anchor: Anchor | None,
        progress: Progress | None,
        batch: int,
    ) -> None:
        self.chain = chain
        self.heads = {head.lane: head for head in heads}
        self.unlinked = unlinked
        self.anchor = anchor
        self.progress = progress
        self.batch = batch
        self.total = sum(h.position - h.first_position + 1 for h in heads)
        self.checked = 0
        # Per lane: the link at the anchored position, once seen.
        self.anchored: dict[int, bytes] = {}
        self.anchor_purged = False

    def run(self, rows: Iterable[Mapping[Any, Any]]) -> Verification:
        lanes = iter(sorted(self.heads))
        lane: int | None = None
        expected, previous, last_atoken = 0, GENESIS, None
        try:
            for row in rows:
                atoken = str(row["atoken"])
                if lane is None or row["chain_lane"] != lane:
                    if lane is not None:
                        self._end_lane(lane, expected, previous, last_atoken)
                    lane = self._next_lane(lanes, row["chain_lane"], atoken)
                    head = self.heads[lane]
                    expected, previous = head.first_position, head.first_prev
                    self._note_anchor(lane, expected - 1, previous)
                previous = self._check(row, atoken, lane, expected, previous)
                self._note_anchor(lane, expected, previous)
                expected, last_atoken = expected + 1, atoken
                self.checked += 1
                if self.progress is not None and self.checked % self.batch == 0:
                    self.progress(self.checked, self.total)
            if lane is not None:
                self._end_lane(lane, expected, previous, last_atoken)
            for rest in lanes:
                head = self.heads[rest]
                self._end_lane(rest, head.first_position, head.first_prev, None)
                self._note_anchor(rest, head.first_position - 1, head.first_prev)
            self._compare_anchor()
        except _Broken as broken:
            return Verification(self.checked, self.unlinked, broken.atoken, broken.reason)
        if self.progress is not None:
            self.progress(self.checked, self.total)
        return Verification(self.checked, self.unlinked, anchor_purged=self.anchor_purged)

    def _next_lane(self, lanes: Iterable[int], wanted: Any, atoken: str) -> int:
        for lane in lanes:
            if lane == wanted:
                return lane
            head = self.heads[lane]  # a lane with no events left: it must say so
            self._end_lane(lane, head.first_position, head.first_prev, None)
            self._note_anchor(lane, head.first_position - 1, head.first_prev)
        raise _Broken(atoken, "it is out of place in the chain")

    def _check(
        self, row: Mapping[Any, Any], atoken: str, lane: int, expected: int, previous: bytes
    ) -> bytes:
        position, stored_link, digest = row["chain_pos"], row["chain_link"], row["payload_digest"]
        if position > expected:
            raise _Broken(atoken, "the event before it is missing")
        if position < expected or stored_link is None or digest is None:
            raise _Broken(atoken, "it is out of place in the chain")
        values = [row[name] for name in PAYLOAD_COLUMNS]
        if any(value is not None for value in values):
            if not constant_time.bytes_eq(payload_digest(*values), bytes(digest)):
                raise _Broken(atoken, "its stored values were changed")
        elif bytes(digest) != EMPTY_DIGEST and row["erased"] is None:
            raise _Broken(atoken, "its stored values were removed, but its person was not erased")
        link = self.chain.link(previous, lane, position, _metadata(row), bytes(digest))
        if not constant_time.bytes_eq(link, bytes(stored_link)):
            raise _Broken(atoken, "its link does not match: the event was changed or moved")
        return link

    def _end_lane(self, lane: int, expected: int, previous: bytes, last: str | None) -> None:
        head = self.heads[lane]
        if expected - 1 != head.position or not constant_time.bytes_eq(previous, head.link):
            where = f" (event {last})" if last is not None else ""
            raise _Broken(
                None,
                f"the newest events were deleted: lane {lane} ends at position {expected - 1}"
                f"{where} but its head records {head.position}",
            )

    def _note_anchor(self, lane: int, position: int, link: bytes) -> None:
        if self.anchor is not None and self.anchor.positions.get(lane, 0) == position:
            self.anchored[lane] = link

    def _compare_anchor(self) -> None:
        if self.anchor is None:
            return
        links: list[tuple[int, int, bytes]] = []
        for lane in sorted(self.heads):
            position = self.anchor.positions.get(lane, 0)
            if position == 0:
                self.anchored[lane] = GENESIS
            if lane not in self.anchored:
                if position < self.heads[lane].first_position:
                    self.anchor_purged = True  # gone by retention: nothing to compare
                    return
                raise _Broken(None, "the chain does not hold the events of the anchor")
            links.append((lane, position, self.anchored[lane]))
        unknown = set(self.anchor.positions) - set(self.heads)
        digest = self.chain.anchor_digest(links)
        if unknown or not constant_time.bytes_eq(digest, self.anchor.digest):
            raise _Broken(None, "the chain is not the one anchored: its events were rewritten")
