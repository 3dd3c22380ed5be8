"""Bulk import and export of users as JSON lines: the service functions and the commands."""

from __future__ import annotations

import io
import json
from pathlib import Path

import sqlalchemy as sa
from starlette.testclient import TestClient

from databunker.bulk import export_users, import_users
from databunker.services.context import Context
from databunker.storage.tables import outbox
from support.server import run_cli
from support.vaults import MASTER_KEY_HEX, VaultFactory, client_for

ANN = {"email": "ann@example.com", "login": "ann", "name": "Ann Smith", "tags": ["a", "b"]}
BOB = {"phone": "+447700900123", "name": "Bob Jones"}
CAROL = {"login": "carol", "city": "Leeds"}


def _lines(*profiles: object) -> list[str]:
    return [json.dumps(p) + "\n" for p in profiles]


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True)


def _exported(vault: Context) -> list[dict[str, object]]:
    out = io.StringIO()
    count = export_users(vault, out, batch_size=2)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert count == len(records)
    return records


def test_import_then_export_round_trips_every_profile(vault: Context, api: TestClient) -> None:
    report = import_users(vault, _lines(ANN, BOB, CAROL), batch_size=2)

    assert (report.created, report.skipped, report.errors) == (3, 0, [])
    records = _exported(vault)
    assert sorted((r["profile"] for r in records), key=_canonical) == sorted(
        [ANN, BOB, CAROL], key=_canonical
    )
    # The exported tokens are the users' tokens: the API finds each record by them.
    for record in records:
        answer = api.get(f"/v1/user/token/{record['token']}")
        assert answer.json()["data"] == record["profile"]
    assert api.get("/v1/user/email/ann@example.com").json()["data"] == ANN


def test_bad_lines_are_reported_by_number_without_their_content(vault: Context) -> None:
    lines = [
        json.dumps(ANN) + "\n",
        '{"email": "secret@example.com", broken\n',
        "\n",  # blank lines are ignored, not errors
        '["not", "an", "object"]\n',
        json.dumps({"name": "no lookup field"}) + "\n",
        json.dumps(BOB) + "\n",
    ]
    progress = io.StringIO()

    report = import_users(vault, lines, batch_size=2, progress=progress)

    assert report.created == 2
    assert report.skipped == 3
    assert [number for number, _ in report.errors] == [2, 4, 5]
    reasons = " ".join(reason for _, reason in report.errors)
    assert "secret" not in reasons
    assert "no lookup field" not in reasons
    assert "imported 2 users, skipped 3 lines" in progress.getvalue()
    assert [r["profile"] for r in _exported(vault)] in ([ANN, BOB], [BOB, ANN])


def test_duplicates_are_skipped_and_the_rest_of_the_batch_is_kept(
    vault: Context, api: TestClient
) -> None:
    assert import_users(vault, _lines(ANN)).created == 1
    again = {"email": "ANN@example.com", "name": "Someone else"}

    report = import_users(vault, _lines(BOB, again, {"login": "ann"}, BOB, CAROL), batch_size=10)

    assert report.created == 2
    assert [number for number, _ in report.errors] == [2, 3, 4]
    assert all("duplicate" in reason for _, reason in report.errors)
    assert api.get("/v1/user/email/ann@example.com").json()["data"] == ANN
    assert api.get("/v1/user/login/carol").json()["data"] == CAROL
    assert len(_exported(vault)) == 3


def test_imported_people_get_their_waiting_consents_and_a_webhook_each(
    make_vault: VaultFactory,
) -> None:
    vault = make_vault(notification={"notification_url": "http://127.0.0.1:9/hook"})
    with client_for(vault) as api:
        body = {"module": "signup-page", "basistype": "consent", "usercontrol": True}
        assert api.post("/v1/lbasis/newsletter", json=body).json()["status"] == "ok"
        given = api.post("/v1/agreement/newsletter/email/ann@example.com", json={})
        assert given.json()["status"] == "ok"

        report = import_users(vault, _lines(ANN, BOB, CAROL), batch_size=10)

        assert (report.created, report.skipped) == (3, 0)
        ann = api.get("/v1/user/email/ann@example.com").json()["token"]
        consents = api.get(f"/v1/agreements/token/{ann}").json()["rows"]
        assert [(c["brief"], c["status"]) for c in consents] == [("newsletter", "yes")]
    with vault.database.transaction() as conn:
        kinds = conn.execute(sa.select(outbox.c.kind)).scalars().all()
    assert kinds.count("webhook") == 3


def test_export_leaves_out_erased_users(vault: Context, api: TestClient) -> None:
    import_users(vault, _lines(ANN, BOB))
    assert api.delete("/v1/user/email/ann@example.com").json()["status"] == "ok"

    assert [r["profile"] for r in _exported(vault)] == [BOB]


def test_the_commands_import_and_export_files(
    vault: Context, database_url: str, tmp_path: Path
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(_lines(ANN, BOB)) + "not json\n", encoding="utf-8")
    env = {"DATABUNKER_MASTERKEY": MASTER_KEY_HEX}

    imported = run_cli(["import", "--db", database_url, str(source)], env, cwd=tmp_path)
    exported = run_cli(
        ["export", "--db", database_url, str(tmp_path / "out.jsonl")], env, cwd=tmp_path
    )

    assert imported.returncode == 0, imported.stderr
    assert "line 3: skipped: not valid JSON" in imported.stderr
    assert "imported 2 users, skipped 1 lines" in imported.stderr
    assert exported.returncode == 0, exported.stderr
    assert "exported 2 users" in exported.stderr
    lines = (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
    assert sorted(json.loads(line)["profile"]["name"] for line in lines) == [
        "Ann Smith",
        "Bob Jones",
    ]


def test_the_commands_need_the_databases_master_key(
    vault: Context, database_url: str, tmp_path: Path
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(_lines(ANN)), encoding="utf-8")

    missing = run_cli(["import", "--db", database_url, str(source)], {}, cwd=tmp_path)
    wrong = run_cli(
        ["export", "--db", database_url, "-"], {"DATABUNKER_MASTERKEY": "ab" * 32}, cwd=tmp_path
    )

    assert missing.returncode == 1
    assert "DATABUNKER_MASTERKEY" in missing.stderr
    assert wrong.returncode == 1
    assert "does not match" in wrong.stderr
    assert wrong.stdout == ""
    assert _exported(vault) == []
