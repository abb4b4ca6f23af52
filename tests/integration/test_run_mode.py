"""`connector run` as a container runs it: JSON logs, /metrics, /healthz and a graceful SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from connector.sandbox.hubspot_app import HubSpotEmulator
from connector.sandbox.server import serve_in_thread
from connector.state.store import StateStore

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def start_run(url: str, token: str, db: Path, *extra: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
    env.update(
        CONNECTOR_HUBSPOT_BASE_URL=url,
        CONNECTOR_HUBSPOT_TOKEN=token,
        CONNECTOR_STATE_URL=f"sqlite:///{db}",
        CONNECTOR_MAPPINGS_DIR=str(REPO / "mappings"),
        CONNECTOR_HUBSPOT_SEARCH_LAG="0",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "connector", "--log-level", "INFO", "--log-format", "json", "run",
         "--metrics-host", "127.0.0.1", "--metrics-port", "0", *extra],
        env=env, cwd=db.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def events_until(proc: subprocess.Popen[str], wanted: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
    """Read JSON log lines until an event named `wanted`; every line must parse as JSON."""
    assert proc.stderr is not None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        raw = proc.stderr.readline()
        if not raw:
            raise AssertionError(f"process ended before {wanted}: {lines[-5:]}")
        event = json.loads(raw)  # one JSON object per line, or this fails
        lines.append(event)
        if event.get("event") == wanted:
            return event
    raise AssertionError(f"no {wanted} event within 90 s")


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


def test_run_serves_metrics_and_stops_on_sigterm_with_cursors_saved(demo, tmp_path: Path) -> None:
    store, _ = demo
    db = tmp_path / "state.db"
    with (
        serve_in_thread(HubSpotEmulator(store)) as server,
        start_run(server.url, store.access_token, db, "--every", "1h") as proc,
    ):
        lines: list[dict[str, Any]] = []
        try:
            metrics_url = events_until(proc, "metrics.serving", lines)["url"]
            end = events_until(proc, "run.end", lines)
            assert end["status"] == "ok"
            assert end["counts"]["written"] > 0
            # `run.end` is logged inside the sync; the metrics are observed after it returns, and
            # the scheduler logs `schedule.next` only after that, so scrape once it appears.
            events_until(proc, "schedule.next", lines)
            exposition = get(f"{metrics_url}/metrics")
            written = next(
                    float(line.split()[-1]) for line in exposition.splitlines()
                    if line.startswith('connector_records_written_total{crm="hubspot"}')
                )  # fmt: skip
            assert written == end["counts"]["written"]
            assert "connector_last_success_timestamp_seconds" in exposition
            assert json.loads(get(f"{metrics_url}/healthz"))["status"] == "ok"
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        events_until_end = proc.stderr.read() if proc.stderr else ""
    assert proc.returncode == 0
    for raw in events_until_end.splitlines():
        json.loads(raw)
    assert any(e["event"] == "page.done" for e in lines)
    state = StateStore.open(f"sqlite:///{db}")
    try:
        assert "hubspot:contacts:lastmodifieddate" in state.cursors()
        assert state.runs(1)[0].status == "ok"
    finally:
        state.close()


def test_sigterm_mid_run_finishes_the_page_saves_its_cursor_and_exits_0(demo, tmp_path: Path) -> None:
    store, _ = demo
    db = tmp_path / "state.db"
    emulator = HubSpotEmulator(store)
    emulator.faults.latency = 0.05  # slow enough that the run is still going after its first page
    with (
        serve_in_thread(emulator) as server,
        start_run(server.url, store.access_token, db, "--every", "1h") as proc,
    ):
        lines: list[dict[str, Any]] = []
        try:
            first = events_until(proc, "page.done", lines)
            proc.send_signal(signal.SIGTERM)
            end = events_until(proc, "run.end", lines)
        finally:
            if proc.poll() is None:
                proc.wait(timeout=60)
    assert proc.returncode == 0
    assert end["status"] == "stopped"
    pages = [e for e in lines if e["event"] == "page.done"]
    assert len(pages) <= 2, "stops after the page in flight"
    state = StateStore.open(f"sqlite:///{db}")
    try:
        assert state.cursors()[pages[-1]["scope"]] == pages[-1]["cursor"]
        assert state.runs(1)[0].status == "stopped"
    finally:
        state.close()
    # nothing was written after the page in flight: every write the CRM saw is in a logged page
    assert sum(len(r.body["inputs"]) for r in store.record_writes()) == sum(p["written"] for p in pages)
    assert first["records"] > 0


def test_sync_writes_a_metrics_textfile(connector_env, tmp_path: Path) -> None:
    from connector.cli import main

    target = tmp_path / "connector.prom"
    main(["sync", "--metrics-file", str(target)])  # returns normally on success (exit 0)
    text = target.read_text()
    assert 'connector_runs_total{status="ok"} 1.0' in text
    assert "connector_records_read_total" in text
