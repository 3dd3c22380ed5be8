"""Loaded only by ``bench/run --audit-chain off`` and ``bench/chain_cost.py``, in the server
they start: audit events are inserted as before the chain existed (the same prepared insert,
without a link and without touching a lane's head), so that the benchmark can show what the
tamper-evident chain costs. The vault itself never runs this way."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Connection

from databunker.storage import audit_chain

_UNLINKED = {"chain_lane": None, "chain_pos": None, "chain_link": None, "payload_digest": None}


def _append_unlinked(conn: Connection, row: Mapping[str, Any]) -> None:
    event = {name: row[name] for name in (*audit_chain.METADATA_COLUMNS, "who", "before", "after")}
    audit_chain._INSERT_EVENT.execute(conn, {**event, **_UNLINKED})


audit_chain.append = _append_unlinked  # type: ignore[assignment]
