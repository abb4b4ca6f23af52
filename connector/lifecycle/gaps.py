"""What is missing for a higher stage, in plain language ("needs 1 more pricing page visit in 30 days").

For every stage rule above the person's stage, the rule's condition is split at its top-level
`&&` into parts, each part is evaluated by CEL on its own (the decision stays CEL's; the split
only chooses what to say), and each part that does not hold is described:

* a signal compared with a number (`pricing_views_30d >= 2`): how many more are needed, in the
  signal's own words (`unit`) and window;
* `fit_score >= N`: how many more fit points; `fit_grade in [...]` / `!=` / `==`: which grade is
  needed and how many points reach it;
* anything else (an `||`, a regex, a function call): the part itself, with the values it read.

Splitting is done on the text with strings and brackets respected; a condition whose top level
is not a plain `&&` chain is described as one part.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connector.lifecycle._conditions import Condition, describe_values
from connector.mapping.schema import Criteria
from connector.model import FieldValue

_COMPARISON = re.compile(r"^\s*([A-Za-z_]\w*)\s*(>=|<=|==|!=|>|<)\s*(-?\d+(?:\.\d+)?)\s*$")
_GRADE_TEST = re.compile(r"""^\s*fit_grade\s*(==|!=|in)\s*(\[[^\]]*\]|"[^"]*"|'[^']*')\s*$""")
_COUNTABLE = frozenset({"count", "distinct_channels", "distinct_days", "returns", "cadence"})


@dataclass(frozen=True)
class Gap:
    """One higher-stage rule: the parts of its condition that do not hold, each said plainly."""

    rule: str
    stage: str
    missing: tuple[str, ...]
    failed: tuple[str, ...]
    blocked_by: str | None = None

    def sentence(self) -> str:
        parts = "; ".join(self.missing) if self.missing else "holds now"
        blocked = f" (but {self.blocked_by})" if self.blocked_by else ""
        return f"{self.stage} by {self.rule}: {parts}{blocked}"


def split_conjuncts(source: str) -> list[str]:
    """The top-level `&&` parts of a condition; outer parentheses around the whole are removed."""
    text = _strip_outer_parens(source.strip())
    parts: list[str] = []
    depth = 0
    start = 0
    index = 0
    quote = ""
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\":
                index += 2
                continue
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0 and text.startswith("&&", index):
            parts.append(text[start:index].strip())
            start = index + 2
            index += 2
            continue
        index += 1
    parts.append(text[start:].strip())
    return [part for part in parts if part]


def _strip_outer_parens(text: str) -> str:
    while text.startswith("(") and text.endswith(")") and _closing_paren(text) == len(text) - 1:
        text = text[1:-1].strip()
    return text


def _closing_paren(text: str) -> int:
    depth = 0
    quote = ""
    index = 0
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\":
                index += 2
                continue
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    return -1


class GapFinder:
    """Describes what each higher-stage rule still needs. Build once per criteria; parts compile once."""

    def __init__(self, criteria: Criteria) -> None:
        self._criteria = criteria
        self._rank = {stage: index for index, stage in enumerate(criteria.stages)}
        self._parts: dict[str, tuple[Condition, ...]] = {}

    def gaps(self, stage: str, context: Mapping[str, Any], disqualifier_cap: str | None) -> list[Gap]:
        """Every stage rule above `stage`, in rule order, with the parts of it that fail."""
        rank = self._rank.get(stage, -1)
        out: list[Gap] = []
        for rule in self._criteria.rules:
            if self._rank[rule.stage] <= rank or rule.stage in self._criteria.sales_owned:
                continue
            missing: list[str] = []
            failed: list[str] = []
            for part in self._conditions(rule.when):
                outcome = part.evaluate(context)
                if outcome.matched:
                    continue
                failed.append(part.source)
                missing.append(self._describe(part, outcome.values, context, outcome.error))
            blocked = None
            if disqualifier_cap is not None and self._rank[rule.stage] > self._rank[disqualifier_cap]:
                blocked = f"a disqualifier caps this person at {disqualifier_cap}"
            out.append(Gap(rule.name, rule.stage, tuple(missing), tuple(failed), blocked))
        return out

    def _conditions(self, source: str) -> tuple[Condition, ...]:
        cached = self._parts.get(source)
        if cached is None:
            parts = split_conjuncts(source)
            try:
                cached = tuple(Condition.compile(part) for part in parts)
            except ValueError:  # a split the parser rejects: describe the condition as one part
                cached = (Condition.compile(source),)
            self._parts[source] = cached
        return cached

    def _describe(
        self, part: Condition, values: Mapping[str, FieldValue], context: Mapping[str, Any], error: str
    ) -> str:
        if error:
            return f"{part.source} cannot be evaluated ({error})"
        comparison = _COMPARISON.match(part.source)
        if comparison:
            name, operator, literal = comparison.groups()
            described = self._comparison(name, operator, float(literal), context.get(name))
            if described:
                return described
        grade = _GRADE_TEST.match(part.source)
        if grade and isinstance(context.get("fit_grade"), str):
            described = self._grade(grade.group(1), grade.group(2), context)
            if described:
                return described
        read = describe_values(values, part.source)
        return f"needs {part.source}" + (f" (now {read})" if read else "")

    def _comparison(self, name: str, operator: str, literal: float, value: Any) -> str | None:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return None
        shown = _number(value)
        if name == "fit_score":
            if operator in (">=", ">"):
                need = literal - value + (1 if operator == ">" else 0)
                wanted = f"{operator} {_number(literal)}"
                return f"needs {_number(need)} more fit points (fit score {shown}, needs {wanted})"
            return f"needs fit score {operator} {_number(literal)} (is {shown})"
        spec = self._criteria.signals.get(name)
        if spec is None:
            return None
        window = f" in {spec.window_days} days"
        if spec.kind in _COUNTABLE and operator in (">=", ">") and spec.unit:
            need = literal - value + (1 if operator == ">" else 0)
            if need == int(need):
                counted = f"{_number(need)} more {_plural(spec.unit, need)}"
                if spec.kind == "cadence" and spec.span_days:
                    anchored = ", one of them with the anchor activity" if spec.anchor is not None else ""
                    span = f" inside {spec.span_days} consecutive days{anchored}"
                    window = f"{span}, in the last {spec.window_days} days"
                return f"needs {counted}{window} ({name} is {shown}, needs {operator} {_number(literal)})"
        return f"needs {name} {operator} {_number(literal)}{window} (is {shown})"

    def _grade(self, operator: str, operand: str, context: Mapping[str, Any]) -> str | None:
        grades = self._criteria.fit.grades
        current = str(context.get("fit_grade"))
        score = context.get("fit_score")
        names = re.findall(r"""["']([^"']*)["']""", operand)
        if operator == "in" or operator == "==":
            wanted = [g for g in names if g in grades]
        else:
            wanted = [g for g in grades if g not in names]
        if not wanted:
            return None
        label = " or ".join(wanted)
        reachable = [grades[g] for g in wanted if isinstance(score, int) and grades[g] > score]
        points = ""
        if reachable and isinstance(score, int):
            lowest = min(reachable)
            points = f"; {_number(lowest - score)} more fit points reach it"
        return f"needs fit grade {label} (is {current}, score {score}{points})"


def _plural(noun: str, count: float) -> str:
    if count == 1 or (noun.endswith("s") and not noun.endswith("ss")):
        return noun
    if re.search(r"[^aeiou]y$", noun):
        return noun[:-1] + "ies"
    if re.search(r"(s|x|z|ch|sh)$", noun):
        return noun + "es"
    return noun + "s"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def describe_gaps(gaps: Sequence[Gap]) -> list[str]:
    return [gap.sentence() for gap in gaps]
