"""Golden transcripts of the v1 wire: record a scripted scenario's exchanges, compare them
with a committed file.

A transcript holds, for every step, the caller, method and path, the request body, the
status, content type (and ``Allow`` when sent; sorted on a 405, whose order Starlette takes
from a set) and the **raw** answer body, as the server wrote it: key order and spacing are
part of the wire. Values that differ from run to run
are replaced on that raw text, by regular expressions, so the bytes around them are kept:

- every UUID (user, request, audit, record and expiration tokens, captcha ids) becomes
  ``<uuid:N>``, numbered in order of first appearance in the transcript;
- every other run of 16 or more lower-case hex digits (token hashes) becomes ``<hex:N>``;
- what a scenario marks as secret in a path (a captcha answer, a login code) is shown as
  the placeholder it names.

Times come from the test's settable clock and stay literal. ``GOLDEN_UPDATE=1`` rewrites
the golden file instead of comparing.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from httpx2 import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.testclient import TestClient

from support.vaults import Clock

GOLDEN_DIR = Path(__file__).resolve().parent.parent / "golden"
UPDATE_VARIABLE = "GOLDEN_UPDATE"
TOKEN_HEADER = "X-Bunker-Token"
STEP_MARK = "### "

UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
HEX = re.compile(r"(?<![0-9A-Za-z])[0-9a-f]{16,}(?![0-9A-Za-z])")


class Placeholders:
    """Replaces volatile values by stable numbered placeholders, one numbering per kind
    shared by the whole transcript (the same token is the same placeholder everywhere)."""

    def __init__(self) -> None:
        self._seen: dict[str, dict[str, str]] = {"uuid": {}, "hex": {}}

    def _name(self, kind: str, value: str) -> str:
        names = self._seen[kind]
        if value not in names:
            names[value] = f"<{kind}:{len(names) + 1}>"
        return names[value]

    def __call__(self, text: str) -> str:
        text = UUID.sub(lambda m: self._name("uuid", m.group(0).lower()), text)
        return HEX.sub(lambda m: self._name("hex", m.group(0)), text)


@dataclass(frozen=True)
class Caller:
    """Who sends a request: a label for the transcript and the token sent (None: none)."""

    label: str
    token: str | None


class Transcript:
    """Drives one client of a vault's app and records each exchange as a step.

    Every step first moves the clock one second on, so that no two steps share a time:
    lists ordered newest first never fall back on a random token to break a tie, and read
    the same on every database."""

    def __init__(self, client: TestClient, clock: Clock) -> None:
        self.client = client
        self.clock = clock
        self.placeholders = Placeholders()
        self.blocks: list[str] = []
        # (method, path) of every request sent, for routes_not_driven.
        self.sent: list[tuple[str, str]] = []

    def call(
        self,
        caller: Caller,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: str | bytes | None = None,
        headers: dict[str, str] | None = None,
        shown_path: str | None = None,
        shown_request: str | None = None,
        volatile_body: bool = False,
        all_headers: bool = False,
        shown_body: Callable[[str], str] | None = None,
    ) -> Response:
        """Send one request and record it. ``shown_path`` / ``shown_request`` replace what
        the transcript shows of the path / request body (secrets, huge bodies);
        ``volatile_body`` keeps only the answer's status and content type; ``all_headers``
        shows every header of the answer, in the order sent; ``shown_body`` picks the part
        of a partly volatile body that the transcript shows."""
        self.clock.advance(1)
        self.sent.append((method, path))
        sent = dict(headers or {})
        if caller.token is not None:
            sent[TOKEN_HEADER] = caller.token
        response = self.client.request(method, path, json=json, content=content, headers=sent)
        request_text = shown_request
        if request_text is None:
            raw = response.request.content
            request_text = raw.decode() if raw else None
        lines = [
            f"{STEP_MARK}{len(self.blocks) + 1:03d} {method} "
            f"{self.placeholders(shown_path or path)}  [{caller.label}]"
        ]
        content_type = sent.get("Content-Type") or response.request.headers.get("content-type")
        if request_text is not None:
            lines.append(f"> {content_type}: {self._one_line(self.placeholders(request_text))}")
        answer_type = response.headers.get("content-type", "-")
        lines.append(f"< {response.status_code} {answer_type}")
        if all_headers:
            for name, value in response.headers.multi_items():
                if name == "allow":
                    lines.append(self._allow(response))
                    continue
                shown = "<volatile>" if volatile_body and name == "content-length" else value
                if name == "x-request-id":  # a new random id per request
                    shown = "<request id>"
                lines.append(f"< {name}: {shown}")
        elif "allow" in response.headers:
            lines.append(self._allow(response))
        if volatile_body:
            lines.append(f"<volatile body: {'empty' if not response.content else 'not shown'}>")
        else:
            body = response.content.decode()
            lines.append(self._body(self.placeholders(shown_body(body) if shown_body else body)))
        self.blocks.append("\n".join(lines))
        return response

    @staticmethod
    def _allow(response: Response) -> str:
        allow = response.headers["allow"]
        if response.status_code != 405:
            return f"< allow: {allow}"
        # Starlette lists a route's methods from a set: their order changes with the
        # process's hash seed, so only the set is part of the wire.
        return f"< allow (any order): {', '.join(sorted(allow.split(', ')))}"

    def section(self, title: str, rows: list[str]) -> None:
        """A closing block that is not one exchange (the audit trail's titles)."""
        self.blocks.append(
            "\n".join([f"{STEP_MARK}{title}", *self.placeholders("\n".join(rows)).split("\n")])
        )

    @staticmethod
    def _one_line(text: str) -> str:
        if "\n" in text or "\r" in text:
            return "<escaped> " + text.encode("unicode_escape").decode()
        return text

    @classmethod
    def _body(cls, text: str) -> str:
        # JSON bodies are one line. A text body keeps its lines unless a blank line, a
        # carriage return or a final line break would blur where it ends: then it is
        # shown escaped.
        if not text:
            return "<empty>"
        if "\n\n" in text or "\r" in text or text.endswith("\n"):
            return cls._one_line(text)
        return text

    def text(self) -> str:
        return "\n\n".join(self.blocks) + "\n"


def audit_trail_rows(client: TestClient, root: Caller) -> list[str]:
    """Every audit event, newest first, as ``title | status | mode | msg`` (root's view of
    ``/v1/audit/admin``, paged through; that route is not itself audited)."""
    rows: list[dict[str, Any]] = []
    while True:
        response = client.get(
            f"/v1/audit/admin?offset={len(rows)}&limit=100",
            headers={TOKEN_HEADER: root.token or ""},
        )
        assert response.status_code == 200, response.text
        page = response.json()
        rows.extend(page["rows"])
        if not page["rows"] or len(rows) >= page["total"]:
            break
    return [
        " | ".join([row["title"], row["status"], row.get("mode", "-"), row.get("msg", "-")])
        for row in rows
    ]


# Key management and the audit chain's head: additions whose answers their own tests pin
# (tests/integration/keys, tests/integration/audit_chain); driving them here would seal the
# vault or rotate its keys in the middle of the scenario.
PINNED_ELSEWHERE = frozenset(
    {
        "GET /v1/sys/seal",
        "POST /v1/sys/seal",
        "POST /v1/sys/unseal",
        "GET /v1/sys/keys",
        "POST /v1/sys/keys/rotate",
        "GET /v1/sys/audit/head",
    }
)


def routes_not_driven(routes: list[BaseRoute], sent: list[tuple[str, str]]) -> list[str]:
    """The v1 routes (``/v1/...`` and ``/status``) and methods that no request went to,
    but for those ``PINNED_ELSEWHERE``."""
    scopes = []
    for method, path in sent:
        route_path = unquote(urlsplit(path).path)
        if len(route_path) > 1:
            route_path = route_path.rstrip("/")  # as the edge middleware does
        scopes.append({"type": "http", "method": method, "path": route_path})
    missing = []
    for route in routes:
        if not isinstance(route, Route) or not (
            route.path.startswith("/v1/") or route.path == "/status"
        ):
            continue
        for method in sorted((route.methods or set()) - {"HEAD"}):
            driven = any(
                route.matches(scope)[0] is Match.FULL
                for scope in scopes
                if scope["method"] == method
            )
            if not driven and f"{method} {route.path}" not in PINNED_ELSEWHERE:
                missing.append(f"{method} {route.path}")
    return missing


def _blocks(text: str) -> list[str]:
    return [block.strip("\n") for block in text.split("\n\n" + STEP_MARK)]


def first_difference(expected: str, got: str) -> str:
    """The first step (or closing block) where two transcripts differ, as a unified diff
    of that block under its heading (method, path and caller)."""
    want, have = _blocks(expected), _blocks(got)
    for index in range(max(len(want), len(have))):
        old = want[index] if index < len(want) else "<no step>"
        new = have[index] if index < len(have) else "<no step>"
        if old != new:
            heading = (old if index < len(want) else new).split("\n", 1)[0]
            diff = difflib.unified_diff(
                old.split("\n"),
                new.split("\n"),
                "expected",
                "got",
                lineterm="",
                n=max(old.count("\n"), new.count("\n")) + 1,
            )
            return f"step {heading.removeprefix(STEP_MARK)}\n" + "\n".join(diff)
    return "only in the spacing between steps"


# What GOLDEN_UPDATE=1 wrote in this run, by file: the other database must answer the same.
_written: dict[str, str] = {}


def compare_with_golden(name: str, transcript: Transcript) -> None:
    """Fail at the first step that differs from ``tests/golden/<name>``; with
    ``GOLDEN_UPDATE=1`` write the transcript there instead (and fail if another database
    wrote a different one earlier in the same run)."""
    path = GOLDEN_DIR / name
    got = transcript.text()
    if os.environ.get(UPDATE_VARIABLE) == "1":
        earlier = _written.setdefault(name, got)
        if earlier != got:
            raise AssertionError(
                f"{name}: the databases answer differently, at {first_difference(earlier, got)}"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(got, encoding="utf-8")
        return
    if not path.exists():
        raise AssertionError(f"{path} is missing: run the test once with {UPDATE_VARIABLE}=1")
    expected = path.read_text(encoding="utf-8")
    if got != expected:
        raise AssertionError(
            f"the v1 wire differs from {name} at {first_difference(expected, got)}\n"
            f"(if the change is intended, rerun with {UPDATE_VARIABLE}=1 and review the diff)"
        )
