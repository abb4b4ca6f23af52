"""Fit: the shipped ICP rules add up as documented and grades are picked top-down."""

from __future__ import annotations

import pytest

from connector.lifecycle import FitScorer, score_fit
from connector.mapping.schema import FitRule, FitSpec
from connector.model import FieldValue

from .lifecycle_fixtures import FIT_A, FIT_B_EXACT, FIT_C_40, FIT_D, criteria, evaluator, person


def shipped_fit(profile: dict[str, FieldValue]) -> tuple[int, str, set[str]]:
    context = evaluator().person_context(profile)
    score, grade, trace = score_fit(criteria().fit, person=context, signals={}, lists=criteria().lists)
    assert [t.name for t in trace] == [rule.name for rule in criteria().fit.rules]  # every rule traced
    return score, grade, {t.name for t in trace if t.matched}


@pytest.mark.parametrize(
    ("profile", "score", "grade", "matched"),
    [
        pytest.param(
            FIT_A,
            90,
            "A",
            {"senior_title", "target_company_size", "target_industry", "served_country"},
            id="A-decision-maker",
        ),
        pytest.param(FIT_B_EXACT, 45, "B", {"senior_title", "served_country"}, id="B-exactly-at-minimum"),
        pytest.param(FIT_C_40, 40, "C", {"manager_title", "target_company_size"}, id="C-just-below-B"),
        pytest.param(FIT_D, -30, "D", {"free_mail"}, id="D-free-mail"),
        pytest.param(
            person(FIT_A, title="Head of Sales", employees=5001, email="ana@outlook.com"),
            35,
            "C",
            {"senior_title", "target_industry", "served_country", "free_mail"},
            id="size-upper-edge-excluded-and-free-mail",
        ),
        pytest.param(
            person(FIT_C_40, employees=50), 40, "C", {"manager_title", "target_company_size"}, id="size-50"
        ),
        pytest.param(person(FIT_C_40, employees=49), 15, "D", {"manager_title"}, id="size-49"),
        pytest.param({}, 0, "D", set(), id="no-data-at-all"),
    ],
)
def test_shipped_fit_scores(
    profile: dict[str, FieldValue], score: int, grade: str, matched: set[str]
) -> None:
    assert shipped_fit(profile) == (score, grade, matched)


@pytest.mark.parametrize(
    ("score", "grade"),
    [
        pytest.param(70, "A", id="A-minimum"),
        pytest.param(69, "B", id="just-below-A"),
        pytest.param(45, "B", id="B-minimum"),
        pytest.param(20, "C", id="C-minimum"),
        pytest.param(19, "D", id="just-below-C"),
        pytest.param(-5000, "D", id="below-every-minimum-gets-last"),
    ],
)
def test_grade_is_first_minimum_met_in_yaml_order(score: int, grade: str) -> None:
    assert FitScorer(criteria().fit, {}).grade(score) == grade


def test_below_all_grades_falls_back_to_the_last_grade() -> None:
    scorer = FitScorer(FitSpec(grades={"hot": 50, "warm": 10}), {})
    assert scorer.grade(9) == "warm"


def test_fit_rules_may_read_signals_and_errors_do_not_crash() -> None:
    spec = FitSpec(
        rules=[
            FitRule(name="engaged", when="interactions_30d >= 3", points=10),
            FitRule(name="broken", when='person.employees > "many"', points=99),
        ],
        grades={"A": 10, "B": 0},
    )
    score, grade, trace = score_fit(spec, person={"employees": 10}, signals={"interactions_30d": 3}, lists={})
    assert (score, grade) == (10, "A")
    broken = trace[1]
    assert not broken.matched
    assert broken.note.startswith("evaluation error")
    assert trace[0].values == {"interactions_30d": 3}
