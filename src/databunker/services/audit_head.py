"""The head of the tamper-evident audit chain, which root anchors outside the vault."""

from __future__ import annotations

from databunker.services.access import require_root
from databunker.services.context import Work
from databunker.storage.audit_chain import ChainHead, read_head


def chain_head(work: Work) -> ChainHead:
    """The newest link and how many events the chain holds (purged ones included)."""
    require_root(work.principal)
    return read_head(work.conn)
