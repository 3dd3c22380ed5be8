"""Tracing end to end: a real ``databunker serve`` with tracing on sends its spans by OTLP
over HTTP to a local receiver; a span is named by the route template, continues the caller's
``traceparent``, and carries no identity; every log line carries the request and trace ids,
under logger names that say what logs."""

from __future__ import annotations

from pathlib import Path

import httpx2 as httpx
import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from support.receiver import Receiver
from support.server import ServerProcess, run_cli

pytestmark = pytest.mark.e2e

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


def test_spans_go_to_the_collector_named_by_route_and_continue_the_callers_trace(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/vault.db"
    init = run_cli(["init", "--db", url], cwd=tmp_path)
    assert init.returncode == 0, init.stderr
    env = dict(line.split("=", 1) for line in init.stdout.splitlines() if "=" in line)
    root = {"X-Bunker-Token": env["DATABUNKER_ROOTTOKEN"]}
    with Receiver(path="/v1/traces") as collector:
        settings = {"TRACING_ENABLED": "true", "TRACING_ENDPOINT": collector.url, **env}
        with (
            ServerProcess(["serve", "--db", url], settings, cwd=tmp_path) as server,
            httpx.Client(base_url=server.url, headers=root, timeout=30) as client,
        ):
            created = client.post("/v1/user", json={"email": "alice@example.com"})
            assert created.status_code == 200, created.text
            traceparent = f"00-{TRACE_ID}-{PARENT_ID}-01"
            found = client.get(
                "/v1/user/email/alice@example.com",
                headers={"traceparent": traceparent, "X-Request-Id": "req-42"},
            )
            assert found.status_code == 200
            assert found.headers["x-request-id"] == "req-42"
        # The server sends what it still holds when it stops.
        bodies = [r.body for r in collector.requests if r.path == "/v1/traces"]
    spans = []
    for body in bodies:
        export = ExportTraceServiceRequest.FromString(body)
        for resource in export.resource_spans:
            for scope in resource.scope_spans:
                spans.extend(scope.spans)
    names = {span.name for span in spans}
    assert {"POST /v1/user", "GET /v1/user/{mode}/{identity}"} <= names
    lookup = next(s for s in spans if s.name == "GET /v1/user/{mode}/{identity}")
    assert lookup.trace_id.hex() == TRACE_ID
    assert lookup.parent_span_id.hex() == PARENT_ID
    attributes = {a.key: a.value for a in lookup.attributes}
    assert set(attributes) == {"http.request.method", "http.route", "http.response.status_code"}
    assert attributes["http.response.status_code"].int_value == 200
    assert all(b"alice" not in body and b"example.com" not in body for body in bodies)

    lines = [orjson.loads(line) for line in server.stderr.splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "databunker.access"]
    assert access
    assert all(line["request_id"] and line["trace_id"] for line in access)
    traced = [line for line in access if line["trace_id"] == TRACE_ID]
    assert [line["request_id"] for line in traced] == ["req-42"]
    assert not [line for line in lines if line["logger"].startswith("uvicorn")]
    assert any(line["logger"] == "databunker.server" for line in lines)
