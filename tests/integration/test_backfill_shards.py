"""`connector backfill --shard I/N`: N processes on one PostgreSQL state split a backfill.

Four shard processes run at once against one HubSpot emulator and one PostgreSQL schema; a single
process backfills an identical portal into another schema. Every person must be decided by
exactly one shard, and the CRM and the state must end as after the single-process backfill —
stages, lead statuses and decisions equal; owners from the same pool (round-robin turns are per
shard, so which member of a pool a person gets can differ, never the pool).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import _PG_UNAVAILABLE, MAPPINGS, _pg_schema_url
from sqlalchemy import select

from connector.crm import hubspot as hubspot_module
from connector.demo import check_expected
from connector.engine import Engine
from connector.lifecycle.sharding import Shard
from connector.mapping.loader import load_mappings
from connector.sandbox.demo_data import build_demo_portal
from connector.sandbox.hubspot_app import HubSpotEmulator
from connector.sandbox.server import serve_in_thread
from connector.state import schema as t
from connector.state.store import StateStore

pytestmark = pytest.mark.integration
SHARDS = 4
SINCE = "2000-01-01"
PEOPLE = 160  # the demo's personas (154) and a few filler people: every shape, in seconds


@pytest.fixture
def pg_urls(pg_database: str | None) -> Iterator[tuple[str, str]]:
    """Two fresh PostgreSQL schemas: the sharded backfill's and the single process's."""
    if pg_database is None:
        pytest.skip(_PG_UNAVAILABLE[0] if _PG_UNAVAILABLE else "no PostgreSQL server reachable")
    sharded = _pg_schema_url(pg_database)
    single = _pg_schema_url(pg_database)
    yield next(sharded), next(single)
    for gen in (sharded, single):
        next(gen, None)


def backfill(url: str, token: str, state_url: str, shard: str, cwd: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
    env.update(
        CONNECTOR_HUBSPOT_BASE_URL=url,
        CONNECTOR_HUBSPOT_TOKEN=token,
        CONNECTOR_STATE_URL=state_url,
        CONNECTOR_MAPPINGS_DIR=str(MAPPINGS),
        CONNECTOR_HUBSPOT_SEARCH_LAG="0",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "connector", "--log-format", "json", "backfill", "--since", SINCE,
         "--shard", shard],
        env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=240)
    return proc.returncode, out, err


def state_of(state_url: str) -> dict[str, Any]:
    store = StateStore.open(state_url)
    try:
        with store.engine.connect() as c:
            decisions = {
                r.email: (r.stage, r.lead_status, r.fit_score, r.disqualified_by, r.run_id)
                for r in c.execute(
                    select(t.decisions, t.persons.c.email).join(
                        t.persons, t.persons.c.id == t.decisions.c.person_id
                    )
                )
            }
            audit = Counter((r.record_id, r.property) for r in c.execute(select(t.audit)))
        runs = [r for r in store.runs(20) if r.command == "backfill"]
        shards = store.backfill_shards()
    finally:
        store.close()
    return {"decisions": decisions, "audit": audit, "runs": runs, "shards": shards}


def test_four_shards_decide_everyone_once_and_match_one_process(
    pg_urls: tuple[str, str], tmp_path: Path
) -> None:
    sharded_url, single_url = pg_urls
    now = datetime.now(UTC)
    portal, expected = build_demo_portal(now, seed=7, people=PEOPLE)
    twin, twin_expected = build_demo_portal(now, seed=7, people=PEOPLE)
    with serve_in_thread(HubSpotEmulator(portal)) as server, serve_in_thread(HubSpotEmulator(twin)) as single:
        procs = [
            backfill(server.url, portal.access_token, sharded_url, f"{i}/{SHARDS}", tmp_path)
            for i in range(SHARDS)
        ]
        procs.append(backfill(single.url, twin.access_token, single_url, "0/1", tmp_path))
        results = [finish(p) for p in procs]
    for code, _out, err in results:
        assert code == 0, err[-2000:]

    # the CRM: every contact as the demo's ground truth says, and as the single process left its twin
    assert check_expected(portal, expected) == []
    assert check_expected(twin, twin_expected) == []
    for cid, props in portal.contacts.items():
        other = twin.contacts[cid]
        for prop in ("lifecyclestage", "hs_lead_status"):
            assert props.get(prop) == other.get(prop), (cid, prop)
    assert sorted(portal.contacts) == sorted(twin.contacts)

    sharded, alone = state_of(sharded_url), state_of(single_url)
    # every person decided exactly once: the shards' runs read each contact once between them
    runs = sharded["runs"]
    assert len(runs) == SHARDS
    assert all(r.status == "ok" for r in runs)
    per_run = [r.counts.get("records_read", 0) for r in runs]
    assert sum(per_run) == len(portal.contacts)
    assert all(n > 0 for n in per_run), per_run  # each shard had a share
    assert [(s["shard"], s["status"]) for s in sharded["shards"]] == [(i, "done") for i in range(SHARDS)]
    assert sum(s["records"] for s in sharded["shards"]) == len(portal.contacts)
    assert {d[-1] for d in sharded["decisions"].values()} == {r.id for r in runs}
    # and nothing written twice: one audit row per record and property, the same ones as alone
    assert max(sharded["audit"].values()) == 1
    assert set(sharded["audit"]) == set(alone["audit"])
    # the state: the same decisions
    strip = {email: d[:-1] for email, d in sharded["decisions"].items()}
    assert strip == {email: d[:-1] for email, d in alone["decisions"].items()}


@pytest.fixture
def demo(now: datetime):  # type: ignore[no-untyped-def]
    """The shared demo fixture's portal with 300 people: more than one search page (200), so a
    shard stopped after its first page has a page left to resume."""
    return build_demo_portal(now, seed=7, people=300)


def test_a_stopped_shard_resumes_where_it_stopped(
    demo, hubspot_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """Shard 1/2 stopped after its first page resumes from its own cursor: nobody is read twice,
    and its lease and cursors are its own (the other shard's scope is untouched)."""
    from connector.crm.factory import build_adapters
    from connector.settings import load_settings

    portal, _expected = demo
    monkeypatch.setattr(hubspot_module, "ASSOC_BATCH_LIMIT", 250)  # a page per search call
    monkeypatch.setenv("CONNECTOR_HUBSPOT_BASE_URL", hubspot_server.url)
    monkeypatch.setenv("CONNECTOR_HUBSPOT_TOKEN", portal.access_token)
    monkeypatch.setenv("CONNECTOR_HUBSPOT_SEARCH_LAG", "0")
    settings = load_settings(mappings_dir=MAPPINGS)
    mappings = load_mappings(MAPPINGS)
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    since = datetime(2000, 1, 1, tzinfo=UTC)
    shard = Shard(1, 2)
    seen: list[tuple[int, int | None]] = []
    try:
        engine = Engine(mappings, store, build_adapters(settings, mappings))
        first = engine.backfill(
            since=since,
            shard=shard,
            should_stop=lambda: bool(seen),  # after the first record page
            progress=lambda n, total: seen.append((n, total)),
        )
        assert first.stopped
        assert len(seen) == 1
        assert seen[0][1] == len(portal.contacts)  # HubSpot search's total
        cursors = store.cursors()
        assert [s for s in cursors if s.startswith("backfill:")] == [
            s for s in cursors if s.startswith(f"backfill:20000101T000000Z-open-2:{shard}:")
        ]
        assert store.leases() == []  # released on stop
        engine = Engine(mappings, store, build_adapters(settings, mappings))
        second = engine.backfill(since=since, shard=shard)
        assert not second.stopped
        assert first.counts["records_read"] > 0
        assert second.counts["records_read"] > 0
        row = store.backfill_shards()[0]
        mine = first.counts["records_read"] + second.counts["records_read"]
        assert (row["shard"], row["status"], row["records"]) == (1, "done", mine)
        other = Engine(mappings, store, build_adapters(settings, mappings)).backfill(
            since=since, shard=Shard(0, 2)
        )
        assert mine + other.counts["records_read"] == len(portal.contacts)
    finally:
        store.close()


def test_until_is_fixed_by_the_first_shard_and_never_reaches_now(tmp_path: Path) -> None:
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        since = datetime(2024, 1, 1, tzinfo=UTC)
        start = datetime(2025, 1, 1, tzinfo=UTC)
        first = store.backfill(since, None, 4, start)
        later = store.backfill(since, None, 4, start + timedelta(minutes=5))
        assert first == later
        assert first.until == start
        future = store.backfill(since, start + timedelta(days=30), 4, start)
        assert future.until == start
        assert future.id != first.id
    finally:
        store.close()


def run_cli(*args: str) -> int:
    from connector.cli import main

    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shard", "4/4"], "--shard '4/4'"),
        (["--shard", "two"], "expected I/N"),
        (["--until", "1999-01-01"], "must be after --since"),
        (["--until", "yesterday"], "expected a date like 2024-01-31"),
    ],
)
def test_bad_backfill_arguments_stop_with_exit_2_and_say_why(
    connector_env: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert run_cli("backfill", "--since", SINCE, *args) == 2
    assert message in capsys.readouterr().err
    # nothing was written to the CRM or decided
    store = StateStore.open(f"sqlite:///{connector_env}")
    try:
        assert store.stage_counts() == {}
    finally:
        store.close()


def test_backfill_cli_exports_metrics_and_status_shows_the_shard(
    connector_env: Path,
    demo,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # type: ignore[no-untyped-def]
    import json

    portal, expected = demo
    monkeypatch.setenv("CONNECTOR_HUBSPOT_SEARCH_LAG", "0")
    target = tmp_path / "backfill.prom"
    assert run_cli("backfill", "--since", SINCE, "--metrics-file", str(target)) == 0
    assert check_expected(portal, expected) == []
    text = target.read_text()
    assert 'connector_runs_total{status="ok"} 1.0' in text
    assert f'connector_records_read_total{{crm="hubspot"}} {float(len(portal.contacts))}' in text
    assert "Backfill shard 0/1" in capsys.readouterr().out  # the run summary, titled
    assert run_cli("status", "--json") == 0
    status = json.loads(capsys.readouterr().out)
    [shard] = status["backfill_shards"]
    assert (shard["shard"], shard["status"], shard["records"]) == (0, "done", len(portal.contacts))
    assert status["runs"][0]["command"] == "backfill"


def test_two_processes_with_the_same_shard_index_never_run_together(
    connector_env: Path, demo, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    portal, _expected = demo
    monkeypatch.setenv("CONNECTOR_HUBSPOT_SEARCH_LAG", "0")
    store = StateStore.open(f"sqlite:///{connector_env}")
    try:
        job = store.backfill(datetime(2000, 1, 1, tzinfo=UTC), None, 2, datetime.now(UTC))
        store.acquire_lease(f"backfill:{job.id}:1/2", "another-pod:1")  # shard 1/2 runs elsewhere
    finally:
        store.close()
    assert run_cli("backfill", "--since", SINCE, "--shard", "1/2") == 4
    assert "another-pod:1" in capsys.readouterr().err
    assert portal.writes() == []
    assert run_cli("backfill", "--since", SINCE, "--shard", "0/2") == 0  # the other index is free
    assert portal.writes() != []
