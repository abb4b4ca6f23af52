"""Routing through the engine and the HubSpot emulator: a refused owner write keeps its claimed turn
(the retry writes the same rep, no second turn), skips are logged once per run, `explain` shows the
path, `forget` erases the assignment, and the named-account rule reads HubSpot companies."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.crm.factory import build_adapters
from connector.engine import Engine
from connector.mapping.loader import load_mappings
from connector.report import explain_json
from connector.sandbox.demo_data import ANA, GRACE, ExpectedOutcome
from connector.sandbox.hubspot_store import HubSpotStore
from connector.settings import Settings
from connector.state.store import StateStore

pytestmark = pytest.mark.integration

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"


@pytest.fixture
def engine(demo, hubspot_server, tmp_path: Path) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    store, _ = demo
    settings = Settings(
        hubspot_base_url=hubspot_server.url,
        hubspot_token=store.access_token,
        state_url=f"sqlite:///{tmp_path / 'state.db'}",
        mappings_dir=MAPPINGS,
        hubspot_search_lag=0,
    )
    mappings = load_mappings(MAPPINGS)
    state = StateStore.open(settings.state_url)
    try:
        yield Engine(mappings, state, build_adapters(settings, mappings))
    finally:
        state.close()


def _set_archived(store: HubSpotStore, owner_id: str, archived: bool) -> None:
    for owner in store.owners:
        if owner["id"] == owner_id:
            owner["archived"] = archived


def test_a_refused_owner_write_keeps_its_turn_and_the_retry_writes_the_same_rep(
    engine: Engine, demo: tuple[HubSpotStore, list[ExpectedOutcome]], hubspot_server
) -> None:  # type: ignore[no-untyped-def]
    store, _ = demo
    # Ana leaves between the run's owner read and its first write: HubSpot refuses her as owner.
    hubspot_server.emulator.before(
        lambda _body: _set_archived(store, ANA, True),
        path_prefix="/crm/v3/objects/contacts/batch/update",
        method="POST",
    )
    first = engine.sync()
    refused = [f for f in first.failures if f.intent.changes.get("hubspot_owner_id") == ANA]
    assert refused, "the demo routes some people to Ana"
    counts = engine.store.routing_counts()
    for failure in refused:
        assignment = engine.store.assignment(failure.intent.person_id)
        assert assignment is not None
        assert assignment.rep == "ana"  # the turn stays claimed while the write is parked
    with store.lock:
        _set_archived(store, ANA, False)  # she is back (an admin restored her seat)
    engine.sync(command="retry-failed")
    for failure in refused:
        assert store.contacts[failure.intent.record_id]["hubspot_owner_id"] == ANA
    assert engine.store.routing_counts() == counts  # no second turn for anyone


def test_skips_are_logged_once_per_run_and_explain_shows_the_path(
    engine: Engine,
    demo: tuple[HubSpotStore, list[ExpectedOutcome]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, outcomes = demo
    account = next(o for o in outcomes if o.persona == "account_owner_by_domain")
    planned = engine.sync(dry_run=True)  # `plan`: the same pass, rolled back
    result = next(p for p in planned.planned if p.record.record_id == account.contact_id)
    data = explain_json(result, None)["routing"]
    assert data["owner_id"] == GRACE, data["path"]
    assert data["rule"] == "named_accounts"
    assert any("company domain globexcorp.com" in line for line in data["path"])
    assert engine.store.routing_counts() == {}  # the plan's pool turns were rolled back

    with caplog.at_level(logging.INFO, logger="connector.engine"):
        report = engine.sync()
    skipped = [r for r in caplog.records if getattr(r, "event", "") == "routing.skipped"]
    why = "archived in hubspot (owner 70000003)"
    assert [(r.rep, r.why) for r in skipped] == [("chloe", why)]  # type: ignore[attr-defined]
    assert skipped[0].people == report.routing_skips[("chloe", why)] > 1  # type: ignore[attr-defined]

    pooled = next(o for o in outcomes if o.persona == "segment_enterprise")
    path = explain_json(engine.explain(pooled.email), None)["routing"]  # type: ignore[arg-type]
    assert path["rule"] is None  # kept: the sync wrote the owner
    assert "kept current owner" in path["path"][0]


def test_forget_erases_the_assignment(
    engine: Engine, demo: tuple[HubSpotStore, list[ExpectedOutcome]]
) -> None:
    _, outcomes = demo
    engine.sync()
    pooled = next(o for o in outcomes if o.owner_pool)
    pid = engine.store.find_person(pooled.email)
    assert pid is not None
    assert engine.store.assignment(pid) is not None
    report = engine.store.forget(pooled.email)
    assert report.removed["routing assignments"] == 1
    assert engine.store.assignment(pid) is None
