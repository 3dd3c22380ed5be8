"""Prometheus metrics. Labels are route templates and status codes, never identities.

With several worker processes (``serve --workers N``) every worker writes its figures to a
folder they share, and any worker answers ``/v1/metrics`` with the sum over all of them.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

__all__ = ["CONTENT_TYPE_LATEST", "MULTIPROCESS_METRICS", "Metrics"]

# prometheus_client's own switch to its multi-process mode.
MULTIPROCESS_METRICS = "PROMETHEUS_MULTIPROC_DIR"


# The methods the API and the portals answer; others are counted as "other", so that no
# client can grow the label sets.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "databunker_http_requests",
            "HTTP requests answered, by method, route template and status code.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "databunker_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ("method", "route"),
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        )

        self.decryption_failures = Counter(
            "databunker_decryption_failures",
            "Stored values that could not be decrypted (corrupted or swapped rows), by kind.",
            ("kind",),
            registry=self.registry,
        )

        # Label children by their labels, bound once: ``labels()`` checks and locks at
        # every call. Routes are templates (or "unmatched"), so these stay small.
        self._counted: dict[tuple[str, str, int], Any] = {}
        self._timed: dict[tuple[str, str], Any] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        if method not in _METHODS:  # any token is a method to some HTTP parsers
            method = "other"
        counted = self._counted.get((method, route, status))
        if counted is None:
            counted = self._counted[method, route, status] = self.requests.labels(
                method, route, str(status)
            )
        counted.inc()
        timed = self._timed.get((method, route))
        if timed is None:
            timed = self._timed[method, route] = self.latency.labels(method, route)
        timed.observe(seconds)

    def render(self) -> bytes:
        shared = os.environ.get(MULTIPROCESS_METRICS)
        if not shared:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=shared)  # type: ignore[no-untyped-call]
        return generate_latest(merged)
