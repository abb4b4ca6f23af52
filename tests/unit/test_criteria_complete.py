"""Signal kinds, recycle, gaps, examples, simulate and the bulk path, with the invariants that must
hold for any input (Hypothesis): determinism, monotonicity, exact window edges, time zones."""

from __future__ import annotations

from datetime import UTC, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.lifecycle import CriteriaEvaluator, compute_signals
from connector.lifecycle.diff import FieldMap, plan_write
from connector.lifecycle.rules import Handoff
from connector.lifecycle.simulate import SimPerson, compare, history
from connector.mapping.loader import load_mappings
from connector.mapping.schema import ActivityFilter, SignalSpec
from connector.model import Activity, FieldValue

from .lifecycle_fixtures import (
    FIT_A,
    FIT_B_EXACT,
    FIT_C_40,
    NOW,
    act,
    criteria,
    decide,
    evaluator,
    person_fields,
)

SHIPPED = Path(__file__).resolve().parents[2] / "mappings"


def one(spec: SignalSpec, timeline: list[Activity]) -> int | float:
    return compute_signals({"s": spec}, criteria().activity_types, timeline, NOW)["s"]


def on_days(*days: float, type_: str = "page_view", name: str | None = None) -> list[Activity]:
    return [act(type_, d, name=name) for d in days]


GATED = ActivityFilter(types=["form_submission"], name_patterns=["(?i)white ?paper"])


@pytest.mark.parametrize(
    ("spec", "timeline", "expected"),
    [
        pytest.param(SignalSpec(kind="longest_gap_days", window_days=30), on_days(1, 4, 5), 3, id="gap"),
        pytest.param(
            SignalSpec(kind="longest_gap_days", window_days=30), on_days(2, 2.1), 0, id="gap-one-day"
        ),
        pytest.param(
            SignalSpec(kind="returns", window_days=30, within_days=3), on_days(1, 4, 10), 1, id="returns"
        ),
        pytest.param(
            SignalSpec(kind="cadence", window_days=30, span_days=4, anchor=GATED),
            [*on_days(4, 2), act("form_submission", 1, name="White paper")],
            3,
            id="cadence-seed-story",
        ),
        pytest.param(
            SignalSpec(kind="cadence", window_days=30, span_days=4, anchor=GATED),
            [*on_days(4, 3, 2), act("form_submission", 12, name="White paper")],
            1,
            id="cadence-anchor-outside-the-busy-days",
        ),
        pytest.param(
            SignalSpec(kind="cadence", window_days=30, span_days=4, anchor=GATED),
            on_days(4, 3, 2),
            0,
            id="no-anchor",
        ),
        pytest.param(
            SignalSpec(kind="cadence", window_days=30, span_days=2), on_days(9, 5, 4), 2, id="cadence-plain"
        ),
        pytest.param(SignalSpec(kind="days_since_last", window_days=30), on_days(20, 3.5), 3, id="recency"),
        pytest.param(SignalSpec(kind="days_since_last", window_days=30), [], 30, id="recency-none"),
        pytest.param(SignalSpec(kind="days_since_first", window_days=30), on_days(20, 3.5), 20, id="first"),
        pytest.param(SignalSpec(kind="days_since_first", window_days=30), [], 0, id="first-none"),
        pytest.param(
            SignalSpec(
                kind="score", window_days=30, points={"page_view": 1, "chat": 5}, caps={"page_view": 2}
            ),
            [*on_days(1, 2, 3), act("chat", 1)],
            7.0,
            id="score-caps",
        ),
        pytest.param(
            SignalSpec(kind="score", window_days=30, points={"chat": 8}, half_life_days=7),
            [act("chat", 14)],
            2.0,
            id="decay",
        ),
        pytest.param(
            SignalSpec(kind="score", window_days=30, points={"chat": 8}, cap=5),
            [act("chat", 1)] * 1,
            5.0,
            id="score-cap",
        ),
    ],
)
def test_signal_kinds(spec: SignalSpec, timeline: list[Activity], expected: float) -> None:
    assert one(spec, timeline) == expected


KINDS = [
    SignalSpec(kind="count", window_days=7),
    SignalSpec(kind="distinct_days", window_days=7),
    SignalSpec(kind="returns", window_days=7, within_days=2),
    SignalSpec(kind="cadence", window_days=7, span_days=3),
    SignalSpec(kind="days_since_first", window_days=7),
    SignalSpec(kind="score", window_days=7, points={"page_view": 1}),
]


@pytest.mark.parametrize("spec", KINDS, ids=lambda s: s.kind)
def test_every_kind_counts_an_activity_at_now_and_drops_one_exactly_a_window_old(spec: SignalSpec) -> None:
    empty = one(spec, [])
    assert one(spec, [act("page_view", at=NOW - timedelta(days=7))]) == empty
    assert one(spec, [act("page_view", at=NOW + timedelta(microseconds=1))]) == empty
    assert one(spec, [act("page_view", at=NOW - timedelta(days=7) + timedelta(microseconds=1))]) != empty or (
        spec.kind in ("returns", "days_since_first")
    )
    assert one(spec, [act("page_view", at=NOW)]) != empty or spec.kind in ("returns", "days_since_first")


TYPES = sorted(criteria().activity_types)
URLS = [None, "https://x.io/pricing", "https://x.io/solutions/a", "https://x.io/blog"]
NAMES = [None, "Request a demo", "White paper: X", "Newsletter", "Contact sales"]
activities = st.builds(
    Activity,
    person_id=st.just("p1"),
    type=st.sampled_from(TYPES),
    occurred_at=st.integers(min_value=-2 * 86_400, max_value=100 * 86_400).map(
        lambda s: NOW - timedelta(seconds=s)
    ),
    source=st.just("hubspot"),
    source_id=st.uuids().map(str),
    url=st.sampled_from(URLS),
    name=st.sampled_from(NAMES),
)
profiles = st.sampled_from(
    [FIT_A, FIT_B_EXACT, FIT_C_40, {**FIT_A, "email": "x@gmail.com"}, {**FIT_A, "title": "Student"}]
)
ZONES = [UTC, timezone(timedelta(hours=-8)), timezone(timedelta(hours=5, minutes=30))]


@settings(max_examples=120, deadline=None)
@given(timeline=st.lists(activities, max_size=20), profile=profiles, data=st.data())
def test_decisions_are_deterministic_whatever_the_order_or_time_zone(
    timeline: list[Activity], profile: dict[str, FieldValue], data: st.DataObject
) -> None:
    first = decide(profile, timeline)
    zone = data.draw(st.sampled_from(ZONES))
    moved = [Activity(**{**a.__dict__, "occurred_at": a.occurred_at.astimezone(zone)}) for a in timeline]
    again = evaluator().evaluate(
        person_id="p1", person=profile, timeline=data.draw(st.permutations(moved)), current_stage=None,
        now=NOW.astimezone(data.draw(st.sampled_from(ZONES))),
    )  # fmt: skip
    assert (again.stage, again.lead_status, again.signals, again.reason) == (
        first.stage, first.lead_status, first.signals, first.reason,
    )  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(timeline=st.lists(activities, max_size=15), extra=activities, profile=profiles)
def test_adding_an_activity_never_lowers_the_stage_unless_a_disqualifier_says_so(
    timeline: list[Activity], extra: Activity, profile: dict[str, FieldValue]
) -> None:
    stages = criteria().stages
    before = decide(profile, timeline)
    after = decide(profile, [*timeline, extra])
    if after.disqualified_by is None and after.recycled_by is None:
        assert stages.index(after.computed_stage) >= stages.index(before.computed_stage)


@settings(max_examples=150, deadline=None)
@given(
    timeline=st.lists(activities, max_size=15),
    profile=profiles,
    current=st.sampled_from([None, *criteria().stages]),
    status=st.sampled_from([None, "new", "in_progress"]),
    days=st.sampled_from([None, 5, 60]),
)
def test_bulk_verdict_agrees_with_the_full_decision(
    timeline: list[Activity],
    profile: dict[str, FieldValue],
    current: str | None,
    status: str | None,
    days: int | None,
) -> None:
    handoff = Handoff(status, NOW - timedelta(days=days) if days is not None else None)
    full = evaluator().evaluate(
        person_id="p", person=profile, timeline=timeline, current_stage=current, now=NOW, handoff=handoff
    )
    quick = evaluator().verdict(
        person=profile, timeline=timeline, current_stage=current, now=NOW, handoff=handoff
    )
    assert (quick.stage, quick.computed_stage, quick.lead_status, quick.rule) == (
        full.stage, full.computed_stage, full.lead_status, full.rule,
    )  # fmt: skip
    assert (quick.disqualified_by, quick.recycled_by, quick.fit_score) == (
        full.disqualified_by, full.recycled_by, full.fit_score,
    )  # fmt: skip


# --------------------------------------------------------------------------- recycle


QUIET = [act("page_view", 40, url="https://x.io/pricing")]


@pytest.mark.parametrize(
    ("handoff", "timeline", "recycled"),
    [
        pytest.param(
            Handoff("new", NOW - timedelta(days=45)), QUIET, "mql_went_quiet", id="quiet-unaccepted"
        ),
        pytest.param(Handoff("in_progress", NOW - timedelta(days=45)), QUIET, None, id="accepted-by-status"),
        pytest.param(
            Handoff("new", NOW - timedelta(days=45)), [*QUIET, act("call", 10)], None, id="accepted-by-call"
        ),
        pytest.param(Handoff("new", NOW - timedelta(days=10)), QUIET, None, id="too-recent"),
        pytest.param(Handoff("new", None), QUIET, None, id="entry-unknown"),
        pytest.param(
            Handoff("new", NOW - timedelta(days=45)), [act("page_view", 3)] * 1, None, id="active-lately"
        ),
    ],
)
def test_recycle(handoff: Handoff, timeline: list[Activity], recycled: str | None) -> None:
    decision = evaluator().evaluate(
        person_id="p", person=FIT_B_EXACT, timeline=timeline, current_stage="mql", now=NOW, handoff=handoff
    )
    assert decision.stage == "mql"
    assert decision.recycled_by == recycled
    if recycled:
        assert decision.lead_status == "nurture"
        assert decision.reason.startswith("mql recycled by mql_went_quiet")


def test_a_person_the_rules_still_place_at_the_stage_is_never_recycled() -> None:
    pricing = [
        act("page_view", 1, url="https://x.io/pricing"),
        act("page_view", 2, url="https://x.io/pricing"),
    ]
    decision = evaluator().evaluate(
        person_id="p", person=FIT_B_EXACT, timeline=pricing, current_stage="mql", now=NOW,
        handoff=Handoff("new", NOW - timedelta(days=90)),
    )  # fmt: skip
    assert decision.recycled_by is None
    assert decision.lead_status == "new"


# --------------------------------------------------------------------------- gaps


def test_gaps_say_what_is_missing_in_plain_language() -> None:
    decision = decide(FIT_C_40, [act("page_view", 1, url="https://x.io/pricing")])
    gaps = {g.rule: g for g in evaluator().gaps(decision, FIT_C_40)}
    assert set(gaps) == {r.name for r in criteria().rules if r.stage in ("lead", "mql", "sql")}
    assert gaps["mql_pricing_interest"].missing == (
        "needs 1 more pricing or solutions page visit in 30 days (pricing_views_30d is 1, needs >= 2)",
        "needs 5 more fit points (fit score 40, needs >= 45)",
    )
    assert (
        gaps["sql_hand_raise"].missing[1]
        == "needs fit grade A or B (is C, score 40; 5 more fit points reach it)"
    )


def test_gaps_fall_back_to_the_failing_part_for_complex_conditions() -> None:
    custom = criteria().model_copy(
        update={
            "rules": [
                criteria()
                .rules[0]
                .model_copy(update={"when": 'chats_30d >= 1 && (person.title.matches("x") || forms_90d > 2)'})
            ]
        }
    )
    ev = CriteriaEvaluator(custom, "v", person_fields())
    decision = ev.evaluate(
        person_id="p", person=FIT_A, timeline=[act("chat", 1)], current_stage=None, now=NOW
    )
    (gap,) = ev.gaps(decision, FIT_A)
    assert gap.failed == ('(person.title.matches("x") || forms_90d > 2)',)
    assert gap.missing[0].startswith('needs (person.title.matches("x") || forms_90d > 2) (now ')


def test_no_gaps_above_the_top_stage_rule() -> None:
    decision = decide(FIT_A, [act("form_submission", 1, name="Request a demo")])
    assert decision.stage == "sql"
    assert evaluator().gaps(decision, FIT_A) == []


# --------------------------------------------------------------------------- diff extras


def test_reason_and_date_go_with_a_stage_change_only_and_protected_records_are_left_alone() -> None:
    from .lifecycle_fixtures import field_map

    base = field_map()
    writes = base.writes | {"why", "when"}
    protected = frozenset({"closed - converted"})
    fields = FieldMap(base.stage, base.lead_status, base.owner_property, writes, "why", "when", protected)
    decision = decide(
        FIT_B_EXACT,
        [act("page_view", 1, url="https://x.io/pricing")] * 1
        + [act("page_view", 2, url="https://x.io/pricing")],
    )
    common = dict(crm="hubspot", object_type="contacts", record_id="1", person_id="p", decision=decision,
                  owner_id=None, last_written={}, fields=fields, stage_order=criteria().stages,
                  sales_owned=frozenset(criteria().sales_owned))  # fmt: skip
    intent = plan_write(current={"lifecyclestage": "lead"}, **common)  # type: ignore[arg-type]
    assert intent is not None
    assert intent.changes["why"] == decision.reason
    assert intent.changes["when"] == "2026-03-10T12:00:00.000Z"
    same_stage = plan_write(current={"lifecyclestage": "marketingqualifiedlead"}, **common)  # type: ignore[arg-type]
    assert same_stage is not None
    assert "why" not in same_stage.changes
    protected = plan_write(
        current={"lifecyclestage": "lead", "hs_lead_status": "Closed - Converted "}, **common
    )  # type: ignore[arg-type]
    assert protected is None


# --------------------------------------------------------------------------- simulate


def _people() -> list[SimPerson]:
    pricing = [
        act("page_view", 1, url="https://x.io/pricing"),
        act("page_view", 2, url="https://x.io/pricing"),
    ]
    return [
        SimPerson("p1", "a@x.io", FIT_B_EXACT, pricing),
        SimPerson("p2", "b@x.io", FIT_A, [act("form_submission", 1, name="Request a demo")]),
        SimPerson("p3", "c@x.io", FIT_A, [], current_stage="customer"),
        SimPerson("p4", "d@x.io", FIT_C_40, []),
    ]


def test_compare_counts_moves_and_samples_with_reasons() -> None:
    rules = [
        r.model_copy(update={"when": "pricing_views_30d >= 3 && fit_score >= 45"})
        if r.name == "mql_pricing_interest"
        else r
        for r in criteria().rules
    ]
    stricter = CriteriaEvaluator(criteria().model_copy(update={"rules": rules}), "v2", person_fields())
    result = compare(evaluator(), stricter, _people(), NOW, samples=5)
    assert result.people == 4
    assert (result.current["mql"], result.proposed["mql"]) == (1, 0)
    assert result.current["customer"] == result.proposed["customer"] == 1
    assert result.matrix[("mql", "subscriber")] == 1
    (move,) = result.moves
    assert (move.person_id, move.before, move.after, move.rule_before) == (
        "p1",
        "mql",
        "subscriber",
        "mql_pricing_interest",
    )
    (sample,) = result.samples
    assert sample.reason_before.startswith("mql by rule mql_pricing_interest")
    assert sample.reason_after.startswith("subscriber by default")


def test_compare_computes_signals_once_only_when_both_versions_define_them_alike() -> None:
    signals = dict(criteria().signals)
    signals["pricing_views_30d"] = signals["pricing_views_30d"].model_copy(
        update={"url_patterns": ["/plans"]}
    )
    other = CriteriaEvaluator(criteria().model_copy(update={"signals": signals}), "v2", person_fields())
    assert evaluator().same_signals(evaluator())
    assert not evaluator().same_signals(other)
    result = compare(evaluator(), other, _people(), NOW, samples=5)
    # p1's pricing views no longer count under v2's own signal: its definition was used, not v1's.
    assert [(m.person_id, m.before, m.after) for m in result.moves] == [("p1", "mql", "subscriber")]
    same = compare(evaluator(), evaluator(), _people(), NOW)
    assert same.moved == 0
    assert same.current == same.proposed
    assert same.current["mql"] == 1


def test_compare_shares_the_fit_only_when_both_versions_score_it_alike() -> None:
    # v2 gives no points for the seniority rule: p1 (fit exactly B) drops below the MQL threshold.
    fit = criteria().fit
    rules = [r.model_copy(update={"points": 0}) if r is fit.rules[0] else r for r in fit.rules]
    other = CriteriaEvaluator(
        criteria().model_copy(update={"fit": fit.model_copy(update={"rules": rules})}), "v2", person_fields()
    )
    assert evaluator().same_fit(evaluator())
    assert not evaluator().same_fit(other)
    result = compare(evaluator(), other, _people(), NOW, samples=5)

    def stage(version: CriteriaEvaluator, p: SimPerson) -> str:
        return version.verdict(person=p.person, timeline=p.timeline, current_stage=None, now=NOW).stage

    expected = [
        (p.person_id, stage(evaluator(), p), stage(other, p)) for p in _people() if not p.current_stage
    ]
    assert [(m.person_id, m.before, m.after) for m in result.moves] == [e for e in expected if e[1] != e[2]]
    assert result.moves


def test_compare_shares_the_disqualifier_only_when_both_versions_disqualify_alike() -> None:
    # v2 drops the student disqualifier: a student with a demo request moves up under v2 only.
    other = CriteriaEvaluator(
        criteria().model_copy(
            update={"disqualifiers": [d for d in criteria().disqualifiers if d.name != "student"]}
        ),
        "v2",
        person_fields(),
    )
    assert evaluator().same_disqualifiers(evaluator())
    assert other.same_fit(evaluator())
    assert not evaluator().same_disqualifiers(other)
    student = SimPerson(
        "s1", "s@uni.edu", {**FIT_A, "title": "Student", "email": "s@uni.edu"},
        [act("form_submission", 1, name="Request a demo")],
    )  # fmt: skip
    result = compare(evaluator(), other, [*_people(), student], NOW)
    moved = {(m.person_id, m.after) for m in result.moves}
    before = evaluator().verdict(
        person=student.person, timeline=student.timeline, current_stage=None, now=NOW
    )
    after = other.verdict(person=student.person, timeline=student.timeline, current_stage=None, now=NOW)
    assert before.disqualified_by == "student"
    assert after.disqualified_by is None
    assert moved == {("s1", after.stage)}
    assert result.people == 5
    assert sum(result.current.values()) == sum(result.proposed.values()) == 5


def test_history_replays_each_day_with_forward_only() -> None:
    days = history(evaluator(), evaluator(), _people, NOW - timedelta(days=2), NOW)
    assert len(days) == 3
    assert [d.current for d in days] == [d.proposed for d in days]
    assert days[-1].current["sql"] == 1


# --------------------------------------------------------------------------- examples and validation


def test_shipped_examples_all_pass() -> None:
    from connector.mapping.examples import check_examples

    count, issues = check_examples(load_mappings(SHIPPED))
    assert issues == []
    assert count >= 20


def test_a_failing_example_is_reported_at_its_line_with_the_difference(tmp_path: Path) -> None:
    from connector.mapping.examples import check_examples

    folder = tmp_path / "m"
    folder.mkdir()
    for name in ("criteria.yaml", "routing.yaml", "hubspot.yaml"):
        (folder / name).write_text((SHIPPED / name).read_text())
    examples = (SHIPPED / "criteria.examples.yaml").read_text()
    old = "    expect: {stage: mql, rule: mql_cadence, lead_status: new}"
    assert examples.count(old) == 1
    (folder / "criteria.examples.yaml").write_text(
        examples.replace(old, "    expect: {stage: sql, rule: mql_cadence}")
    )
    _count, issues = check_examples(load_mappings(folder))
    (issue,) = issues
    line = examples[: examples.index("- name: the seeds' cadence story")].count("\n") + 1
    assert (issue.line, issue.message) == (
        line,
        "example 'the seeds' cadence story' fails: stage: expected sql, got mql",
    )
    assert "the criteria say: mql by rule mql_cadence" in issue.hint
    assert "missing: sql by sql_hand_raise: needs 1 more demo or contact-sales request" in issue.hint


def test_example_names_are_checked(tmp_path: Path) -> None:
    from connector.mapping.examples import check_examples

    folder = tmp_path / "m"
    folder.mkdir()
    for name in ("criteria.yaml", "routing.yaml", "hubspot.yaml"):
        (folder / name).write_text((SHIPPED / name).read_text())
    (folder / "criteria.examples.yaml").write_text(
        "examples:\n  - name: x\n    person: {titel: CEO}\n    activities: [{type: webinar, days_ago: 1}]\n"
        "    expect: {stage: mqll}\n"
    )
    _count, issues = check_examples(load_mappings(folder))
    assert [(i.line, i.message) for i in issues] == [
        (3, "unknown person field 'titel'"),
        (4, "unknown activity type 'webinar'"),
        (5, "unknown stage 'mqll'"),
    ]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "    kind: cadence\n    window_days: 30\n    span_days: 4\n",
            "    kind: cadence\n    window_days: 30\n",
            "kind cadence needs 'span_days'",
        ),
        (
            "    kind: days_since_last\n",
            "    kind: days_since_last\n    within_days: 3\n",
            "'within_days' does nothing for kind days_since_last",
        ),
        ("points: {page_view: 1,", "points: {page_vew: 1,", "unknown activity type 'page_vew'"),
        (
            "c.lower() == person.country.trim().lower()",
            "c.lowr() == person.country",
            "unknown function 'lowr'",
        ),
        (
            "c.lower() == person.country.trim().lower()",
            "lower(person.employees) == c",
            "lower() takes text, got int",
        ),
        ("engagement_score_30d < 5.0", "engagement_score_30d + 1 < 5", "float + int"),
        ("stages: [mql]\n", "stages: [customer]\n", "'customer' is owned by Sales"),
    ],
)
def test_validation_of_the_new_constructs(tmp_path: Path, old: str, new: str, message: str) -> None:
    from connector.errors import MappingError

    folder = tmp_path / "m"
    folder.mkdir()
    for name in ("routing.yaml", "hubspot.yaml"):
        (folder / name).write_text((SHIPPED / name).read_text())
    text = (SHIPPED / "criteria.yaml").read_text()
    assert text.count(old) == 1, old
    (folder / "criteria.yaml").write_text(text.replace(old, new))
    with pytest.raises(MappingError) as caught:
        load_mappings(folder)
    assert any(message in issue.message for issue in caught.value.issues), [
        i.render() for i in caught.value.issues
    ]
    assert all(issue.file.endswith("criteria.yaml") and issue.line > 1 for issue in caught.value.issues)


def test_case_insensitive_served_country() -> None:
    assert decide({**FIT_C_40, "country": " GERMANY"}, []).fit_score == 55
    assert decide({**FIT_C_40, "country": "Brazil"}, []).fit_score == 40


# --------------------------------------------------------------------------- regex shortcut


PATTERNS = [
    "(?i)^test[+@.]",
    r"(?i)\b(vp|vice president|director|head of|chief|ceo|cto|cfo|coo|cmo|founder)\b",
    r"(?i)\bstudent\b",
    r"(?i)\bmanager\b",
    r"^[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}",
    r"\d{3,}|x\.y",
    r"(?:ab)+c?",
]
WORDS = [
    "test",
    "Test+",
    "VP",
    "vp.",
    "Head of",
    "student",
    "STUDENT",
    "manager",
    "a@b.co",
    "x.y",
    "ab",
    "_",
    "9",
]
ascii_text = st.lists(
    st.one_of(st.sampled_from(WORDS), st.text(alphabet=st.characters(max_codepoint=127), max_size=4)),
    max_size=6,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=ascii_text, pattern=st.sampled_from(PATTERNS))
def test_the_regex_shortcut_agrees_with_cel_on_ascii_text(text: str, pattern: str) -> None:
    from connector.lifecycle._conditions import regex_shortcut
    from connector.mapping.expressions import compile_expression

    literal = '"' + pattern.replace("\\", "\\\\") + '"'
    expression = compile_expression(f"person.title.matches({literal})")
    shortcut = regex_shortcut(expression)
    assert shortcut is not None
    flags = shortcut.flags({"title": text})
    assert flags is not None
    assert flags["_rx0"] is expression.evaluate({"person": {"title": text}})


@pytest.mark.parametrize(
    "pattern", ["a$", "(?s)a.b", r"\p{L}", "[[:alpha:]]", "é", r"\Aa", "(?i)(?m)^a"], ids=repr
)
def test_the_regex_shortcut_declines_patterns_outside_its_subset(pattern: str) -> None:
    from connector.lifecycle._conditions import python_equivalent

    assert python_equivalent(pattern) is None


@settings(max_examples=100, deadline=None)
@given(title=st.text(max_size=12), email=st.text(max_size=12))
def test_bulk_conditions_with_regexes_agree_with_cel_for_any_text(title: str, email: str) -> None:
    from connector.lifecycle._conditions import Condition, ConditionGroup

    sources = [r.when for r in criteria().disqualifiers] + [r.when for r in criteria().fit.rules]
    conditions = [Condition.compile(source) for source in sources]
    group = ConditionGroup(conditions)
    context = evaluator().context(evaluator().person_context({"title": title, "email": email}), {}, 0, "")
    assert group.matches(context) == tuple(c.evaluate(context).matched for c in conditions)


def test_a_member_seeing_a_new_email_per_person_switches_to_its_regex_results() -> None:
    """One email per person never repeats: the plain memo stops growing, answers stay CEL's."""
    from connector.lifecycle import _conditions
    from connector.lifecycle._conditions import Condition, ConditionGroup

    test_record = next(r.when for r in criteria().disqualifiers if r.name == "test_record")
    condition = Condition.compile(test_record)
    group = ConditionGroup([condition])
    emails = [
        f"{'test+' if n % 7 == 0 else 'p'}{n}@{'example.com' if n % 11 == 0 else 'acme.io'}"
        for n in range(6000)
    ]
    for email in emails:
        context = evaluator().context(evaluator().person_context({"email": email}), {}, 0, "")
        assert group.first(context) == (0 if condition.evaluate(context).matched else None), email
    assert group._regex_first == [True]
    assert len(group._memos[0]) < _conditions._REGEX_FIRST_AFTER
    assert sum(group.first(evaluator().context(evaluator().person_context({"email": e}), {}, 0, "")) == 0
               for e in emails) == len([n for n in range(6000) if n % 7 == 0 or n % 11 == 0])  # fmt: skip


def test_macro_bound_names_stay_out_of_memo_keys_unless_also_read_outside() -> None:
    from connector.lifecycle._conditions import Condition, ConditionGroup, macro_bound_only

    served = "lists.served.exists(c, c.lower() == person.country.trim().lower())"
    assert macro_bound_only(served) == {"c"}
    assert macro_bound_only('c > 1 && lists.served.exists(c, c == "x")') == set()
    assert macro_bound_only('[1].map(x, x * 2).size() > 0 && lists.s.all(y, y != "y(")') == {"x", "y"}
    group = ConditionGroup([Condition.compile(served)])
    lists = {"served": ["Germany", "France"]}
    calls = []
    group.holds = lambda index, context: calls.append(index) or ConditionGroup.holds(group, index, context)  # type: ignore[method-assign]
    answers = [
        group.first({"person": {"country": country}, "lists": lists}) for country in ["germany ", "Peru"] * 3
    ]
    assert answers == [0, None] * 3
    assert len(calls) == 2  # each country once; repeats are memo hits on the C-level key
    shadowed = ConditionGroup([Condition.compile('c > 1 && lists.served.exists(c, c == "France")')])
    assert [shadowed.first({"c": c, "lists": lists}) for c in (2, 0, 2, 0)] == [0, None, 0, None]


def test_bulk_memo_keys_keep_cel_types_apart() -> None:
    """1, 1.0 and true hash alike in Python; the memo key must not let one answer for another."""
    from connector.lifecycle._conditions import Condition, ConditionGroup

    for order in ([1, 1.0, True], [True, 1.0, 1]):
        group = ConditionGroup([Condition.compile("person.employees == 1")])
        answers = {
            type(value).__name__: group.holds(0, {"person": {"employees": value}, "lists": {}})
            for value in order
        }
        plain = Condition.compile("person.employees == 1")
        expected = {
            type(value).__name__: plain.evaluate({"person": {"employees": value}}).matched for value in order
        }
        assert answers == expected
        assert answers["int"] is True
        assert answers["bool"] is False
