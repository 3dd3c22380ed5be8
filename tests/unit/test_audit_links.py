"""The audit trail's keyed hashes, pinned: chains stored by earlier releases must go on
verifying, so the encoding and the labels may never change silently."""

from __future__ import annotations

from databunker.crypto.audit_links import (
    EMPTY_DIGEST,
    AuditLinks,
    encode_field,
    encode_fields,
    payload_digest,
)

KEY = bytes(range(32))
METADATA = ("a-token", 1700000000, None, "email", "root", "app", "get user", "ok", "", None)


def test_links_seals_and_anchors_keep_their_stored_values() -> None:
    links = AuditLinks(lambda: KEY)
    digest = payload_digest(b"who", None, b"after")

    assert digest.hex() == "0a130ee7b7374da2ccea687aee4507c8d6ee160ab76ebd1b92e09a370fabfde9"
    assert links.link(bytes(32), 3, 7, METADATA, digest).hex() == (
        "3f7ce0393bfa07305ccb8a9ad40c8f3eb2c653142a2824d94644b13b82f8847b"
    )
    assert links.seal(3, 7, b"\x01" * 32, 1, bytes(32), 0).hex() == (
        "f3d08b8ccc7090a5e072b693da7220763ae8cdc681f8ebba0d9f66725a194943"
    )
    assert links.anchor_digest([(0, 5, b"\x02" * 32), (3, 7, b"\x01" * 32)]).hex() == (
        "9e5281bb04873e394c87b0e3d7433d756218836f82bcf4597f4a8053f2e65da0"
    )


def test_values_are_encoded_so_that_no_two_rows_hash_alike() -> None:
    assert encode_fields(["ab", "c"]) != encode_fields(["a", "bc"])
    assert encode_fields([None]) != encode_fields([""])
    assert encode_fields([1]) != encode_fields(["1"])
    assert encode_fields(["x", 2, None, b"y"]) == b"".join(
        encode_field(value) for value in ["x", 2, None, b"y"]
    )
    assert payload_digest(b"a", None, None) != payload_digest(None, b"a", None)
    assert payload_digest(None, None, None) == EMPTY_DIGEST


def test_another_key_gives_other_links() -> None:
    digest = payload_digest(None, None, None)
    mine = AuditLinks(lambda: KEY).link(bytes(32), 0, 1, METADATA, digest)
    other = AuditLinks(lambda: bytes(32)).link(bytes(32), 0, 1, METADATA, digest)
    assert mine != other
