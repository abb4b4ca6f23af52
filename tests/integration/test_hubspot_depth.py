"""HubSpot at production depth, end to end through the CLI over real HTTP: a spent daily budget
stops a run cleanly and the next run finishes the job, a 207 batch parks the rejected record with
HubSpot's message, and a run with nothing new costs one search and one events call per type."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connector.cli import main
from connector.crm.hubspot_cursor import Position
from connector.errors import ExitCode
from connector.sandbox.hubspot_app import HubSpotEmulator, RateLimits
from connector.sandbox.hubspot_store import (
    HubSpotStore,
    default_contact_properties,
    hs_datetime,
    property_definition,
)
from connector.sandbox.server import serve_in_thread
from connector.state.store import StateStore

pytestmark = pytest.mark.integration

CONTACTS_CURSOR = "hubspot:contacts:lastmodifieddate"
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def run_cli(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def written_ids(store: HubSpotStore) -> Counter[str]:
    """Contacts HubSpot reports as updated (a 207 lists only those in `results`)."""
    return Counter(
        str(o["id"]) for r in store.record_writes() if r.status < 300 for o in r.response["results"]
    )


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(False, id="no-headers-so-a-DAILY-429-stops-it"),
        pytest.param(True, id="daily-remaining-header-stops-it-before-any-429"),
    ],
)
def test_a_spent_daily_budget_stops_the_run_at_the_last_good_page_and_the_next_run_finishes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys, headers: bool
) -> None:
    store = HubSpotStore()
    store.properties["contacts"] = default_contact_properties()
    reason = property_definition("lifecycle_stage_reason", "Lifecycle stage reason", "string", "textarea")
    store.properties["contacts"]["lifecycle_stage_reason"] = reason  # hubspot.yaml writes it
    modified: dict[str, int] = {}
    for i in range(2_500):  # three feed pages of up to 1,000 contacts
        cid = str(1000 + i)
        moment = T0 + timedelta(seconds=i)
        store.contacts[cid] = {
            "hs_object_id": cid,
            "email": f"p{i}@acme.example",
            "createdate": hs_datetime(T0),
            "lastmodifieddate": hs_datetime(moment),
        }
        modified[cid] = int(moment.timestamp() * 1000)
    emulator = HubSpotEmulator(store, limits=RateLimits(daily=40, headers=headers))
    db = tmp_path / "state.db"
    with serve_in_thread(emulator) as server:
        monkeypatch.setenv("CONNECTOR_HUBSPOT_BASE_URL", server.url)
        monkeypatch.setenv("CONNECTOR_HUBSPOT_TOKEN", store.access_token)
        monkeypatch.setenv("CONNECTOR_STATE_URL", f"sqlite:///{db}")
        monkeypatch.setenv("CONNECTOR_MAPPINGS_DIR", str(Path(__file__).resolve().parents[2] / "mappings"))
        # One request at a time: with 8 workers a busy machine could spend the 40-request budget
        # on reads for later pages before the first page's writes, leaving no page committed.
        monkeypatch.setenv("CONNECTOR_HUBSPOT_WORKERS", "1")

        assert run_cli("sync") == ExitCode.PARTIAL  # the daily budget ran out: work left for later
        assert "daily API" in capsys.readouterr().err
        daily_429s = [r.status for r in store.requests].count(429)
        if headers:
            assert daily_429s == 0  # X-HubSpot-RateLimit-Daily-Remaining said so before sending
        else:
            # the request in flight (one worker); none is retried, none follows
            assert daily_429s == 1
        first = written_ids(store)
        state = StateStore.open(f"sqlite:///{db}")
        cursor = Position.decode(state.get_cursor(CONTACTS_CURSOR))
        state.close()
        assert cursor.ts is not None
        committed = {cid for cid, ts in modified.items() if ts <= cursor.ts}
        assert committed, "the first run committed at least one page"
        assert committed <= set(first), "every page up to the cursor was written"
        assert len(first) < len(modified), "the budget ran out before the end"

        emulator._limiter.limits.daily = None  # a new day
        assert run_cli("sync") == ExitCode.OK
    total = written_ids(store)
    assert set(total) == set(modified)
    assert max(total.values()) == 1, "no contact was written twice across the two runs"
    state = StateStore.open(f"sqlite:///{db}")
    rows = Counter((r["record_id"], r["property"]) for r in state.audit_rows() if r["outcome"] == "written")
    state.close()
    assert {rid for rid, _prop in rows} == set(modified), (
        "every write is audited, landed before the stop or not"
    )
    assert max(rows.values()) == 1


def test_a_207_parks_the_rejected_record_with_hubspots_message(demo, connector_env: Path, capsys) -> None:
    store, _ = demo
    options = store.properties["contacts"]["hs_lead_status"]["options"]
    store.properties["contacts"]["hs_lead_status"]["options"] = [o for o in options if o["value"] != "NEW"]
    assert run_cli("sync") == ExitCode.PARTIAL
    out = capsys.readouterr().out
    assert "NEW was not one of the allowed options" in out
    state = StateStore.open(f"sqlite:///{connector_env}")
    parked = state.failed_writes()
    state.close()
    assert parked, "rejected records are parked"
    assert all("NEW was not one of the allowed options" in p.error for p in parked)
    assert all(p.changes.get("hs_lead_status") == "NEW" for p in parked)
    written = written_ids(store)
    assert written, "the rest of each batch was written"
    assert not set(written) & {p.record_id for p in parked}
    assert any(r.status == 207 for r in store.writes())


def test_a_run_with_nothing_new_costs_one_search_and_one_events_call_per_type(demo, connector_env) -> None:
    store, _ = demo
    assert run_cli("sync") == 0
    store.requests.clear()
    assert run_cli("sync") == 0
    calls = Counter(r.path for r in store.requests)
    assert calls == {"/crm/v3/objects/contacts/search": 1, "/events/v3/events": 3}
