"""The criteria workflow against the demo portal: explain what is missing, the reason written to
HubSpot, and `simulate` of a stricter criteria file over the state a real sync left behind."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from connector.cli import main

pytestmark = pytest.mark.integration

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"


def run_cli(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_explain_on_a_non_mql_says_what_is_missing(demo, connector_env, capsys) -> None:
    _store, outcomes = demo
    assert run_cli("sync") == 0
    near = next(o for o in outcomes if o.persona == "near_miss_one_pricing_view")
    capsys.readouterr()
    assert run_cli("explain", near.email, "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["decision"]["stage"] in ("subscriber", "lead")
    pricing = next(g for g in data["next_stage"] if g["rule"] == "mql_pricing_interest")
    assert "pricing_views_30d >= 2" in pricing["failed_conditions"]
    assert any(
        m.startswith("needs 1 more pricing or solutions page visit in 30 days") for m in pricing["missing"]
    )
    assert run_cli("explain", near.email) == 0
    human = capsys.readouterr().out
    assert "What is missing for a higher stage" in human
    assert "needs 1 more pricing or solutions page visit in 30 days" in human


def test_the_reason_is_written_with_the_stage(demo, connector_env) -> None:
    store, outcomes = demo
    assert run_cli("sync") == 0
    cadence = next(o for o in outcomes if o.persona == "mql_cadence")
    reason = store.contacts[cadence.contact_id]["lifecycle_stage_reason"]
    assert reason is not None
    assert reason.startswith("mql by rule mql_cadence")
    assert "cadence_with_download_30d=3" in reason
    customer = next(o for o in outcomes if o.persona == "sales_owned_customer")
    assert store.contacts[customer.contact_id].get("lifecycle_stage_reason") is None, (
        "no stage change, no reason"
    )


def test_simulate_a_stricter_threshold_lists_who_drops_out(demo, connector_env, tmp_path, capsys) -> None:
    _store, outcomes = demo
    assert run_cli("sync") == 0
    stricter = tmp_path / "stricter.yaml"
    text = (MAPPINGS / "criteria.yaml").read_text(encoding="utf-8")
    old = "when: 'pricing_views_30d >= 2 && fit_score >= 45'"
    assert old in text
    stricter.write_text(
        text.replace(old, "when: 'pricing_views_30d >= 4 && fit_score >= 45'"), encoding="utf-8"
    )
    out = tmp_path / "effect.md"
    capsys.readouterr()
    assert run_cli("simulate", "--criteria", str(stricter), "--out", str(out)) == 0
    printed = capsys.readouterr().out
    assert "Nothing was written" in printed
    markdown = out.read_text(encoding="utf-8")
    cells = [
        [c.strip() for c in line.split("|")[1:-1]] for line in markdown.splitlines() if line.startswith("| ")
    ]
    counts = {row[0]: [int(row[1]), int(row[2])] for row in cells if len(row) == 4 and row[1].isdigit()}
    assert counts["mql"][1] < counts["mql"][0], markdown
    rows = list(csv.DictReader(out.with_suffix(".csv").read_text(encoding="utf-8").splitlines()))
    pricing_people = {o.email for o in outcomes if o.persona == "mql_pricing_interest"}
    dropped = {r["person"] for r in rows if r["current_stage"] == "mql"}
    assert pricing_people <= dropped
    assert all(r["current_rule"] == "mql_pricing_interest" for r in rows if r["person"] in pricing_people)
    assert "mql_pricing_interest" in markdown, "sample movers come with their reasons"


def test_simulate_history_replays_days_and_writes_nothing(demo, connector_env, tmp_path, capsys) -> None:
    assert run_cli("sync") == 0
    db = connector_env
    before = db.read_bytes()
    same = tmp_path / "same.yaml"
    shutil.copy(MAPPINGS / "criteria.yaml", same)
    capsys.readouterr()
    assert run_cli("simulate", "--criteria", str(same), "--history", "3") == 0
    printed = capsys.readouterr().out
    assert "No one would change stage." in printed
    assert "Stage counts per day" in printed
    assert db.read_bytes() == before


def test_a_quiet_unaccepted_mql_is_recycled_by_the_sweep_and_a_worked_one_is_not(demo, connector_env) -> None:
    """Nothing changes in the CRM for 60 days: the sweep re-reads MQLs decided long ago, and the
    recycle rule sends the unaccepted ones to nurture (BAD_TIMING) while a rep's IN_PROGRESS stays."""
    from datetime import timedelta

    from connector.cli import _engine

    store, outcomes = demo
    assert run_cli("sync") == 0
    with _engine(None) as engine:
        later = engine.clock() + timedelta(days=60)
        engine.clock = lambda: later
        engine.sync()
        # Two days on, nobody changed: only the sweep looks at the MQLs decided two days ago.
        engine.clock = lambda: later + timedelta(days=2)
        writes_before = len(store.writes())
        swept = engine.sync()
    assert swept.counts["recycle_checked"] > 0
    assert len(store.writes()) == writes_before, "re-deciding quiet people writes nothing new"
    quiet = [o for o in outcomes if o.persona in ("mql_pricing_interest", "forward_only_mql")]
    for o in quiet:
        props = store.contacts[o.contact_id]
        assert props["lifecyclestage"] == "marketingqualifiedlead", o
        assert props["hs_lead_status"] == "BAD_TIMING", o
    for o in (o for o in outcomes if o.persona == "manual_status_kept"):
        assert store.contacts[o.contact_id]["hs_lead_status"] == o.hs_lead_status
    with _engine(None) as engine:
        pid = engine.store.find_person(quiet[0].email)
        assert pid is not None
        decision = engine.store.decision(pid)
    assert decision is not None
    assert "recycled by mql_went_quiet" in decision.reason
