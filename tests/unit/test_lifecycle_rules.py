"""Stage rules, disqualifiers and forward-only, against the shipped criteria.

Each shipped rule gets a person/timeline that fires it and the near misses just below each of its
thresholds, so a change to a threshold in criteria.yaml shows up here as a failing, named case.
"""

from __future__ import annotations

import pytest

from connector.lifecycle import CriteriaEvaluator
from connector.mapping.schema import Criteria, StageRule
from connector.model import Activity, FieldValue

from .lifecycle_fixtures import (
    FIT_A,
    FIT_B_EXACT,
    FIT_C_40,
    FIT_D,
    NOW,
    act,
    blog_views,
    criteria,
    decide,
    hand_raise,
    person,
    person_fields,
    pricing_views,
    white_paper,
)

MULTI_CHANNEL = [*blog_views(3), act("email_open", 2), act("social", 3)]  # 3 channels, 5 interactions
CADENCE = [act("page_view", 6), act("page_view", 4), white_paper(3)]  # 3 active days, 1 download


def rule_of(profile: dict[str, FieldValue], timeline: list[Activity]) -> tuple[str, str | None]:
    decision = decide(profile, timeline)
    matched = [t.name for t in decision.trace if t.kind == "stage" and t.matched]
    assert len(matched) <= 1
    return decision.stage, matched[0] if matched else None


@pytest.mark.parametrize(
    ("profile", "timeline", "stage", "rule"),
    [
        # sql_hand_raise: hand_raises_30d >= 1 && fit_grade in [A, B]
        pytest.param(FIT_A, [hand_raise()], "sql", "sql_hand_raise", id="sql_hand_raise"),
        pytest.param(
            FIT_B_EXACT, [hand_raise(29)], "sql", "sql_hand_raise", id="sql_hand_raise-grade-B-day-29"
        ),
        pytest.param(FIT_C_40, [hand_raise()], "lead", "lead_converted", id="sql_hand_raise-below-grade-C"),
        pytest.param(
            FIT_A, [hand_raise(30)], "lead", "lead_converted", id="sql_hand_raise-below-30-days-old"
        ),
        # sql_sales_conversation: sales_touches_14d >= 1 && A/B && interactions_30d >= 3
        pytest.param(
            FIT_A,
            [act("meeting", 2), *blog_views(2)],
            "sql",
            "sql_sales_conversation",
            id="sql_sales_conversation",
        ),
        pytest.param(
            FIT_A, [act("email_reply", 13.9), *blog_views(2)], "sql", "sql_sales_conversation", id="sql_reply"
        ),
        pytest.param(
            FIT_A, [act("call", 2), *blog_views(1)], "subscriber", None, id="sql_sales-below-2-interactions"
        ),
        pytest.param(
            FIT_A, [act("call", 14), *blog_views(2)], "subscriber", None, id="sql_sales-below-touch-14d-old"
        ),
        pytest.param(
            FIT_C_40, [act("meeting", 2), *blog_views(2)], "subscriber", None, id="sql_sales-below-grade-C"
        ),
        # mql_multi_channel: channels_30d >= 3 && interactions_30d >= 5 && fit_grade != D
        pytest.param(FIT_C_40, MULTI_CHANNEL, "mql", "mql_multi_channel", id="mql_multi_channel"),
        pytest.param(FIT_C_40, MULTI_CHANNEL[1:], "subscriber", None, id="mql_multi-below-4-interactions"),
        pytest.param(
            FIT_C_40,
            [*blog_views(4), act("email_open", 2)],
            "subscriber",
            None,
            id="mql_multi-below-2-channels",
        ),
        pytest.param(FIT_D, MULTI_CHANNEL, "subscriber", None, id="mql_multi-below-grade-D"),
        # mql_pricing_interest: pricing_views_30d >= 2 && fit_score >= 45
        pytest.param(FIT_B_EXACT, pricing_views(2), "mql", "mql_pricing_interest", id="mql_pricing_interest"),
        pytest.param(FIT_B_EXACT, pricing_views(1), "subscriber", None, id="mql_pricing-below-1-view"),
        pytest.param(FIT_C_40, pricing_views(5), "subscriber", None, id="mql_pricing-below-fit-40"),
        # mql_chat_question: chats_30d >= 1 && pricing_views_30d >= 1 && A/B
        pytest.param(
            FIT_A, [act("chat", 1), *pricing_views(1)], "mql", "mql_chat_question", id="mql_chat_question"
        ),
        pytest.param(
            FIT_A, [act("chat", 1), *blog_views(1)], "subscriber", None, id="mql_chat-below-no-pricing"
        ),
        pytest.param(FIT_A, pricing_views(1), "subscriber", None, id="mql_chat-below-no-chat"),
        pytest.param(
            FIT_C_40, [act("chat", 1), *pricing_views(1)], "subscriber", None, id="mql_chat-below-grade-C"
        ),
        # mql_cadence: active_days_7d >= 3 && content_downloads_30d >= 1 && fit_grade != D
        pytest.param(FIT_C_40, CADENCE, "mql", "mql_cadence", id="mql_cadence"),
        pytest.param(FIT_C_40, CADENCE[1:], "lead", "lead_converted", id="mql_cadence-below-2-days"),
        pytest.param(
            FIT_C_40,
            [*CADENCE[:2], act("page_view", 3)],
            "subscriber",
            None,
            id="mql_cadence-below-no-download",
        ),
        pytest.param(
            FIT_C_40, [act("page_view", 7), *CADENCE[1:]], "lead", "lead_converted", id="cadence-7d-edge"
        ),
        pytest.param(FIT_D, CADENCE, "lead", "lead_converted", id="mql_cadence-below-grade-D"),
        # lead_converted: forms_90d >= 1
        pytest.param(
            FIT_D, [act("form_submission", 89, name="Newsletter")], "lead", "lead_converted", id="lead"
        ),
        pytest.param(
            FIT_D, [act("form_submission", 90, name="Newsletter")], "subscriber", None, id="lead-below"
        ),
        # default
        pytest.param(FIT_A, [], "subscriber", None, id="default-stage"),
    ],
)
def test_every_shipped_rule_and_its_near_misses(
    profile: dict[str, FieldValue], timeline: list[Activity], stage: str, rule: str | None
) -> None:
    assert rule_of(profile, timeline) == (stage, rule)


def test_every_shipped_rule_is_covered_above() -> None:
    covered = {
        "sql_hand_raise",
        "sql_sales_conversation",
        "mql_multi_channel",
        "mql_pricing_interest",
        "mql_chat_question",
        "mql_cadence",
        "lead_converted",
    }
    assert covered == {rule.name for rule in criteria().rules}


def test_first_matching_rule_wins_and_later_rules_are_marked_not_evaluated() -> None:
    decision = decide(FIT_A, [hand_raise(), *pricing_views(3)])
    stage_traces = [t for t in decision.trace if t.kind == "stage"]
    assert [t.name for t in stage_traces] == [rule.name for rule in criteria().rules]
    assert stage_traces[0].matched
    assert all(t.note.startswith("not evaluated") and not t.matched for t in stage_traces[1:])


def test_decision_reason_names_rule_description_and_values_read() -> None:
    decision = decide(FIT_B_EXACT, pricing_views(3))
    assert decision.stage == "mql"
    assert decision.lead_status == "new"
    assert decision.reason == (
        "mql by rule mql_pricing_interest "
        "(Repeated visits to pricing/solutions pages from a good-fit person): "
        "pricing_views_30d=3 (>= 2), fit_score=45 (>= 45)"
    )
    trace = next(t for t in decision.trace if t.name == "mql_pricing_interest")
    assert trace.values == {"pricing_views_30d": 3, "fit_score": 45}


def test_decision_carries_signals_fit_and_metadata() -> None:
    decision = decide(FIT_A, [hand_raise()])
    assert decision.person_id == "p1"
    assert decision.evaluated_at == NOW
    assert decision.criteria_version == "test-v1"
    assert (decision.fit_score, decision.fit_grade) == (90, "A")
    assert decision.signals["hand_raises_30d"] == 1
    assert decision.owner_id is None
    assert decision.owner_reason is None
    assert decision.lead_status is None  # sql rules set no lead status


def test_missing_person_values_get_typed_zero_values() -> None:
    decision = decide({"email": None, "title": None, "employees": None, "unsubscribed": None}, [])
    assert decision.stage == "subscriber"
    assert decision.disqualified_by is None
    assert all("evaluation error" not in t.note for t in decision.trace)
    trace = next(t for t in decision.trace if t.name == "target_company_size")
    assert trace.values == {"person.employees": 0}


# --------------------------------------------------------------------------- disqualifiers


@pytest.mark.parametrize(
    ("profile", "timeline", "disqualifier", "stage", "lead_status"),
    [
        pytest.param(
            person(FIT_A, email="ana@RivalSoft.com"),
            [hand_raise()],
            "competitor",
            "lead",
            "unqualified",
            id="competitor",
        ),
        pytest.param(
            person(FIT_A, title="PhD Student"),
            [hand_raise()],
            "student",
            "lead",
            "unqualified",
            id="student-title",
        ),
        pytest.param(
            person(FIT_A, email="ana@cs.mit.edu"),
            pricing_views(2),
            "student",
            "lead",
            "unqualified",
            id="student-edu",
        ),
        pytest.param(
            person(FIT_A, email="test+1@acme.com"),
            [hand_raise()],
            "test_record",
            "subscriber",
            "unqualified",
            id="test",
        ),
        pytest.param(
            person(FIT_A, email="ana@example.com"),
            [hand_raise()],
            "test_record",
            "subscriber",
            "unqualified",
            id="test-dom",
        ),
        pytest.param(
            person(FIT_A, unsubscribed=True),
            pricing_views(2),
            "unsubscribed",
            "lead",
            None,
            id="unsubscribed-clears-status",
        ),
        pytest.param(
            person(FIT_A, email="ana@rivalsoft.com"),
            [],
            "competitor",
            "subscriber",
            "unqualified",
            id="cap-never-raises",
        ),
    ],
)
def test_disqualifiers_cap_the_stage(
    profile: dict[str, FieldValue],
    timeline: list[Activity],
    disqualifier: str,
    stage: str,
    lead_status: str | None,
) -> None:
    decision = decide(profile, timeline)
    assert decision.disqualified_by == disqualifier
    assert (decision.stage, decision.computed_stage, decision.lead_status) == (stage, stage, lead_status)
    assert disqualifier in decision.reason


def test_first_disqualifier_wins_and_the_rest_are_not_evaluated() -> None:
    decision = decide(person(FIT_A, email="test@rivalsoft.com", unsubscribed=True), [hand_raise()])
    assert decision.disqualified_by == "competitor"
    traces = [t for t in decision.trace if t.kind == "disqualifier"]
    assert [t.name for t in traces] == [d.name for d in criteria().disqualifiers]
    assert [t.matched for t in traces] == [True, False, False, False]
    assert all(t.note.startswith("not evaluated") for t in traces[1:])
    assert decision.reason.startswith("lead (capped by disqualifier competitor")
    assert "without it: sql by rule sql_hand_raise" in decision.reason


# --------------------------------------------------------------------------- forward-only


@pytest.mark.parametrize(
    ("current", "timeline", "stage", "computed", "lead_status", "keep"),
    [
        pytest.param(None, pricing_views(2), "mql", "mql", "new", None, id="no-current-stage"),
        pytest.param("lead", pricing_views(2), "mql", "mql", "new", None, id="moves-forward"),
        pytest.param("mql", pricing_views(2), "mql", "mql", "new", None, id="same-stage"),
        pytest.param("sql", pricing_views(2), "sql", "mql", None, "forward_only", id="never-backwards"),
        pytest.param("mql", [], "mql", "subscriber", None, "forward_only", id="signals-decay-stage-stays"),
        pytest.param(
            "opportunity", [hand_raise()], "opportunity", "sql", None, "sales_owned", id="sales-owned"
        ),
        pytest.param(
            "customer", [], "customer", "subscriber", None, "sales_owned", id="sales-owned-customer"
        ),
        pytest.param(
            "custom_stage", pricing_views(2), "mql", "mql", "new", None, id="unknown-current-is-no-stage"
        ),
    ],
)
def test_forward_only_and_sales_owned(
    current: str | None,
    timeline: list[Activity],
    stage: str,
    computed: str,
    lead_status: str | None,
    keep: str | None,
) -> None:
    decision = decide(FIT_A, timeline, current_stage=current)
    assert (decision.stage, decision.computed_stage, decision.lead_status) == (stage, computed, lead_status)
    keeps = [t for t in decision.trace if t.kind == "keep"]
    assert [t.name for t in keeps] == ([keep] if keep else [])
    if keep:
        assert decision.reason.startswith(f"{stage} kept:")
        assert keeps[0].values == {"current_stage": current, "computed_stage": computed}


def test_disqualifier_status_still_applies_when_a_higher_stage_is_kept() -> None:
    decision = decide(person(FIT_A, email="x@rivalsoft.com"), [hand_raise()], current_stage="mql")
    assert (decision.stage, decision.computed_stage) == ("mql", "lead")
    assert decision.lead_status == "unqualified"
    assert decision.disqualified_by == "competitor"


def test_sales_owned_record_gets_no_lead_status_even_when_disqualified() -> None:
    decision = decide(person(FIT_A, email="x@rivalsoft.com"), [], current_stage="customer")
    assert decision.stage == "customer"
    assert decision.lead_status is None


# --------------------------------------------------------------------------- robustness


def _criteria_with(rules: list[StageRule]) -> Criteria:
    return criteria().model_copy(update={"rules": rules})


def test_cel_runtime_error_is_not_a_match_and_is_traced() -> None:
    rules = [
        StageRule(name="broken", stage="sql", when='person.employees > "lots"'),
        StageRule(name="missing_field", stage="sql", when='person.nonexistent == "x"'),
        StageRule(name="fine", stage="lead", when="interactions_30d >= 1"),
    ]
    evaluator = CriteriaEvaluator(_criteria_with(rules), "v", person_fields())
    decision = evaluator.evaluate(
        person_id="p", person=FIT_A, timeline=[act("chat")], current_stage=None, now=NOW
    )
    assert decision.stage == "lead"
    broken = [t for t in decision.trace if t.name in {"broken", "missing_field"}]
    assert [t.matched for t in broken] == [False, False]
    assert all(t.note.startswith("evaluation error") for t in broken)


def test_unknown_stage_in_a_rule_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="nurture"):
        CriteriaEvaluator(_criteria_with([StageRule(name="x", stage="nurture", when="true")]), "v", {})


def test_email_domain_given_explicitly_is_not_overridden() -> None:
    context = CriteriaEvaluator(criteria(), "v", person_fields()).person_context(
        {"email": "a@acme.com", "email_domain": "override.io"}
    )
    assert context["email_domain"] == "override.io"
    assert context["title"] == ""
    assert context["employees"] == 0
    assert context["unsubscribed"] is False
