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


def _backward_mappings(tmp_path: Path, *, hubspot_allows: bool) -> Path:
    """The shipped mappings with `allow_backward_moves` and `move_stage_to: lead` on the recycle
    rule (its example updated), and hubspot.yaml's `stage.allow_backwards` as given."""
    folder = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, folder)
    criteria = (folder / "criteria.yaml").read_text(encoding="utf-8")
    rule_tail = '    lead_status: nurture\n    description: "MQL for 30+ days'
    assert criteria.count(rule_tail) == 1
    criteria = criteria.replace(
        rule_tail, rule_tail.replace("nurture\n", "nurture\n    move_stage_to: lead\n")
    )
    criteria = criteria.replace("allow_backward_moves: false\n", "allow_backward_moves: true\n")
    (folder / "criteria.yaml").write_text(criteria, encoding="utf-8")
    examples = (folder / "criteria.examples.yaml").read_text(encoding="utf-8")
    old = "expect: {stage: mql, recycled_by: mql_went_quiet, lead_status: nurture}"
    assert examples.count(old) == 1
    new = (
        "expect: {stage: lead, recycled_by: mql_went_quiet, moved_back_by: mql_went_quiet, "
        "lead_status: nurture}"
    )
    (folder / "criteria.examples.yaml").write_text(examples.replace(old, new), encoding="utf-8")
    if hubspot_allows:
        hubspot = (folder / "hubspot.yaml").read_text(encoding="utf-8")
        assert hubspot.count("  # allow_backwards: true\n") == 1
        (folder / "hubspot.yaml").write_text(
            hubspot.replace("  # allow_backwards: true\n", "  allow_backwards: true\n")
        )
    return folder


def test_with_both_switches_a_quiet_mql_is_moved_back_to_lead_cleared_then_set(
    demo, connector_env, tmp_path, monkeypatch
) -> None:
    """allow_backward_moves + `move_stage_to: lead` in criteria.yaml and `stage.allow_backwards` in
    hubspot.yaml: 60 quiet days later the unaccepted MQLs go back to lead. HubSpot only moves
    lifecyclestage forward, so each is cleared (with the nurture status) in one batch update, set
    to lead (with the reason) in a second, then read back; a worked MQL and a customer stay."""
    from datetime import timedelta

    from connector.cli import _engine

    store, outcomes = demo
    folder = _backward_mappings(tmp_path, hubspot_allows=True)
    monkeypatch.setenv("CONNECTOR_MAPPINGS_DIR", str(folder))

    assert run_cli("sync") == 0
    quiet = [o for o in outcomes if o.persona in ("mql_pricing_interest", "forward_only_mql")]
    assert quiet
    assert all(store.contacts[o.contact_id]["lifecyclestage"] == "marketingqualifiedlead" for o in quiet)
    first_request = len(store.requests)
    with _engine(None) as engine:
        later = engine.clock() + timedelta(days=60)
        engine.clock = lambda: later
        engine.sync()
    ids = {o.contact_id for o in quiet}
    sent = [
        (r.path.rsplit("/", 1)[-1], item["id"], item.get("properties", {}))
        for r in store.requests[first_request:]
        if "/objects/contacts/batch/" in r.path and isinstance(r.body, dict)
        for item in r.body.get("inputs", [])
        if item.get("id") in ids
    ]
    for o in quiet:
        props = store.contacts[o.contact_id]
        assert (props["lifecyclestage"], props["hs_lead_status"]) == ("lead", "BAD_TIMING"), o
        assert props["lifecycle_stage_reason"].startswith("lead (moved back from mql to lead by recycle rule")
        mine = [(kind, p) for kind, rid, p in sent if rid == o.contact_id]
        assert [kind for kind, _p in mine] == ["update", "update", "read"], mine
        assert mine[0][1] == {"lifecyclestage": "", "hs_lead_status": "BAD_TIMING"}
        assert sorted(mine[1][1]) == ["lifecycle_stage_reason", "lifecyclestage"]
        assert mine[1][1]["lifecyclestage"] == "lead"
    for o in (o for o in outcomes if o.persona == "manual_status_kept"):  # a rep works them: accepted
        assert store.contacts[o.contact_id]["hs_lead_status"] == o.hs_lead_status
        assert store.contacts[o.contact_id]["lifecyclestage"] == "marketingqualifiedlead"
    customer = next(o for o in outcomes if o.persona == "sales_owned_customer")
    assert store.contacts[customer.contact_id]["lifecyclestage"] == "customer"


def test_when_hubspot_does_not_allow_it_the_stage_stays_and_explain_says_why(
    demo, connector_env, tmp_path, monkeypatch
) -> None:
    from datetime import timedelta

    from rich.console import Console

    from connector import report
    from connector.cli import _engine

    store, outcomes = demo
    monkeypatch.setenv("CONNECTOR_MAPPINGS_DIR", str(_backward_mappings(tmp_path, hubspot_allows=False)))
    assert run_cli("sync") == 0
    quiet = next(o for o in outcomes if o.persona == "mql_pricing_interest")
    first_request = len(store.requests)
    with _engine(None) as engine:
        later = engine.clock() + timedelta(days=60)
        engine.clock = lambda: later
        engine.sync()
        result = engine.explain(quiet.email)
    props = store.contacts[quiet.contact_id]
    assert (props["lifecyclestage"], props["hs_lead_status"]) == ("marketingqualifiedlead", "BAD_TIMING")
    assert not any(
        "lifecyclestage" in item.get("properties", {})
        for r in store.requests[first_request:]
        if r.path.endswith("/batch/update")
        for item in r.body["inputs"]
        if item["id"] == quiet.contact_id
    )
    assert result is not None
    assert result.decision.moved_back_by == "mql_went_quiet"
    assert result.stage_note is not None
    assert "stage.allow_backwards: true" in result.stage_note
    console = Console(record=True, width=200)
    report.print_explain(console, result, None)
    shown = console.export_text()
    assert "Moved back by: mql_went_quiet" in shown
    assert "Stage not written: the criteria move the stage back to lead (mql_went_quiet)" in shown
    assert report.explain_json(result, None)["stage_note"] == result.stage_note
