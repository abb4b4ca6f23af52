"""Prometheus metrics: what a platform engineer alerts on.

Served on `/metrics` (with `/healthz`) in `run` mode; written to a textfile (node-exporter's
textfile collector) or pushed to a Pushgateway after one-shot runs. A registry of our own keeps
the process's default collectors out of tests and textfiles.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
    push_to_gateway,
    write_to_textfile,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from connector.engine import RunReport


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.records_read = Counter("connector_records_read", "CRM records read", ["crm"], registry=r)
        self.records_written = Counter(
            "connector_records_written", "CRM records written", ["crm"], registry=r
        )
        self.records_failed = Counter(
            "connector_records_failed", "CRM records the CRM rejected (parked)", ["crm"], registry=r
        )
        self.transitions = Counter(
            "connector_stage_transitions", "Stage changes written", ["from_stage", "to_stage"], registry=r
        )
        self.api_calls = Counter("connector_api_calls", "CRM API calls made", ["crm"], registry=r)
        self.rate_limited = Counter(
            "connector_api_rate_limited",
            "CRM answers refusing a call for its rate limit (HubSpot 429, Salesforce REQUEST_LIMIT_EXCEEDED)",
            ["crm"],
            registry=r,
        )
        self.headroom = Gauge(
            "connector_api_headroom_ratio",
            "Share of a CRM API limit left after the last run, as the CRM reported it "
            "(window: ten_secondly = HubSpot's rolling 10 s, daily = the day's allocation)",
            ["crm", "window"],
            registry=r,
        )
        self.drift = Gauge(
            "connector_drift_people",
            "People in both CRMs whose stage or owner differs between them (listed by `connector status`)",
            registry=r,
        )
        self.runs = Counter("connector_runs", "Runs by outcome", ["status"], registry=r)
        self.duration = Gauge("connector_run_duration_seconds", "Duration of the last run", registry=r)
        self.last_success = Gauge(
            "connector_last_success_timestamp_seconds",
            "Unix time the last successful run finished",
            registry=r,
        )
        self.last_status: dict[str, Any] = {"status": "starting"}

    def observe(self, report: RunReport, *, duration: float, finished_at: float, crm: Iterable[str]) -> None:
        crms = list(crm)
        label = crms[0] if len(crms) == 1 else "all"
        self.records_read.labels(label).inc(report.counts["records_read"])
        self.records_written.labels(label).inc(report.counts["written"])
        self.records_failed.labels(label).inc(report.counts["failed"])
        for (before, after), n in report.transitions.items():
            self.transitions.labels(before, after).inc(n)
        if report.api:
            for name, health in report.api.items():
                self.api_calls.labels(name).inc(health.calls)
                self.rate_limited.labels(name).inc(health.throttled)
                for window, ratio in (
                    ("ten_secondly", health.window_headroom),
                    ("daily", health.daily_headroom),
                ):
                    if ratio is not None:
                        self.headroom.labels(name, window).set(ratio)
        else:
            self.api_calls.labels(label).inc(report.api_calls)
        if report.drift_people is not None:
            self.drift.set(report.drift_people)
        status = "stopped" if report.stopped else "partial" if report.failures else "ok"
        self.runs.labels(status).inc()
        self.duration.set(duration)
        if status in ("ok", "stopped"):
            self.last_success.set(finished_at)
        self.last_status = {"status": status, "run_id": report.run_id, "finished_at": finished_at}

    def observe_failure(self, error: str) -> None:
        self.runs.labels("failed").inc()
        self.last_status = {"status": "failed", "error": error}

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def write_textfile(self, path: Path) -> None:
        write_to_textfile(str(path), self.registry)

    def push(self, gateway: str, job: str = "lifecycle_connector") -> None:
        push_to_gateway(gateway, job=job, registry=self.registry)

    def wsgi_app(self) -> Callable[..., Iterable[bytes]]:
        """`/metrics` and `/healthz` (200 with the last run's status while the process is up)."""

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            if path == "/metrics":
                start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
                return [self.exposition()]
            if path == "/healthz":
                start_response("200 OK", [("Content-Type", "application/json")])
                return [json.dumps(self.last_status).encode()]
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]

        return app
