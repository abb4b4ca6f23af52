"""How the core evaluates CEL: the values it reports, narrowing, memoisation and errors."""

from __future__ import annotations

from typing import Any

import pytest

from connector.lifecycle._conditions import Condition, describe_values


def test_reads_are_listed_in_the_order_the_condition_mentions_them() -> None:
    condition = Condition.compile('pricing_views_30d >= 2 && person["country"] == "x" && fit_score >= 45')
    assert condition.reads == ("pricing_views_30d", "person.country", "fit_score")


def test_values_read_and_description_with_thresholds() -> None:
    condition = Condition.compile(
        'hand_raises_30d >= 1 && fit_grade in ["A", "B"] && person.employees <= 5000'
    )
    context = {"hand_raises_30d": 2, "fit_grade": "B", "person": {"employees": 80, "title": "x"}, "lists": {}}
    outcome = condition.evaluate(context)
    assert outcome.matched
    assert outcome.values == {"hand_raises_30d": 2, "fit_grade": "B", "person.employees": 80}
    assert describe_values(outcome.values, condition.source) == (
        'hand_raises_30d=2 (>= 1), fit_grade="B" (in ["A", "B"]), person.employees=80 (<= 5000)'
    )


@pytest.mark.parametrize(
    ("source", "person", "expected"),
    [
        pytest.param("size(person) >= 3", {"a": 1, "b": 2, "c": 3}, True, id="whole-map-use-is-not-narrowed"),
        pytest.param('person.title == "person.x"', {"title": "person.x"}, True, id="name-inside-a-string"),
        pytest.param('person["title"] == "a"', {"title": "a", "other": 1}, True, id="index-access"),
    ],
)
def test_narrowing_never_changes_a_result(source: str, person: dict[str, Any], expected: bool) -> None:
    condition = Condition.compile(source)
    assert condition.evaluate({"person": person, "lists": {"big": ["x"] * 50}}).matched is expected


def test_memo_keeps_cel_type_distinctions() -> None:
    condition = Condition.compile("person.flag == true")
    assert condition.evaluate({"person": {"flag": True}}).matched
    assert not condition.evaluate({"person": {"flag": 1}}).matched
    assert condition.evaluate({"person": {"flag": True}}).matched


def test_runtime_errors_are_outcomes_not_exceptions() -> None:
    condition = Condition.compile("interactions_30d > 1")
    outcome = condition.evaluate({"interactions_30d": "many"})
    assert not outcome.matched
    assert outcome.error.startswith("evaluation error:")
    missing = condition.evaluate({})
    assert not missing.matched
    assert missing.error.startswith("evaluation error:")
    assert missing.values == {}
