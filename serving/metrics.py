"""Prometheus metrics: request counts and latencies per route template, the model in service, and the
drift and fairness alerts of the latest monthly report.

A plain ASGI middleware (no per-request task or body wrapping) so it adds microseconds, not milliseconds.
Each app gets its own registry, so several apps in one process (tests) do not collide.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from datetime import time as day_start

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)

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

    def watch_reports(self, engine: Engine) -> None:
        """Publish the latest monitoring report's alerts (read from the database at each scrape)."""
        self.registry.register(ReportAlerts(engine))


class ReportAlerts(Collector):
    """Gauges from the latest monthly report in the database, so every instance of the service says the
    same: the report's month, the PSI and drift flag of the score and of every feature, and every fairness
    flag (group, value, metric). The parsed report is cached by id; a scrape costs one indexed query."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._cached: tuple[int, dict] | None = None

    def _latest(self) -> dict | None:
        from serving import reports  # the metrics sit below the routes; reports import the models

        with self.engine.connect() as conn:
            report_id = reports.latest_report_id(conn)
            if report_id is None:
                return None
            with self._lock:
                if self._cached and self._cached[0] == report_id:
                    return self._cached[1]
            figures = json.loads(reports.report_row(conn, report_id)["figures"])
        with self._lock:
            self._cached = (report_id, figures)
        return figures

    def collect(self) -> Iterator[GaugeMetricFamily]:
        available = GaugeMetricFamily(
            "ipcredit_report_available", "1 when a monthly monitoring report has been issued and could be read"
        )
        try:
            figures = self._latest()
        except SQLAlchemyError as exc:  # the service's other metrics still answer
            log.warning("monitoring report not read for /metrics: %s", exc.__class__.__name__)
            figures = None
        available.add_metric([], 0.0 if figures is None else 1.0)
        yield available
        if figures is None:
            return
        as_of = datetime.combine(datetime.fromisoformat(figures["as_of"]).date(), day_start(0), UTC)
        month = GaugeMetricFamily(
            "ipcredit_report_as_of_seconds", "the as-of date of the latest report (Unix time)", labels=["model_version"]
        )
        month.add_metric([str(figures["model_version"])], as_of.timestamp())
        yield month
        psi = GaugeMetricFamily("ipcredit_drift_psi", "PSI against the model's training reference", labels=["feature"])
        flagged = GaugeMetricFamily(
            "ipcredit_drift_flagged",
            "1 when the feature's drift is past its band and its noise floor",
            labels=["feature"],
        )
        for row in figures["drift"]:
            if row.get("psi") is not None:
                psi.add_metric([row["feature"]], float(row["psi"]))
            flagged.add_metric([row["feature"]], 1.0 if row.get("flagged") else 0.0)
        yield psi
        yield flagged
        drifted = GaugeMetricFamily("ipcredit_drift_flagged_features", "features (and the score) flagged for drift")
        drifted.add_metric([], float(len(figures["drift_flagged"])))
        yield drifted
        fairness = GaugeMetricFamily(
            "ipcredit_fairness_flagged",
            "1 for each group metric whose interval lies wholly beyond the policy's tolerance",
            labels=["group", "value", "metric"],
        )
        groups = 0
        for row in figures.get("fairness", []) + figures.get("fairness_matured", []):
            metrics = [m for m in (row.get("flags") or "").split(";") if m]
            groups += bool(metrics)
            for metric in metrics:
                fairness.add_metric([row["group"], str(row["value"]), metric], 1.0)
        yield fairness
        flagged_groups = GaugeMetricFamily("ipcredit_fairness_flagged_groups", "groups with at least one fairness flag")
        flagged_groups.add_metric([], float(groups))
        yield flagged_groups


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
