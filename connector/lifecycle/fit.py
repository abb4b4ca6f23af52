"""Fit (ideal customer profile): points per matching rule, then a grade.

Fit is Sales' input ("who is worth our time") and is computed before the stage rules, which read
`fit_score` and `fit_grade`. Fit rules themselves may read person fields, lists and signals, but
not the fit values they are producing: those are passed as neutral placeholders (0 and "") and the
loader rejects rules that mention them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import compress

from connector.lifecycle._conditions import Condition, ConditionGroup
from connector.mapping.expressions import expression_context
from connector.mapping.schema import FitSpec
from connector.model import FieldValue, RuleTrace


@dataclass(frozen=True)
class FitResult:
    score: int
    grade: str
    trace: tuple[RuleTrace, ...]


class FitScorer:
    """Scores one person against the fit rules. Build once per run (conditions compile here)."""

    def __init__(self, fit: FitSpec, lists: Mapping[str, list[str]]) -> None:
        self._rules = tuple((rule, Condition.compile(rule.when)) for rule in fit.rules)
        self._group = ConditionGroup([condition for _, condition in self._rules])
        self._points = tuple(rule.points for rule in fit.rules)
        self._grades = tuple(fit.grades.items())
        self._lists = lists
        # Fit rules usually read only person fields and lists: then the bulk path need not copy
        # every signal into their context.
        self._reads_signals = any(
            name not in ("person", "lists") for _, condition in self._rules for name in condition.variables
        )

    def quick(
        self,
        person: Mapping[str, FieldValue],
        signals: Mapping[str, int | float],
        lists: Mapping[str, list[str]],
    ) -> tuple[int, str]:
        """(score, grade) without traces, memoised on what the rules read (the bulk path).

        `lists` must be the same object on every call (the memo keys on its identity).
        """
        context: dict[str, object] = dict(signals) if self._reads_signals else {}
        context["fit_score"] = 0
        context["fit_grade"] = ""
        context["person"] = person
        context["lists"] = lists
        total = sum(compress(self._points, self._group.matches(context)))
        return total, self.grade(total)

    def score(self, person: Mapping[str, FieldValue], signals: Mapping[str, int | float]) -> FitResult:
        """Sum the points of every matching rule and grade the total. Every rule appears in the trace."""
        context = expression_context(
            signals=signals, fit_score=0, fit_grade="", person=person, lists=self._lists
        )
        total = 0
        trace: list[RuleTrace] = []
        for rule, condition in self._rules:
            outcome = condition.evaluate(context)
            if outcome.matched:
                total += rule.points
            awarded = f"{rule.points:+d} points" if outcome.matched else "no points"
            trace.append(
                RuleTrace(
                    kind="fit",
                    name=rule.name,
                    expression=condition.source,
                    matched=outcome.matched,
                    values=outcome.values,
                    note=outcome.error or awarded,
                )
            )
        return FitResult(score=total, grade=self.grade(total), trace=tuple(trace))

    def grade(self, score: int) -> str:
        """The first grade (YAML order, highest first) whose minimum is met; below all -> the last."""
        for grade, minimum in self._grades:
            if minimum <= score:
                return grade
        return self._grades[-1][0] if self._grades else ""


def score_fit(
    fit: FitSpec,
    *,
    person: Mapping[str, FieldValue],
    signals: Mapping[str, int | float],
    lists: Mapping[str, list[str]],
) -> tuple[int, str, tuple[RuleTrace, ...]]:
    """One-off convenience wrapper around `FitScorer` returning (score, grade, traces)."""
    result = FitScorer(fit, lists).score(person, signals)
    return result.score, result.grade, result.trace
