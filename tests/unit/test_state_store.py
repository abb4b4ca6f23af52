"""The state store on SQLite: identity, timeline dedup, write bookkeeping, pointers, rollback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connector.errors import ConfigError
from connector.model import Activity, Decision, RuleTrace, WriteIntent, WriteResult
from connector.state.store import StateStore

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    s = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    yield s
    s.close()


def activity(pid: str, source_id: str, days: int = 0) -> Activity:
    return Activity(
        person_id=pid,
        type="page_view",
        occurred_at=T0 - timedelta(days=days),
        source="hubspot:events",
        source_id=source_id,
        url="https://acme.example/pricing",
    )


def intent(record_id: str = "1", **changes: str) -> WriteIntent:
    return WriteIntent(
        crm="hubspot",
        object_type="contacts",
        record_id=record_id,
        person_id="p1",
        changes=changes,
        before={k: "old" for k in changes},
        reason="mql by rule x",
    )


def test_cursor_roundtrip_and_update(store: StateStore) -> None:
    assert store.get_cursor("hubspot:contacts") is None
    store.set_cursor("hubspot:contacts", "100")
    store.set_cursor("hubspot:contacts", "200")
    assert store.get_cursor("hubspot:contacts") == "200"
    assert store.cursors() == {"hubspot:contacts": "200"}


def test_a_record_keeps_its_person_and_a_new_record_with_the_same_email_joins_it(store: StateStore) -> None:
    a = store.resolve_person("hubspot", "contacts", "1", "ana@acme.example")
    assert store.resolve_person("hubspot", "contacts", "1", "ana@acme.example") == a
    assert store.resolve_person("salesforce", "Lead", "00Q1", "ana@acme.example") == a
    b = store.resolve_person("hubspot", "contacts", "2", None)
    assert b != a
    assert store.find_person("ana@acme.example") == a
    assert store.find_person("00Q1") == a
    assert store.find_person(a) == a
    assert sorted(store.records_of(a)) == [("hubspot", "contacts", "1"), ("salesforce", "Lead", "00Q1")]


def test_activities_are_deduplicated_by_source_id(store: StateStore) -> None:
    assert store.add_activities([activity("p1", "e1"), activity("p1", "e2", days=2)]) == 2
    assert store.add_activities([activity("p1", "e1"), activity("p1", "e3", days=1)]) == 1
    timeline = store.timelines(["p1", "p2"])
    assert [a.source_id for a in timeline["p1"]] == ["e2", "e3", "e1"]  # oldest first
    assert timeline["p2"] == []
    assert timeline["p1"][0].occurred_at.tzinfo is not None


def test_a_successful_write_is_audited_and_remembered(store: StateStore) -> None:
    store.record_write(
        "run1", WriteResult(intent=intent(lifecyclestage="lead", hs_lead_status="NEW"), ok=True)
    )
    assert store.last_written("hubspot", "contacts", ["1"]) == {
        "1": {"lifecyclestage": "lead", "hs_lead_status": "NEW"}
    }
    rows = store.audit_rows(run_id="run1")
    assert {(r["property"], r["before"], r["after"], r["outcome"]) for r in rows} == {
        ("lifecyclestage", "old", "lead", "written"),
        ("hs_lead_status", "old", "NEW", "written"),
    }
    assert all(r["reason"] == "mql by rule x" for r in rows)


def test_a_failed_write_is_parked_counted_and_cleared_by_a_later_success(store: StateStore) -> None:
    failing = WriteResult(intent=intent(hs_lead_status="BAD"), ok=False, error="VALIDATION_ERROR: bad value")
    store.record_write("run1", failing)
    store.record_write("run2", failing)
    [parked] = store.failed_writes()
    assert parked.attempts == 2
    assert parked.error == "VALIDATION_ERROR: bad value"
    assert parked.changes == {"hs_lead_status": "BAD"}
    assert store.last_written("hubspot", "contacts", ["1"]) == {}
    store.record_write("run3", WriteResult(intent=intent(hs_lead_status="NEW"), ok=True))
    assert store.failed_writes() == []


def test_pointers_persist(store: StateStore) -> None:
    store.set_pointer("emea", 1)
    store.set_pointer("emea", 0)
    store.set_pointer("na", 2)
    assert store.pointers() == {"emea": 0, "na": 2}


def test_decisions_keep_the_criteria_version_and_trace(store: StateStore) -> None:
    decision = Decision(
        person_id="p1",
        evaluated_at=T0,
        criteria_version="abc123",
        stage="mql",
        computed_stage="mql",
        lead_status="new",
        fit_score=60,
        fit_grade="B",
        signals={"pricing_views_30d": 3},
        trace=(RuleTrace(kind="stage", name="mql_pricing", expression="x", matched=True, values={"x": 3}),),
        reason="mql by rule mql_pricing",
    )
    store.save_decision("run1", decision)
    stored = store.decision("p1")
    assert stored is not None
    assert stored.criteria_version == "abc123"
    assert stored.trace[0]["name"] == "mql_pricing"
    assert store.stage_counts() == {"mql": 1}


def test_rollback_scope_leaves_nothing_behind(store: StateStore) -> None:
    with store.rollback_scope():
        store.set_cursor("c", "1")
        store.resolve_person("hubspot", "contacts", "9", "x@y.example")
        assert store.get_cursor("c") == "1"  # visible inside the scope
    assert store.get_cursor("c") is None
    assert store.find_person("x@y.example") is None


def test_runs_are_listed_newest_first(store: StateStore) -> None:
    first = store.start_run("sync")
    store.finish_run(first, "ok", {"written": 3})
    second = store.start_run("plan")
    runs = store.runs()
    assert [r.id for r in runs][:2] == [second, first]
    assert runs[1].counts == {"written": 3}
    assert runs[0].status == "running"


def test_an_unreachable_database_is_a_config_error_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match="CONNECTOR_STATE_URL"):
        StateStore.open("postgresql://nobody@127.0.0.1:1/none")


def _decided(pid: str, stage: str, at: datetime) -> Decision:
    return Decision(
        person_id=pid, evaluated_at=at, criteria_version="v", stage=stage, computed_stage=stage,
        lead_status=None, fit_score=0, fit_grade="D", signals={}, trace=(), reason="r",
    )  # fmt: skip


def test_stage_entries_keep_the_first_moment_at_a_stage(store: StateStore) -> None:
    store.record_stage("p1", "lead", T0)
    store.record_stage("p1", "mql", T0 + timedelta(days=1))
    store.record_stage("p1", "mql", T0 + timedelta(days=5))
    assert store.stage_entered(["p1", "p2"]) == {"p1": ("mql", T0 + timedelta(days=1))}


def test_stale_at_stage_finds_quiet_hand_offs(store: StateStore) -> None:
    run = store.start_run("sync")
    store.save_decision(run, _decided("p1", "mql", T0))
    store.save_decision(run, _decided("p2", "mql", T0 + timedelta(days=3)))
    store.save_decision(run, _decided("p3", "lead", T0))
    assert store.stale_at_stage(["mql"], T0 + timedelta(days=1)) == ["p1"]
    assert store.stale_at_stage(["mql", "lead"], T0 + timedelta(days=4)) == ["p1", "p2", "p3"]


def test_simulation_people_stream_snapshots_with_timelines_in_batches(store: StateStore) -> None:
    for n in range(5):
        pid = store.resolve_person("hubspot", "contacts", str(n), f"p{n}@acme.com")
        store.add_activities([activity(pid, f"s{n}-{k}", days=k) for k in range(n)])
        store.save_snapshot(pid, {"title": f"T{n}", "employees": n}, "lead" if n else None, "new", T0)
    store.record_stage(store.find_person("p4@acme.com") or "", "lead", T0)
    batches = list(store.simulation_people(batch=2))
    assert [len(b) for b in batches] == [2, 2, 1]
    rows = {email: (fields, stage, status, entered, len(timeline)) for b in batches
            for _pid, email, fields, stage, status, entered, timeline in b}  # fmt: skip
    assert rows["p4@acme.com"] == ({"title": "T4", "employees": 4}, "lead", "new", T0, 4)
    assert rows["p0@acme.com"][1:] == (None, "new", None, 0)
    assert store.count_snapshots() == 5
