"""Compiled stage rules give CEL's answers, and anything outside their subset stays with CEL."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.lifecycle._conditions import Condition, ConditionGroup
from connector.lifecycle.compiled import compile_condition, compile_first
from connector.mapping.expressions import compile_expression

TYPES = {"a": "int", "b": "int", "s": "double", "t": "double", "g": "string"}

ints = st.integers(min_value=-50, max_value=50)
doubles = st.floats(min_value=-50, max_value=50, allow_nan=False).map(lambda x: round(x, 2))
grades = st.sampled_from(["A", "B", "C", "D", "", "a b"])


def _number(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["name", "int", "double"]))
    if kind == "name":
        return draw(st.sampled_from(["a", "b", "s", "t"]))
    if kind == "int":
        return str(draw(ints))
    return repr(float(draw(doubles)))


@st.composite
def relations(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["compare", "grade", "in_numbers", "in_grades"]))
    if kind == "compare":
        operator = draw(st.sampled_from(["==", "!=", "<", "<=", ">", ">="]))
        return f"{_number(draw)} {operator} {_number(draw)}"
    if kind == "grade":
        return f'g {draw(st.sampled_from(["==", "!="]))} "{draw(grades)}"'
    if kind == "in_numbers":
        items = draw(st.lists(st.one_of(ints.map(str), doubles.map(lambda x: repr(float(x)))), max_size=3))
        return f"{draw(st.sampled_from(['a', 's']))} in [{', '.join(items)}]"
    items = draw(st.lists(grades.map(lambda x: f'"{x}"'), max_size=3))
    return f"g in [{', '.join(items)}]"


conditions = st.recursive(
    relations(),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["&&", "||"]), inner).map(lambda p: f"{p[0]} {p[1]} {p[2]}"),
        inner.map(lambda c: f"!({c})"),
        inner.map(lambda c: f"({c})"),
        st.tuples(inner, inner).map(lambda p: f"({p[0]}) == ({p[1]})"),
    ),
    max_leaves=6,
)
contexts = st.fixed_dictionaries({"a": ints, "b": ints, "s": doubles, "t": doubles, "g": grades})


@settings(max_examples=400, deadline=None)
@given(source=conditions, context=contexts)
def test_compiled_conditions_agree_with_cel(source: str, context: dict[str, Any]) -> None:
    code = compile_condition(source, TYPES)
    assert code is not None, source
    expected = compile_expression(source).evaluate_bool(context)
    assert eval(code, {}, {"c": context}) is expected, (source, code)


@pytest.mark.parametrize(
    "source",
    [
        "a + 1 > 2",  # arithmetic: may overflow in CEL
        "person.title == 'x'",  # person fields: types known only at run time
        "g < 'B'",  # string ordering
        "a == 'x'",  # mixed kinds: an error in CEL
        "a",  # not a condition
        "!a",  # ! only before parentheses
        "size(g) > 1",  # functions
        "g.matches('x')",
        "unknown > 1",
        'g == "a\\"b"',  # escapes
        "a > 1e3",
        "a > 0x10",
        "a > 1u",
        "a in lists.x",
        "a > 1234567890123456789",
    ],
)
def test_conditions_outside_the_subset_are_left_to_cel(source: str) -> None:
    assert compile_condition(source, TYPES) is None


def test_a_group_mixes_compiled_and_cel_members_in_their_order() -> None:
    sources = ['g in ["A"] && a >= 2', "size(g) == 1 && b > 0", "s >= 1.5"]
    group = ConditionGroup([Condition.compile(s) for s in sources], TYPES)
    assert group.compiled_count == 2
    cases = [
        ({"a": 2, "b": 0, "s": 9.0, "g": "A"}, 0),
        ({"a": 1, "b": 1, "s": 9.0, "g": "B"}, 1),  # the CEL member, asked in its turn
        ({"a": 1, "b": 0, "s": 1.5, "g": "B"}, 2),
        ({"a": 1, "b": 0, "s": 1.4, "g": "AB"}, None),
        ({"b": 1, "s": 1.4, "g": "A"}, 1),  # `a` missing: CEL path, where rule 0 errs (not matched)
    ]
    for context, expected in cases:
        assert group.first(context) == expected, context
    assert compile_first(["size(g) > 1"], TYPES) is None
