"""Prometheus metrics: request counts and latencies per route template, and the model in service.

A plain ASGI middleware (no per-request task or body wrapping) so it adds microseconds, not milliseconds.
Each app gets its own registry, so several apps in one process (tests) do not collide.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ipcredit_http_requests_total", "HTTP requests", ("method", "route", "status"), registry=self.registry
        )
        self.latency = Histogram(
            "ipcredit_http_request_duration_seconds",
            "HTTP request latency",
            ("method", "route"),
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.model_loaded = Gauge(
            "ipcredit_model_loaded", "1 when a champion model is loaded", ("model_version",), registry=self.registry
        )
        self.draw_seconds = Histogram(
            "ipcredit_draw_duration_seconds", "time to make a sampling draw", buckets=BUCKETS, registry=self.registry
        )


class MetricsMiddleware:
    def __init__(self, app, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            self.metrics.requests.labels(scope["method"], path, str(status)).inc()
            self.metrics.latency.labels(scope["method"], path).observe(time.perf_counter() - start)
