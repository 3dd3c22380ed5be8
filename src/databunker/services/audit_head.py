"""The head of the tamper-evident audit chain, which root anchors outside the vault."""

from __future__ import annotations

from databunker.services.access import require_root
from databunker.services.context import Work
from databunker.storage.audit_chain import Anchor, current_anchor


def chain_head(work: Work) -> Anchor:
    """How many events the chain holds (purged ones included) and a keyed digest of its
    newest links."""
    require_root(work.principal)
    return current_anchor(work.conn)
