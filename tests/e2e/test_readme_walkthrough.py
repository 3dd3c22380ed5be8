"""The README's walk through the API, pasted into bash against a real demo server.

The block runs as one bash script, as a reader would paste it, with ``curl`` wrapped to keep
each answer; every answer must have the status that the comment below its command shows.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from support.server import ServerProcess, child_env

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"
HEADING = "## A walk through the API"
DOCUMENTED_BASE = "http://127.0.0.1:3000"
CURL_CALL = re.compile(r"(?:^|\$\(|\|)\s*curl\s")
ANSWERED_STATUS = re.compile(r'^#.*"status":"(\w+)"')
# Every call of curl in the block goes through this wrapper, which keeps its answer.
PREAMBLE = """\
set -euo pipefail
shopt -s inherit_errexit
curl() {
    local answer
    answer=$(command curl "$@") || return
    printf '%s\\n' "$answer" >> "$WALKTHROUGH_ANSWERS"
    printf '%s\\n' "$answer"
}
"""


def walkthrough(readme: str) -> str:
    """The first ``sh`` block after the walk-through's heading."""
    after_heading = readme.split(f"\n{HEADING}\n", 1)[1]
    return after_heading.split("```sh\n", 1)[1].split("\n```", 1)[0] + "\n"


def documented_statuses(block: str) -> list[str]:
    """For each call of curl, in order, the status of the first answer shown after it."""
    statuses: list[str] = []
    waiting = 0
    for line in block.splitlines():
        stripped = line.strip()
        answered = ANSWERED_STATUS.match(stripped)
        if answered:
            assert waiting, f"an answer shown with no command before it: {line}"
            statuses += [answered.group(1)] * waiting
            waiting = 0
        elif not stripped.startswith("#"):
            waiting += len(CURL_CALL.findall(line))
    assert waiting == 0, "a call of curl without its answer in a comment below it"
    return statuses


def test_the_walkthrough_runs_as_pasted(tmp_path: Path) -> None:
    block = walkthrough(README.read_text(encoding="utf-8"))
    expected = documented_statuses(block)
    assert expected.count("ok") >= 10
    assert expected[-1] == "error"  # the erased person's email is not found any more
    assert DOCUMENTED_BASE in block
    answers_file = tmp_path / "answers.jsonl"

    with ServerProcess(["demo"], cwd=tmp_path) as server:
        script = PREAMBLE + block.replace(DOCUMENTED_BASE, server.url)
        result = subprocess.run(
            ["bash", "-c", script],
            env=child_env({"WALKTHROUGH_ANSWERS": str(answers_file)}),
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    answers = [json.loads(line) for line in answers_file.read_text().splitlines()]
    assert [answer["status"] for answer in answers] == expected, answers
    created = answers[0]["token"]
    assert result.stdout.splitlines()[0] == created  # echo "$TOKEN"
    assert {answer["token"] for answer in answers if "token" in answer} == {created}
    assert answers[-2]["data"] == {}  # the record is erased, its token still answers
