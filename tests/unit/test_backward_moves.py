"""Backward stage moves decided by the criteria: two switches (criteria + CRM mapping), or none.

`allow_backward_moves` in criteria.yaml lets recycle rules (`move_stage_to`) and disqualifiers
(`move_stage_back`) lower a stage; the CRM mapping's `stage.allow_backwards` lets the diff write
it. Sales-owned stages and protected records are never touched either way.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.errors import MappingError
from connector.lifecycle import CriteriaEvaluator, FieldMap, plan_write
from connector.lifecycle.diff import backward_note
from connector.lifecycle.rules import Handoff
from connector.mapping.loader import load_mappings
from connector.mapping.schema import Criteria
from connector.model import Activity, Decision, FieldValue

from .lifecycle_fixtures import FIT_A, FIT_B_EXACT, NOW, act, criteria, field_map, person_fields
from .test_lifecycle_properties import activities, people

SHIPPED = Path(__file__).resolve().parents[2] / "mappings"
STAGES = criteria().stages
SALES = frozenset(criteria().sales_owned)
QUIET = [act("page_view", 40, url="https://x.io/pricing")]
STALLED = Handoff("new", NOW - timedelta(days=45))


def moving(*, switch: bool = True, target: str | None = "lead", disqualifiers: bool = True) -> Criteria:
    """The shipped criteria with the recycle rule moving to `target` and every disqualifier moving back."""
    base = criteria()
    recycle = [r.model_copy(update={"move_stage_to": target}) for r in base.recycle]
    caps = [d.model_copy(update={"move_stage_back": disqualifiers}) for d in base.disqualifiers]
    return base.model_copy(update={"recycle": recycle, "disqualifiers": caps, "allow_backward_moves": switch})


def evaluator_of(c: Criteria) -> CriteriaEvaluator:
    return CriteriaEvaluator(c, "test-back", person_fields())


MOVING = evaluator_of(moving())
SWITCH_OFF = evaluator_of(moving(switch=False))  # what validation forbids; the core still refuses


def decide(
    ev: CriteriaEvaluator,
    person: dict[str, FieldValue],
    timeline: list[Activity],
    current: str | None,
    handoff: Handoff | None = None,
) -> Decision:
    full = ev.evaluate(
        person_id="p", person=person, timeline=timeline, current_stage=current, now=NOW, handoff=handoff
    )
    quick = ev.verdict(person=person, timeline=timeline, current_stage=current, now=NOW, handoff=handoff)
    assert (quick.stage, quick.lead_status, quick.recycled_by, quick.moved_back_by) == (
        full.stage, full.lead_status, full.recycled_by, full.moved_back_by,
    )  # fmt: skip
    return full


# --------------------------------------------------------------------------- the decision


def test_a_quiet_mql_is_moved_back_to_lead_with_the_rule_and_the_switch_in_the_reason() -> None:
    decision = decide(MOVING, FIT_B_EXACT, QUIET, "mql", STALLED)
    assert (decision.stage, decision.lead_status) == ("lead", "nurture")
    assert (decision.recycled_by, decision.moved_back_by) == ("mql_went_quiet", "mql_went_quiet")
    assert decision.reason.startswith("lead (moved back from mql to lead by recycle rule mql_went_quiet")
    assert "allow_backward_moves is on" in decision.reason
    move = decision.trace[-1]
    assert (move.kind, move.name, move.values) == (
        "move_back", "mql_went_quiet", {"moved_from": "mql", "moved_to": "lead"},
    )  # fmt: skip


def test_the_move_never_lands_below_the_stage_the_rules_give_now() -> None:
    # A form 60 days ago makes the rules say lead; the rule asks for subscriber: lead it is.
    ev = evaluator_of(moving(target="subscriber"))
    decision = decide(
        ev, FIT_B_EXACT, [*QUIET, act("form_submission", 60, name="Newsletter")], "mql", STALLED
    )
    assert decision.stage == "lead"
    assert "(not subscriber: the rules give lead now)" in decision.reason
    assert decide(ev, FIT_B_EXACT, QUIET, "mql", STALLED).stage == "subscriber"


def test_a_disqualifier_with_move_stage_back_lowers_to_its_cap_but_never_a_sales_stage() -> None:
    competitor = {**FIT_A, "email": "ana@rivalsoft.com"}
    form = [act("form_submission", 60, name="Newsletter")]  # the rules say lead; the cap is lead
    # Back to what the criteria give now (subscriber without the form), never above the cap.
    assert decide(MOVING, competitor, [], "sql").stage == "subscriber"
    decision = decide(MOVING, competitor, form, "sql")
    assert (decision.stage, decision.lead_status, decision.moved_back_by) == (
        "lead",
        "unqualified",
        "competitor",
    )
    assert decision.trace[-1].kind == "move_back"
    kept = decide(MOVING, competitor, [], "customer")
    assert (kept.stage, kept.moved_back_by) == ("customer", None)
    off = decide(evaluator_of(moving(disqualifiers=False)), competitor, [], "sql")
    assert (off.stage, off.moved_back_by) == ("sql", None)


def test_without_the_switch_the_same_rules_keep_the_stage() -> None:
    decision = decide(SWITCH_OFF, FIT_B_EXACT, QUIET, "mql", STALLED)
    assert (decision.stage, decision.recycled_by, decision.moved_back_by) == ("mql", "mql_went_quiet", None)
    assert decide(SWITCH_OFF, {**FIT_A, "email": "a@rivalsoft.com"}, [], "sql").stage == "sql"


# Quiet timelines (nothing in the last two weeks) and MQLs come up often, so recycling is exercised.
quiet_activities = activities.map(
    lambda a: replace(a, occurred_at=min(a.occurred_at, NOW - timedelta(days=15)))
)


@settings(max_examples=200, deadline=None)
@given(
    timeline=st.one_of(st.lists(activities, max_size=20), st.lists(quiet_activities, max_size=3)),
    person=people,
    current=st.one_of(st.just("mql"), st.none(), st.sampled_from([*STAGES, "custom_stage"])),
    entered=st.one_of(st.integers(min_value=30, max_value=120), st.none(), st.integers(0, 120)),
    status=st.sampled_from([None, "new", "open", "nurture"]),
)
def test_without_the_switch_no_stage_ever_goes_backwards_and_with_it_only_by_a_named_rule(
    timeline: list[Activity], person: dict[str, FieldValue], current: str | None, entered: int | None,
    status: str | None,
) -> None:  # fmt: skip
    handoff = Handoff(status, NOW - timedelta(days=entered) if entered is not None else None)
    for ev, switch in ((SWITCH_OFF, False), (MOVING, True)):
        decision = decide(ev, person, timeline, current, handoff)
        if current in SALES:
            assert decision.stage == current
        if current not in STAGES or current in SALES:
            assert decision.moved_back_by is None
            continue
        backwards = STAGES.index(decision.stage) < STAGES.index(current)
        assert backwards == (decision.moved_back_by is not None)
        assert switch or not backwards
        if backwards:
            assert decision.stage not in SALES
            assert STAGES.index(decision.stage) >= STAGES.index(decision.computed_stage)


# --------------------------------------------------------------------------- the diff


def _decision(stage: str, moved_back_by: str | None) -> Decision:
    return Decision(
        person_id="p", evaluated_at=NOW, criteria_version="v", stage=stage, computed_stage=stage,
        lead_status="nurture", fit_score=0, fit_grade="D", signals={}, trace=(), reason="r",
        moved_back_by=moved_back_by,
    )  # fmt: skip


def _plan(decision: Decision, current: dict[str, str | None], fields: FieldMap) -> dict[str, str]:
    intent = plan_write(
        crm="hubspot", object_type="contacts", record_id="1", person_id="p", decision=decision,
        owner_id=None, current=current, last_written={}, fields=fields, stage_order=STAGES,
        sales_owned=SALES,
    )  # fmt: skip
    return intent.changes if intent else {}


def test_the_diff_writes_a_backward_move_only_when_the_criteria_and_the_mapping_both_allow_it() -> None:
    allowed = replace(field_map(), allow_backwards=True)
    shows_mql = {"lifecyclestage": "marketingqualifiedlead", "hs_lead_status": "NEW"}
    assert _plan(_decision("lead", "mql_went_quiet"), shows_mql, allowed)["lifecyclestage"] == "lead"
    assert "lifecyclestage" not in _plan(_decision("lead", None), shows_mql, allowed)
    assert "lifecyclestage" not in _plan(_decision("lead", "mql_went_quiet"), shows_mql, field_map())
    note = backward_note(
        decision=_decision("lead", "mql_went_quiet"), current=shows_mql, fields=field_map(),
        stage_order=STAGES, sales_owned=SALES,
    )  # fmt: skip
    assert note is not None
    assert "stage.allow_backwards: true" in note
    assert "lifecyclestage stays 'marketingqualifiedlead'" in note
    protected = replace(allowed, protected_statuses=frozenset({"closed - converted"}))
    assert (
        _plan(_decision("lead", "x"), {**shows_mql, "hs_lead_status": "Closed - Converted"}, protected) == {}
    )
    assert "lifecyclestage" not in _plan(_decision("lead", "x"), {"lifecyclestage": "customer"}, allowed)


CRM_VALUES = st.one_of(st.none(), st.sampled_from(["", *field_map().stage.values.values(), "custom"]))


@settings(max_examples=300, deadline=None)
@given(
    stage=st.sampled_from(STAGES),
    shown=CRM_VALUES,
    moved_back_by=st.one_of(st.none(), st.just("rule")),
    mapping_allows=st.booleans(),
)
def test_the_diff_never_moves_a_stage_back_without_both_switches(
    stage: str, shown: str | None, moved_back_by: str | None, mapping_allows: bool
) -> None:
    fields = replace(field_map(), allow_backwards=mapping_allows)
    written = _plan(_decision(stage, moved_back_by), {"lifecyclestage": shown}, fields).get("lifecyclestage")
    by_value = {v: s for s, v in fields.stage.values.items()}
    if written is None or not shown or shown not in by_value:
        return
    assert by_value[shown] not in SALES
    assert stage not in SALES
    if STAGES.index(stage) < STAGES.index(by_value[shown]):
        assert moved_back_by is not None
        assert mapping_allows


def test_salesforce_stage_maps_carry_their_own_switch() -> None:
    from connector.engine import _binding
    from connector.mapping.schema import SalesforceMapping

    text = (SHIPPED / "salesforce.yaml").read_text(encoding="utf-8")
    import yaml

    data = yaml.safe_load(text)
    data["objects"]["Lead"]["stage"]["allow_backwards"] = True
    binding = _binding(object(), SalesforceMapping.model_validate(data))  # type: ignore[arg-type]
    assert binding.objects["Lead"].fields.allow_backwards is True
    assert binding.objects["Contact"].fields.allow_backwards is False


# --------------------------------------------------------------------------- validation


def _load_with(tmp_path: Path, *edits: tuple[str, str]) -> MappingError:
    folder = tmp_path / "m"
    folder.mkdir()
    for name in ("routing.yaml", "hubspot.yaml"):
        (folder / name).write_text((SHIPPED / name).read_text())
    text = (SHIPPED / "criteria.yaml").read_text()
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    (folder / "criteria.yaml").write_text(text)
    with pytest.raises(MappingError) as caught:
        load_mappings(folder)
    return caught.value


# The end of recycle rule mql_went_quiet (the hand-off SLA rule sets nurture too).
RULE_TAIL = (
    '    description: "MQL for 30+ days, never accepted by Sales, quiet for two weeks: back to nurture"\n'
)
SWITCH = "allow_backward_moves: false\n"


@pytest.mark.parametrize(
    ("edits", "line_of", "message"),
    [
        pytest.param(
            [(RULE_TAIL, RULE_TAIL + "    move_stage_to: lead\n")],
            "    move_stage_to: lead",
            "recycle rule 'mql_went_quiet' moves the stage back to 'lead' but allow_backward_moves is false",
            id="rule-without-switch",
        ),
        pytest.param(
            [(SWITCH, "allow_backward_moves: true\n")],
            "allow_backward_moves: true",
            "allow_backward_moves is true but no recycle rule sets move_stage_to",
            id="switch-without-rule",
        ),
        pytest.param(
            [(RULE_TAIL, RULE_TAIL + "    move_stage_to: sql\n"), (SWITCH, "allow_backward_moves: true\n")],
            "    move_stage_to: sql",
            "'sql' is not below mql, so it is not a backward move",
            id="not-below",
        ),
        pytest.param(
            [(RULE_TAIL, RULE_TAIL + "    move_stage_to: leed\n"), (SWITCH, "allow_backward_moves: true\n")],
            "    move_stage_to: leed",
            "unknown stage 'leed'",
            id="unknown-stage",
        ),
        pytest.param(
            [("    cap: subscriber\n", "    cap: subscriber\n    move_stage_back: true\n")],
            "    move_stage_back: true",
            "disqualifier 'test_record' moves the stage back but allow_backward_moves is false",
            id="disqualifier-without-switch",
        ),
    ],
)
def test_contradictory_settings_are_reported_at_their_line(
    tmp_path: Path, edits: list[tuple[str, str]], line_of: str, message: str
) -> None:
    error = _load_with(tmp_path, *edits)
    text = (tmp_path / "m" / "criteria.yaml").read_text()
    line = text[: text.index(line_of + "\n")].count("\n") + 1
    found = [(i.line, i.message) for i in error.issues if message in i.message]
    assert found, [i.render() for i in error.issues]
    assert found[0][0] == line
    assert all(i.file.endswith("criteria.yaml") for i in error.issues)


def test_a_sales_owned_target_is_rejected(tmp_path: Path) -> None:
    # A recycle rule on sql moving to opportunity would be "up", so use a hand-built order instead.
    error = _load_with(
        tmp_path,
        ("stages: [subscriber, lead, mql, sql, opportunity, customer]",
         "stages: [subscriber, opportunity, lead, mql, sql, customer]"),
        (RULE_TAIL, RULE_TAIL + "    move_stage_to: opportunity\n"),
        (SWITCH, "allow_backward_moves: true\n"),
    )  # fmt: skip
    assert any("'opportunity' is owned by Sales" in i.message for i in error.issues)


def test_the_shipped_criteria_keep_backward_moves_off() -> None:
    shipped = load_mappings(SHIPPED).criteria
    assert shipped.allow_backward_moves is False
    assert not shipped.moves_back
