"""Loaded only by ``bench/run --audit-chain off``, in the server it starts: audit events are
inserted as before the chain existed (no link, no lane head), so that the benchmark can show
what the tamper-evident chain costs. The vault itself never runs this way."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Connection

from databunker.storage import audit_chain
from databunker.storage.tables import audit


def _append_unlinked(conn: Connection, row: Mapping[str, Any]) -> None:
    conn.execute(audit.insert().values(dict(row)))


audit_chain.append = _append_unlinked  # type: ignore[assignment]
