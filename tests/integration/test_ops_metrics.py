"""Issue 8 metrics: API calls, 429s and rate-limit headroom per CRM, and the drift count."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from connector.cli import main
from connector.sandbox.hubspot_app import HubSpotEmulator, RateLimits, rate_limit_body
from connector.sandbox.server import serve_in_thread

pytestmark = pytest.mark.integration
DAILY = 50_000


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_sync_metrics_count_429s_and_report_headroom_per_crm(
    demo, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    store, _ = demo
    emulator = HubSpotEmulator(store, limits=RateLimits(ten_secondly=1_000, daily=DAILY))
    # one search answered "secondly limit" (HubSpot's search 429 asks for a 1 s pause), then retried
    emulator.fail(
        429, times=1, path_prefix="/crm/v3/objects/contacts/search", body=rate_limit_body("SECONDLY")
    )
    with serve_in_thread(emulator) as server:
        monkeypatch.setenv("CONNECTOR_HUBSPOT_BASE_URL", server.url)
        monkeypatch.setenv("CONNECTOR_HUBSPOT_TOKEN", store.access_token)
        monkeypatch.setenv("CONNECTOR_STATE_URL", f"sqlite:///{tmp_path / 'state.db'}")
        monkeypatch.setenv("CONNECTOR_MAPPINGS_DIR", str(Path(__file__).resolve().parents[2] / "mappings"))
        target = tmp_path / "connector.prom"
        started = time.time()
        main(["sync", "--metrics-file", str(target)])
    got = samples(target.read_text())
    sent = len(store.requests)
    hubspot = (("crm", "hubspot"),)
    assert got[("connector_api_rate_limited_total", hubspot)] == 1.0
    assert got[("connector_api_calls_total", hubspot)] == sent  # the 429 answer counts as a call too
    daily = got[("connector_api_headroom_ratio", (("crm", "hubspot"), ("window", "daily")))]
    # HubSpot's own count after the last non-search answer, less the requests still in flight then
    # (the pacer's caution, at most CONNECTOR_HUBSPOT_WORKERS = 8): over the day's 50,000
    assert (DAILY - sent - 8) / DAILY <= daily < 1.0
    window = got[("connector_api_headroom_ratio", (("crm", "hubspot"), ("window", "ten_secondly")))]
    assert 0.0 < window < 1.0
    assert got[("connector_drift_people", ())] == 0.0  # HubSpot alone: nobody can drift
    assert got[("connector_last_success_timestamp_seconds", ())] >= int(started)
