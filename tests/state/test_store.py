"""The state store on both backends (SQLite and PostgreSQL): identity, timeline dedup, write
bookkeeping, pointers, rollback, migrations, leases, the write journal, retries and forget."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect, text

from connector.errors import ConfigError, ExitCode, LeaseHeld, LeaseLost, SchemaBehind
from connector.model import Activity, Decision, RuleTrace, WriteIntent, WriteResult
from connector.state import migrations
from connector.state import schema as t
from connector.state.store import StateStore, StateUnavailable, TaskRow, normalize_url

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(state_url: str, clock: Clock) -> Iterator[StateStore]:
    s = StateStore.open(
        state_url, clock=clock, write_retry_limit=3, write_retry_backoff=timedelta(minutes=10)
    )
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


def intent(record_id: str = "1", person_id: str = "p1", **changes: str) -> WriteIntent:
    return WriteIntent(
        crm="hubspot",
        object_type="contacts",
        record_id=record_id,
        person_id=person_id,
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


def test_runs_are_listed_newest_first(store: StateStore, clock: Clock) -> None:
    first = store.start_run("sync")
    store.finish_run(first, "ok", {"written": 3})
    clock.advance(seconds=1)
    second = store.start_run("plan")
    runs = store.runs()
    assert [r.id for r in runs][:2] == [second, first]
    assert runs[1].counts == {"written": 3}
    assert runs[0].status == "running"


def test_an_unreachable_database_is_a_connection_failure_naming_the_setting() -> None:
    with pytest.raises(StateUnavailable, match="CONNECTOR_STATE_URL") as caught:
        StateStore.open("postgresql://nobody:hunter22@127.0.0.1:1/none")
    assert caught.value.exit_code == ExitCode.CONNECTION == 3
    assert "hunter22" not in caught.value.message  # the password is masked in the message


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        pytest.param("mysql://root@127.0.0.1/x", "not supported", id="unsupported-dialect"),
        pytest.param("nosuchdb://x/y", "CONNECTOR_STATE_URL", id="unknown-scheme"),
    ],
)
def test_a_bad_state_url_is_a_config_error(url: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as caught:
        StateStore.open(url)
    assert caught.value.exit_code == ExitCode.CONFIG


def test_postgres_urls_use_the_shipped_driver() -> None:
    assert normalize_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"


# --------------------------------------------------------------------------- migrations


def _engine(url: str):  # type: ignore[no-untyped-def]
    return StateStore._engine(url)


def test_a_new_database_is_created_at_the_newest_schema_version(store: StateStore) -> None:
    assert store.schema_version() == migrations.HEAD


def test_migrations_build_exactly_the_tables_the_store_uses(store: StateStore) -> None:
    """The numbered steps and schema.py must never drift apart."""
    found = inspect(store.engine)
    assert set(found.get_table_names()) == set(t.metadata.tables)
    for name, table in t.metadata.tables.items():
        columns = {c["name"]: c["nullable"] for c in found.get_columns(name)}
        assert columns == {c.name: c.nullable for c in table.columns}, name


def _make_v1_database(url: str) -> None:
    engine = _engine(url)
    with engine.begin() as conn:
        migrations.m001_initial.upgrade(conn)
        migrations._set_version(conn, 1)
        conn.execute(
            text(
                "INSERT INTO failed_writes (crm, object_type, record_id, person_id, changes_json, error, "
                "attempts, first_failed_at, last_failed_at, run_id) VALUES ('hubspot', 'contacts', '7', "
                "'p1', '{}', 'VALIDATION_ERROR', 1, :t, :t, 'r0')"
            ),
            {"t": T0},
        )
        conn.execute(text("INSERT INTO rr_pointers (pool, position) VALUES ('north_america', 2)"))
    engine.dispose()


def test_an_old_schema_is_refused_until_migrate_runs_then_kept(state_url: str, clock: Clock) -> None:
    _make_v1_database(state_url)
    with pytest.raises(SchemaBehind, match="connector migrate") as caught:
        StateStore.open(state_url)
    assert "version 1" in caught.value.message
    assert caught.value.exit_code == ExitCode.CONFIG

    report = StateStore.migrate(state_url)
    assert (report.before, report.after) == (1, migrations.HEAD)
    assert [m.version for m in report.applied] == list(range(2, migrations.HEAD + 1))
    again = StateStore.migrate(state_url)
    assert again.applied == []

    store = StateStore.open(state_url, clock=clock)
    try:
        [parked] = store.failed_writes()
        assert parked.record_id == "7"
        assert parked.next_attempt_at is not None  # old failures are due at the next run
        assert [f.record_id for f in store.due_failed_writes()] == ["7"]
        assert store.routing_pools()["north_america"].pointer == 2  # no rep loses their turn
    finally:
        store.close()


def test_migrate_creates_an_empty_database(state_url: str) -> None:
    report = StateStore.migrate(state_url)
    assert report.before is None
    assert report.after == migrations.HEAD


# --------------------------------------------------------------------------- leases


def test_a_lease_is_exclusive_until_released(store: StateStore) -> None:
    lease = store.acquire_lease("hubspot:default:contacts", "host-a:1", run_id="r1")
    with pytest.raises(LeaseHeld, match="host-a:1") as caught:
        store.acquire_lease("hubspot:default:contacts", "host-b:2")
    assert caught.value.exit_code == ExitCode.LEASE == 4
    other = store.acquire_lease("hubspot:default:companies", "host-b:2")  # another scope is free
    [a, b] = store.leases()
    assert (a.scope, a.holder) == ("hubspot:default:companies", "host-b:2")
    assert (b.scope, b.holder, b.run_id) == ("hubspot:default:contacts", "host-a:1", "r1")
    lease.release()
    other.release()
    assert store.leases() == []
    store.acquire_lease("hubspot:default:contacts", "host-b:2").release()


def test_an_expired_lease_is_taken_over_and_the_old_holder_is_fenced_off(
    store: StateStore, clock: Clock
) -> None:
    old = store.acquire_lease("s", "crashed", ttl=timedelta(minutes=10))
    clock.advance(minutes=9)
    old.renew()  # a live holder renews: the lease now runs to minute 19
    clock.advance(minutes=9)
    with pytest.raises(LeaseHeld):
        store.acquire_lease("s", "newcomer", ttl=timedelta(minutes=10))
    clock.advance(minutes=2)  # minute 20: expired
    new = store.acquire_lease("s", "newcomer", ttl=timedelta(minutes=10))
    assert new.generation == old.generation + 1
    with pytest.raises(LeaseLost):
        old.renew()
    old.release()  # a stale release must not free the newcomer's lease
    [row] = store.leases()
    assert row.holder == "newcomer"
    new.renew()


def test_a_lost_lease_rolls_back_the_page_it_fenced(store: StateStore, clock: Clock) -> None:
    lease = store.acquire_lease("s", "slow", ttl=timedelta(seconds=30))
    clock.advance(seconds=31)
    store.acquire_lease("s", "fast")

    def page() -> None:
        with store.transaction():
            store.set_cursor("hubspot:contacts", "999")
            lease.renew()

    with pytest.raises(LeaseLost):
        page()
    assert store.get_cursor("hubspot:contacts") is None


def test_only_one_of_many_concurrent_runs_gets_the_lease(state_url: str) -> None:
    StateStore.open(state_url).close()
    stores = [StateStore.open(state_url) for _ in range(6)]
    winners: list[str] = []
    losers: list[str] = []
    barrier = threading.Barrier(len(stores))

    def contend(i: int) -> None:
        barrier.wait()
        try:
            stores[i].acquire_lease("hubspot:default:contacts", f"worker-{i}")
            winners.append(f"worker-{i}")
        except LeaseHeld as exc:
            losers.append(exc.holder)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(len(stores))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    try:
        assert len(winners) == 1, (winners, losers)
        assert set(losers) == set(winners)  # every loser was told who holds it
        assert [r.holder for r in stores[0].leases()] == winners
    finally:
        for s in stores:
            s.close()


# --------------------------------------------------------------------------- journal


def test_a_journalled_write_is_settled_by_its_result(store: StateStore) -> None:
    sent = intent(lifecyclestage="lead")
    store.journal_sending("run1", [sent])
    assert [e.record_id for e in store.interrupted_writes()] == ["1"]
    store.record_write("run1", WriteResult(intent=sent, ok=True))
    assert store.interrupted_writes() == []
    assert [row["state"] for row in store.journal(run_id="run1")] == ["written"]


@pytest.mark.parametrize(
    ("current", "state", "remembered"),
    [
        pytest.param({"lifecyclestage": "lead", "hs_lead_status": "NEW"}, "written", True, id="landed"),
        pytest.param(
            {"lifecyclestage": "subscriber", "hs_lead_status": None}, "not_applied", False, id="lost"
        ),
        pytest.param(None, "gone", False, id="record-deleted"),
    ],
)
def test_an_interrupted_write_is_settled_from_what_the_crm_shows(
    store: StateStore, current: dict[str, str | None] | None, state: str, remembered: bool
) -> None:
    store.journal_sending("dead-run", [intent(lifecyclestage="lead", hs_lead_status="NEW")])
    [entry] = store.interrupted_writes()
    assert entry.changes == {"lifecyclestage": "lead", "hs_lead_status": "NEW"}
    assert store.settle_interrupted(entry, current, run_id="run2") == state
    assert store.interrupted_writes() == []
    last = store.last_written("hubspot", "contacts", ["1"])
    assert (last == {"1": {"lifecyclestage": "lead", "hs_lead_status": "NEW"}}) is remembered
    audited = store.audit_rows(run_id="dead-run")
    assert len(audited) == (2 if remembered else 0)
    assert all("interrupted" in r["reason"] for r in audited)


# --------------------------------------------------------------------------- retries


def test_failed_writes_back_off_exponentially_then_park(store: StateStore, clock: Clock) -> None:
    failing = WriteResult(
        intent=intent(hs_lead_status="BAD"), ok=False, error="VALIDATION_ERROR: bad", retryable=False
    )
    store.record_write("run1", failing)
    [f] = store.failed_writes()
    assert (f.attempts, f.next_attempt_at, f.parked) == (1, T0 + timedelta(minutes=10), False)
    assert store.due_failed_writes() == []
    clock.advance(minutes=10)
    assert [x.record_id for x in store.due_failed_writes()] == ["1"]
    store.record_write("run2", failing)
    [f] = store.failed_writes()
    assert (f.attempts, f.next_attempt_at) == (2, clock.now + timedelta(minutes=20))
    clock.advance(minutes=20)
    store.record_write("run3", failing)  # third failure = the limit (3): parked
    [f] = store.failed_writes()
    assert (f.attempts, f.parked, f.first_failed_at) == (3, True, T0)
    clock.advance(days=30)
    assert store.due_failed_writes() == []  # parked: later runs leave it alone
    assert [x.record_id for x in store.due_failed_writes(include_parked=True)] == ["1"]  # retry-failed
    assert store.clear_failed_write("hubspot", "contacts", "1") is True
    assert store.failed_writes() == []


def test_a_write_to_a_deleted_record_is_audited_not_parked(store: StateStore) -> None:
    gone = WriteResult(intent=intent(lifecyclestage="lead"), ok=False, error="OBJECT_NOT_FOUND: deleted")
    store.record_write("run1", gone, gone=True)
    assert store.failed_writes() == []
    [row] = store.audit_rows(run_id="run1")
    assert row["outcome"] == "gone"


# --------------------------------------------------------------------------- forget and bad text


def test_forget_erases_one_person_and_says_what_was_removed(store: StateStore) -> None:
    ana = store.resolve_person("hubspot", "contacts", "1", "ana@acme.example")
    bob = store.resolve_person("hubspot", "contacts", "2", "bob@acme.example")
    store.add_activities([activity(ana, "e1"), activity(ana, "e2"), activity(bob, "e3")])
    store.record_write("run1", WriteResult(intent=intent("1", person_id=ana, lifecyclestage="lead"), ok=True))
    store.save_snapshot(ana, {"title": "CTO"}, "lead", None, T0)
    store.record_stage(ana, "lead", T0)
    task = TaskRow(ana, "hubspot", "contacts", "1", "70000001", "{}")
    assert store.record_handoff(ana, "mql", "70000001", T0, [task])
    assert not store.record_handoff(ana, "mql", "70000001", T0, [task])  # once per person
    report = store.forget("ANA@acme.example ")
    assert report.removed["hand-offs"] == 1
    assert report.removed["follow-up task rows"] == 1
    assert store.handoffs([ana]) == {}
    assert report.removed["field snapshots"] == 1
    assert report.removed["stage entries"] == 1
    assert report.person_ids == [ana]
    assert report.removed["activities"] == 2
    assert report.removed["persons"] == 1
    assert report.removed["identities"] == 1
    assert report.removed["audit payloads"] == 1
    assert report.removed["last written values"] == 1
    assert store.find_person("ana@acme.example") is None
    assert store.timelines([ana])[ana] == []
    [row] = store.audit_rows(person_id=ana)
    assert (row["before"], row["after"]) == (None, None)
    assert [a.source_id for a in store.timelines([bob])[bob]] == ["e3"]  # nobody else touched
    assert store.forget("nobody@acme.example").found is False


def test_hostile_text_is_stored_on_both_backends(store: StateStore) -> None:
    odd = Activity(
        person_id="p1",
        type="page_view",
        occurred_at=T0,
        source="hubspot:events",
        source_id="nul",
        url="https://acme.example/\x00?q=" + "é" * 5000 + "\u202e\x07",
        name="form\x00name 🙂",
    )
    assert store.add_activities([odd]) == 1
    [back] = store.timelines(["p1"])["p1"]
    assert back.url is not None
    assert "\x00" not in back.url
    assert back.url.endswith("\u202e\x07")
    assert back.name == "form\ufffdname 🙂"


# --------------------------------------------------------------------------- snapshots and stage entries


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
