"""Full passes over real HTTP: the CLI, the real HubSpot SDK and the emulator on 127.0.0.1."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from connector.cli import main
from connector.demo import check_expected
from connector.sandbox.demo_data import ENTERPRISE_POOL

pytestmark = pytest.mark.integration


def run_cli(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_sync_reaches_the_expected_stage_and_owner_for_every_persona(demo, connector_env, capsys) -> None:
    store, outcomes = demo
    assert run_cli("sync") == 0
    mismatches = check_expected(store, outcomes)
    assert [
        f"{m.outcome.email} {m.outcome.persona} {m.field}: {m.expected} != {m.actual}" for m in mismatches
    ] == []
    out = capsys.readouterr().out
    assert "records written" in out
    assert "Owners assigned" in out


def test_round_robin_is_fair_within_each_pool(demo, connector_env) -> None:
    store, outcomes = demo
    assert run_cli("sync") == 0
    by_pool: dict[tuple[str, ...], Counter[str]] = {}
    for o in outcomes:
        if o.owner_pool:
            owner = store.contacts[o.contact_id]["hubspot_owner_id"]
            by_pool.setdefault(o.owner_pool, Counter())[str(owner)] += 1
    assert by_pool, "the demo data must route some people through a pool"
    for pool, counts in by_pool.items():
        assert set(counts) <= set(pool)
        if pool == ENTERPRISE_POOL:  # weighted 2:1 (routing.yaml): the heavier rep leads
            assert counts[pool[0]] >= counts[pool[1]], counts
        elif sum(counts.values()) >= len(pool):
            assert max(counts.values()) - min(counts[m] for m in pool) <= 1, (pool, counts)


def test_second_sync_sends_no_write_requests(demo, connector_env) -> None:
    store, _ = demo
    assert run_cli("sync") == 0
    first = len(store.writes())
    assert first > 0
    assert run_cli("sync") == 0
    assert len(store.writes()) == first
    assert store.requests[-1].path  # the second run did talk to HubSpot (it re-read contacts)


def test_plan_writes_nothing_to_the_crm_or_the_state(demo, connector_env: Path, capsys) -> None:
    store, _ = demo
    assert run_cli("plan", "--json") == 0
    planned = json.loads(capsys.readouterr().out)
    assert planned["changes"], "a fresh demo portal has changes to plan"
    assert store.writes() == []
    # the state database holds no cursor, decision or run from the plan
    assert run_cli("status") == 0
    status = capsys.readouterr().out
    assert "hubspot:contacts" not in status
    # and sync then writes exactly what plan announced
    assert run_cli("sync") == 0
    updates = store.record_writes()  # not the follow-up task creates
    written = {item["id"] for r in updates for item in r.body["inputs"]}
    assert written == {c["record_id"] for c in planned["changes"]}


def test_plan_after_sync_is_empty(demo, connector_env, capsys) -> None:
    assert run_cli("sync") == 0
    capsys.readouterr()
    assert run_cli("plan", "--json") == 0
    assert json.loads(capsys.readouterr().out)["changes"] == []


def test_explain_names_the_rule_and_the_values_it_read(demo, connector_env, capsys) -> None:
    store, outcomes = demo
    assert run_cli("sync") == 0
    mql = next(o for o in outcomes if o.persona.startswith("mql_") and o.owner_pool)
    capsys.readouterr()
    assert run_cli("explain", mql.email, "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["decision"]["stage"] == "mql"
    fired = [t for t in data["decision"]["trace"] if t["kind"] == "stage" and t["matched"]]
    assert fired
    assert fired[0]["name"].startswith("mql_")
    assert fired[0]["values"], "the trace records the values the rule read"
    assert data["routing"]["owner_id"] == store.contacts[mql.contact_id]["hubspot_owner_id"]
    assert data["stored_decision"]["criteria_version"] == data["decision"]["criteria_version"]
    assert run_cli("explain", mql.email) == 0
    human = capsys.readouterr().out
    assert fired[0]["name"] in human
    assert "Why:" in human


def test_explain_unknown_person_exits_2(connector_env, capsys) -> None:
    assert run_cli("explain", "nobody@nowhere.example") == 2
    assert "No contact found" in capsys.readouterr().err


def test_audit_log_records_every_write_with_before_after_and_reason(demo, connector_env) -> None:
    from connector.state.store import StateStore

    store, _ = demo
    assert run_cli("sync") == 0
    state = StateStore.open(f"sqlite:///{connector_env}")
    rows = state.audit_rows()
    state.close()
    sent = sum(len(i["properties"]) for r in store.record_writes() for i in r.body["inputs"])
    assert len(rows) == sent
    assert all(r["outcome"] == "written" and r["reason"] for r in rows)
    stage_rows = [r for r in rows if r["property"] == "lifecyclestage"]
    assert any(r["before"] != r["after"] for r in stage_rows)


def test_a_backfill_writes_each_contact_at_most_once(demo, connector_env) -> None:
    """Activity feeds are read before contacts are decided, so no interim stage is ever written."""
    store, _ = demo
    assert run_cli("sync") == 0
    written = Counter(i["id"] for r in store.record_writes() for i in r.body["inputs"])
    assert written
    assert max(written.values()) == 1


def test_new_web_activity_alone_promotes_a_person_on_the_next_run(demo, connector_env, monkeypatch) -> None:
    """A contact whose record did not change but who visited pricing pages is still re-decided."""
    from datetime import UTC, datetime, timedelta

    from connector.sandbox.hubspot_store import hs_datetime

    store, outcomes = demo
    monkeypatch.setenv("CONNECTOR_HUBSPOT_SEARCH_LAG", "0")
    assert run_cli("sync") == 0
    target = next(o for o in outcomes if o.persona == "subscriber_newsletter")
    assert store.contacts[target.contact_id]["lifecyclestage"] == "subscriber"
    before = store.contacts[target.contact_id]["lastmodifieddate"]
    now = datetime.now(UTC)
    for i in range(6):  # pricing and solution pages, a demo request: enough for sql_hand_raise or an MQL rule
        store.events.append({
            "id": f"late-{i}", "eventType": "e_visited_page", "objectType": "contact",
            "objectId": target.contact_id, "occurredAt": hs_datetime(now - timedelta(minutes=30 - i)),
            "properties": {"hs_url": "https://www.example.com/pricing"},
        })  # fmt: skip
    assert store.contacts[target.contact_id]["lastmodifieddate"] == before
    assert run_cli("sync") == 0
    stage = store.contacts[target.contact_id]["lifecyclestage"]
    assert stage != "subscriber", "the new page views were evaluated without any contact change"


def test_people_marked_by_an_interrupted_run_are_decided_by_the_next(demo, connector_env) -> None:
    """The activity feed's cursor commits with its 'to evaluate' marks: stopping right after it
    must not lose those people."""
    from connector.cli import _engine

    store, outcomes = demo
    with _engine(None) as engine:
        report = engine.sync(should_stop=lambda: True)  # stop after the first page (an activity page)
        assert report.stopped
        assert store.writes() == []
        assert engine.store.pending("hubspot", limit=1000)
    assert run_cli("sync") == 0
    from connector.demo import check_expected

    assert check_expected(store, outcomes) == []
