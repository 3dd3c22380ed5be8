"""Running ``databunker audit verify`` in-process, and reaching into the audit table as
someone with write access to the database (not the vault) would."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from databunker.cli import main
from databunker.services.context import Context
from support.vaults import MASTER_KEY_HEX


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str


class Verifier:
    """``databunker audit verify --db URL [ARGS]`` as an operator runs it."""

    def __init__(
        self, url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        self.url = url
        self._capsys = capsys
        monkeypatch.setenv("DATABUNKER_MASTERKEY", MASTER_KEY_HEX)

    def __call__(self, *args: str) -> Outcome:
        self._capsys.readouterr()
        code = main(["audit", "verify", "--db", self.url, *args])
        captured = self._capsys.readouterr()
        return Outcome(code, captured.out, captured.err)


@pytest.fixture
def verify(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Verifier:
    monkeypatch.chdir(tmp_path)  # no databunker.yaml of the working tree
    return Verifier(database_url, monkeypatch, capsys)


def chained(vault: Context) -> list[str]:
    """The atokens of the chain, lane after lane, in chain order (a test's requests made one
    after another all go to one lane)."""
    with vault.database.transaction() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT atoken FROM audit WHERE chain_pos IS NOT NULL "
                "ORDER BY chain_lane, chain_pos"
            )
        )
        return [str(atoken) for (atoken,) in rows]


def tamper(vault: Context, sql: str, **params: object) -> None:
    """One statement run straight on the database, outside the vault."""
    with vault.database.transaction() as conn:
        conn.execute(sa.text(sql), params)


def value(vault: Context, sql: str, **params: object) -> Any:
    """The first column of the first row of a query run straight on the database."""
    with vault.database.transaction() as conn:
        return conn.execute(sa.text(sql), params).first()[0]  # type: ignore[index]


def broken_at(outcome: Outcome, atoken: str) -> str:
    """The refusal's reason, checked to name ``atoken`` with exit status 1."""
    assert outcome.code == 1, outcome
    assert outcome.stdout == ""
    prefix = f"databunker: audit chain broken at event {atoken}: "
    line = refusal(outcome)
    assert line.startswith(prefix), outcome.stderr
    return line.removeprefix(prefix)


def refusal(outcome: Outcome) -> str:
    """The command's one refusal line on stderr (log lines aside), exit status 1."""
    assert outcome.code == 1, outcome
    lines = [line for line in outcome.stderr.splitlines() if line.startswith("databunker: ")]
    assert len(lines) == 1, outcome.stderr
    assert "Traceback" not in outcome.stderr
    return lines[0]


def intact(outcome: Outcome, events: int) -> None:
    assert outcome.code == 0, outcome
    assert outcome.stdout.splitlines()[0] == f"audit chain intact: {events} events"
