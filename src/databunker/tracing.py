"""Request ids, trace ids and optional OpenTelemetry tracing.

Every request gets a request id (the caller's ``X-Request-Id`` when it is a plain short
token, else a random one), answered in ``X-Request-Id``, and a trace id: the W3C
``traceparent``'s when the caller sent a valid one, else a new one. Both ride in a context
variable, so every log line written while the request runs carries them (``logs``).

With tracing on (``tracing.enabled``), each request is also a server span sent by OTLP over
HTTP to ``tracing.endpoint``, a child of the caller's ``traceparent``. A span is named by the
route template (``GET /v1/user/{mode}/{identity}``) and carries the method, the template
and the status only: never a path, a query, an identity, a token or a value.
"""

from __future__ import annotations

import contextvars
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from databunker.config import ConfigError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span


@dataclass(frozen=True, slots=True)
class RequestIds:
    request_id: str
    trace_id: str


CURRENT: contextvars.ContextVar[RequestIds | None] = contextvars.ContextVar(
    "databunker_request", default=None
)

_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_NO_TRACE = "0" * 32
_NO_SPAN = "0" * 16


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id of a valid W3C ``traceparent`` (version 00), else None."""
    if not traceparent:
        return None
    found = _TRACEPARENT.fullmatch(traceparent.strip())
    if found is None or found.group(1) == _NO_TRACE or found.group(2) == _NO_SPAN:
        return None
    return found.group(1)


def request_id_of(given: str | None) -> str:
    """The caller's request id if it is a plain short token, else a new random one."""
    if given and _REQUEST_ID.fullmatch(given):
        return given
    return secrets.token_hex(8)


class RequestSpan(Protocol):
    trace_id: str

    def finish(self, method: str, route: str, status: int) -> None: ...


class _Untraced:
    __slots__ = ("trace_id",)

    def __init__(self, traceparent: str | None) -> None:
        self.trace_id = trace_id_of(traceparent) or secrets.token_hex(16)

    def finish(self, method: str, route: str, status: int) -> None:
        return None


class _Traced:
    __slots__ = ("span", "trace_id")

    def __init__(self, span: Span) -> None:
        self.span = span
        self.trace_id = format(span.get_span_context().trace_id, "032x")

    def finish(self, method: str, route: str, status: int) -> None:
        from opentelemetry.trace import Status, StatusCode

        self.span.update_name(f"{method} {route}")
        self.span.set_attribute("http.request.method", method)
        self.span.set_attribute("http.route", route)
        self.span.set_attribute("http.response.status_code", status)
        if status >= 500:
            self.span.set_status(Status(StatusCode.ERROR))
        self.span.end()


class Tracing:
    """Starts a span per request when OpenTelemetry tracing is configured, else only ids."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        self._provider = provider
        self._tracer = provider.get_tracer("databunker") if provider is not None else None

    @classmethod
    def otlp(cls, endpoint: str, service_name: str) -> Tracing:
        """Spans sent in batches by OTLP over HTTP (protobuf) to ``endpoint``."""
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError as exc:
            raise ConfigError(
                "tracing.enabled needs OpenTelemetry: pip install 'databunker[tracing]'"
            ) from exc

        provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        return cls(provider)

    @property
    def enabled(self) -> bool:
        return self._tracer is not None

    def start(self, method: str, traceparent: str | None) -> RequestSpan:
        if self._tracer is None:
            return _Untraced(traceparent)
        from opentelemetry.trace import SpanKind
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        parent = None
        if trace_id_of(traceparent) is not None:
            parent = TraceContextTextMapPropagator().extract({"traceparent": str(traceparent)})
        span = self._tracer.start_span(method, context=parent, kind=SpanKind.SERVER)
        return _Traced(span)

    def shutdown(self) -> None:
        """Send the spans still queued, then stop (at server shutdown)."""
        if self._provider is not None:
            self._provider.shutdown()
