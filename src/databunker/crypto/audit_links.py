"""The keyed hashes of the tamper-evident audit trail: event links, head seals, anchors.

``storage/audit_chain.py`` keeps the chain (lanes, heads, positions) and calls these; this
module knows no SQL and no column, only values in a fixed order::

    link(l, n)   = HMAC-SHA256(chain key, "databunker audit link v1" | link(l, n-1) | l | n
                               | encoded metadata | digest)
    digest       = SHA-256("databunker audit values v1" | encoded who, before, after)
    seal(head)   = HMAC-SHA256(chain key, "databunker audit head v1" | head's fields)
    anchor       = HMAC-SHA256(chain key, "databunker audit anchor v1" | each lane's
                               lane, position and link, in lane order)

Every value is encoded unambiguously (a type tag, then a fixed-size integer or a length
prefix), so no two different rows hash alike.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Callable, Iterable, Sequence

LINK_BYTES = 32
GENESIS = bytes(LINK_BYTES)

Field = str | int | bytes | None


def encode_field(value: Field) -> bytes:
    """One value, unambiguously: a type tag, then a fixed-size integer or a length prefix."""
    if value is None:
        return b"\x00"
    if isinstance(value, int):
        return b"\x01" + value.to_bytes(8, "big", signed=True)
    data = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else bytes(value)
    return b"\x02" + len(data).to_bytes(4, "big") + data


def encode_fields(values: Iterable[Field]) -> bytes:
    """``encode_field`` of each value, joined (the hot path of every event: kept inline)."""
    out: list[bytes] = []
    for value in values:
        if value is None:
            out.append(b"\x00")
        elif isinstance(value, int):
            out.append(b"\x01" + value.to_bytes(8, "big", signed=True))
        else:
            data = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
            out.append(b"\x02" + len(data).to_bytes(4, "big") + bytes(data))
    return b"".join(out)


def payload_digest(who: bytes | None, before: bytes | None, after: bytes | None) -> bytes:
    """SHA-256 of an event's stored ciphertexts (kept when erasure shreds them).

    The standard library's SHA-256 (OpenSSL's, as ``cryptography``'s), without building a
    hash object per event: this runs for every audit event."""
    return hashlib.sha256(
        b"databunker audit values v1" + encode_fields((who, before, after))
    ).digest()


EMPTY_DIGEST = payload_digest(None, None, None)

# A head's fields, all of known types and sizes: lane, position, link, first position,
# link before it, legacy seq.
_HEAD_LAYOUT = struct.Struct(">iq32sq32sq")
_LINK_PLACE = struct.Struct(">iq")


class AuditLinks:
    """Links, seals and anchors under the chain key, which ``key`` returns when asked."""

    def __init__(self, key: Callable[[], bytes]) -> None:
        self._key = key

    def _mac(self, *parts: bytes) -> bytes:
        # HMAC-SHA256 from the standard library, in one call to OpenSSL: the same MAC as
        # ``cryptography``'s, at a fraction of its cost per call (every audit event is
        # linked and its lane's head sealed; a bulk operation links thousands).
        return hmac.digest(self._key(), b"".join(parts), "sha256")

    def link(
        self, previous: bytes, lane: int, position: int, metadata: Sequence[Field], digest: bytes
    ) -> bytes:
        place = _LINK_PLACE.pack(lane, position)
        encoded = encode_fields(metadata)
        return self._mac(b"databunker audit link v1", previous, place, encoded, digest)

    def seal(
        self,
        lane: int,
        position: int,
        link: bytes,
        first_position: int,
        first_prev: bytes,
        legacy_seq: int,
    ) -> bytes:
        fields = _HEAD_LAYOUT.pack(lane, position, link, first_position, first_prev, legacy_seq)
        return self._mac(b"databunker audit head v1", fields)

    def anchor_digest(self, lanes: Iterable[tuple[int, int, bytes]]) -> bytes:
        """Keyed hash of every lane's (lane, position, link), in lane order."""
        parts = [
            encode_field(lane) + encode_field(position) + encode_field(link)
            for lane, position, link in lanes
        ]
        return self._mac(b"databunker audit anchor v1", *parts)
